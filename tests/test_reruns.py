"""Rerun only what changed: a parameter change reruns its stage and everything downstream,
nothing upstream; a bare `touch` of an input reruns nothing (Snakemake 9 compares content
checksums when an input is newer than its outputs).

Each case is (config key, new value, rules that must rerun); the other rules of the DAG
must not. Add a case per stage as the DAG grows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from workflow_helpers import nested, planned_jobs, run_snakemake, tiny_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

FOUNDATION = {"fetch_data", "augment", "encode"}

RERUN_CASES: list[tuple[str, Any, set[str]]] = [
    # a later stage: augment and what reads its output, never the data stage
    ("augment.per_composition", 3, {"augment", "encode"}),
    ("augment.operations", ["supercell", "translate"], {"augment", "encode"}),
    ("seed", 1, {"augment", "encode"}),
    # an option of the data stage alone: the data stage reruns and so does everything after it
    ("data.mp.reference_e_above_hull", 0.05, FOUNDATION),
    # an option every foundation stage takes
    ("encoding.max_atoms", {"Mg": 8, "Mn": 8, "O": 16}, FOUNDATION),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, Path]:
    """A complete tiny run: (workdir, its config file)."""
    root = tmp_path_factory.mktemp("reruns")
    config = tiny_config(root / "tiny.yaml")
    workdir = root / "run"
    run_snakemake(workdir, config)
    assert planned_jobs(workdir, config) == {}, "a finished run must plan nothing"
    return workdir, config


@pytest.mark.parametrize(
    ("key", "value", "expected"), RERUN_CASES, ids=[case[0] for case in RERUN_CASES]
)
def test_a_parameter_change_reruns_its_stage_and_downstream_only(
    finished_run, tmp_path, key: str, value: Any, expected: set[str]
) -> None:
    workdir, _ = finished_run
    changed = tiny_config(tmp_path / "changed.yaml", **nested(key, value))

    planned = planned_jobs(workdir, changed)

    assert set(planned) == expected, f"changing {key} planned {dict(planned)}"


def test_touching_an_input_without_changing_it_reruns_nothing(finished_run) -> None:
    workdir, config = finished_run
    dataset = workdir / "results" / "data" / "dataset.json.gz"
    later = dataset.stat().st_mtime + 60
    os.utime(dataset, (later, later))  # newer than augment's output, same content

    assert planned_jobs(workdir, config) == {}
