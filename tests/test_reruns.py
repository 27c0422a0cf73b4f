"""Rerun only what changed: a parameter change reruns the rules that take it and everything
downstream of them, nothing else; a bare `touch` of an input reruns nothing (Snakemake 9
compares content checksums when an input is only newer than its outputs).

Each case is (config key, new value, the rules that take the key as a parameter). What
must rerun is what ``--forcerun <those rules>`` plans: the rules and their downstream in
whatever DAG the workflow has. Add a case per stage as the DAG grows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from workflow_helpers import nested, planned_jobs, run_snakemake, tiny_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

RERUN_CASES: list[tuple[str, Any, set[str]]] = [
    ("augment.per_composition", 3, {"augment"}),
    ("augment.operations", ["supercell", "translate"], {"augment"}),
    ("seed", 1, {"augment", "train", "sample", "export"}),
    ("data.mp.reference_e_above_hull", 0.05, {"fetch_data"}),
    ("encoding.max_atoms", {"Mg": 8, "Mn": 8, "O": 16}, {"fetch_data", "augment", "encode"}),
    ("train.ccgan.steps", 25, {"train"}),
    ("screen.fmax", 0.25, {"relax"}),
    ("screen.hull_relax.fmax", 0.25, {"hull_references"}),
    # the repeat rule re-relaxes the candidates near a threshold: it moves with them
    ("screen.e_hull.synthesizable", 0.1, {"repeat", "export"}),
    ("screen.min_distance", 0.6, {"validate"}),
]
STAGES_BEFORE_SCREENING = {"fetch_data", "augment", "encode", "compositions", "train", "sample"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, Path]:
    """A complete tiny run: (workdir, its config file)."""
    root = tmp_path_factory.mktemp("reruns")
    config = tiny_config(root / "tiny.yaml")
    workdir = root / "run"
    run_snakemake(workdir, config)
    assert planned_jobs(workdir, config) == {}, "a finished run must plan nothing"
    return workdir, config


@pytest.fixture(scope="module")
def downstream_of(finished_run) -> Callable[[set[str]], dict[str, int]]:
    """Rules -> the jobs ``--forcerun <rules>`` plans (cached: a dry run takes seconds)."""
    workdir, config = finished_run
    plans: dict[frozenset[str], dict[str, int]] = {}

    def plan(rules: set[str]) -> dict[str, int]:
        key = frozenset(rules)
        if key not in plans:
            plans[key] = planned_jobs(workdir, config, "--forcerun", *sorted(rules))
        return plans[key]

    return plan


@pytest.mark.parametrize(
    ("key", "value", "owners"), RERUN_CASES, ids=[case[0] for case in RERUN_CASES]
)
def test_a_parameter_change_reruns_its_rules_and_downstream_only(
    finished_run, downstream_of, tmp_path, key: str, value: Any, owners: set[str]
) -> None:
    workdir, _ = finished_run
    downstream = downstream_of(owners)
    assert owners <= set(downstream)
    changed = tiny_config(tmp_path / "changed.yaml", **nested(key, value))

    planned = planned_jobs(workdir, changed)

    assert planned == downstream, f"changing {key} planned {dict(planned)}"
    if key.startswith("screen."):
        assert not STAGES_BEFORE_SCREENING & set(planned), "a screening change reran training"
    if key.startswith("train."):
        assert {"train", "sample", "validate", "relax", "ehull", "export"} <= set(planned)


def test_a_later_stage_parameter_leaves_the_data_stage_alone(finished_run, tmp_path) -> None:
    workdir, _ = finished_run
    changed = tiny_config(tmp_path / "changed.yaml", **nested("augment.per_composition", 3))

    planned = planned_jobs(workdir, changed)

    assert {"augment", "encode"} <= set(planned) and "fetch_data" not in planned


def test_touching_an_input_without_changing_it_reruns_nothing(finished_run) -> None:
    workdir, config = finished_run
    dataset = workdir / "results" / "data" / "dataset.json.gz"
    later = dataset.stat().st_mtime + 60
    os.utime(dataset, (later, later))  # newer than augment's output, same content

    assert planned_jobs(workdir, config) == {}
