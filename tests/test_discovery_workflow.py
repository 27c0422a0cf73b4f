"""Discovery rounds through snakemake: one round is today's run; a round's jobs do not depend on
how many rounds there are, so a rerun with more rounds reuses the finished ones."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd
import pytest
from workflow_helpers import deep_merge, nested, planned_jobs, run_snakemake, tiny_config

from pipeline.records import read_records

pytestmark = [pytest.mark.workflow]

ROUND_RULES = {
    "confirm",
    "budget",
    "finetune",
    "encode_wyckoff_round",
    "sample_round",
    "known_index_round",
    "validate_round",
    "prescreen_round",
    "relax_round",
    "gather_relaxed_round",
    "repeat_round",
    "gather_repeat_round",
    "second_opinion_round",
    "ehull_round",
    "properties_round",
    "pourbaix_round",
    "export_round",
    "discovery",
}
TWO_SOURCES = {
    "train": {
        "models": ["wyckoff_diffusion", "pyxtal_random"],
        "wyckoff_diffusion": {"steps": 10, "hidden": 16, "layers": 1, "timesteps": 10},
    }
}


def rounds(n: int) -> list[str]:
    return ["--config", f"discovery={{rounds: {n}}}"]


def shell_commands(workdir, config, *args) -> set[str]:
    """Every stage command a dry run would run (``--printshellcmds``)."""
    result = run_snakemake(workdir, config, "--dry-run", "--printshellcmds", *args)
    output = result.stdout + result.stderr
    return set(re.findall(r"^Shell command: (python -m pipeline\.stages\..*)$", output, re.M))


def test_one_round_plans_todays_jobs_and_more_rounds_add_theirs(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml", **TWO_SOURCES)
    workdir = tmp_path / "run"
    one = planned_jobs(workdir, config)
    three = planned_jobs(workdir, config, *rounds(3))
    assert not set(one) & ROUND_RULES
    assert one["sample"] == 2 and one["relax"] == 2
    # round 1 is the same with three rounds; rounds 2 and 3 add a copy of the screen each
    assert Counter({k: n for k, n in three.items() if k not in ROUND_RULES}) == one
    assert three["confirm"] == 3  # rounds 2 and 3, and the final hull (round 4's)
    assert three["budget"] == 2 and three["encode_wyckoff_round"] == 2
    assert three["finetune"] == three["sample_round"] == 2 * 2
    assert three["relax_round"] == 2 * 2  # two rounds of two shards, main potential
    assert three["second_opinion_round"] == three["export_round"] == 2
    assert three["repeat_round"] == 2 * 2 and three["gather_repeat_round"] == 2  # sharded
    assert three["discovery"] == 1


def test_a_rounds_commands_do_not_depend_on_the_number_of_rounds(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml", **TWO_SOURCES)
    workdir = tmp_path / "run"
    one = shell_commands(workdir, config)
    two = shell_commands(workdir, config, *rounds(2))
    three = shell_commands(workdir, config, *rounds(3))
    assert one < two and one < three
    final = [c for c in two if c.startswith("python -m pipeline.stages.discovery")]
    assert len(final) == 1  # the end's table: the only command that changes with the rounds
    assert two - set(final) < three
    assert any("--budget results/rounds/3/budget.csv" in c for c in three - two)


@pytest.mark.slow
def test_two_rounds_run_and_a_third_reuses_them(tmp_path):
    """A real run of two rounds (random search: nothing to train), then a dry run of three."""
    overrides = deep_merge(
        nested("train.models", ["pyxtal_random"]),
        nested("discovery", {"rounds": 2, "confirm_e_hull": 1.0}),
    )
    overrides = deep_merge(overrides, nested("sample", {"per_composition": 3}))
    config = tiny_config(tmp_path / "tiny.yaml", **overrides)
    workdir = tmp_path / "run"
    run_snakemake(workdir, config, timeout=3000)
    results = workdir / "results"
    final = pd.read_csv(results / "discovery/candidates.csv", dtype={"id": str})
    summary = pd.read_csv(results / "discovery/rounds.csv")
    assert summary["round"].tolist() == [1, 2]
    assert summary["samples"].gt(0).all()
    assert set(final["round"]) <= {1, 2}
    assert final.loc[final["round"] == 2, "id"].str.startswith("r2-").all()
    samples = read_records(results / "rounds/2/samples/pyxtal_random/samples.json.gz")
    assert samples and all(r.id.startswith("r2-pyxtal_random-") for r in samples)
    # round 2 knew round 1's known structures and hull phases and what round 1 confirmed
    confirmed = read_records(results / "rounds/2/confirmed.json.gz")
    known_1 = read_records(results / "data/known.json.gz")
    known_2 = read_records(results / "rounds/2/known.json.gz")
    assert [r.id for r in known_2] == [r.id for r in known_1] + [r.id for r in confirmed]
    hull_1 = read_records(results / "hull/chgnet/references_relaxed.json.gz")
    hull_2 = read_records(results / "rounds/2/hull/chgnet/references_relaxed.json.gz")
    assert len(hull_2) == len(hull_1) + len(confirmed)
    index_2 = read_records(results / "rounds/2/screen/known_structures.json.gz")
    assert {r.id for r in confirmed} <= {r.id for r in index_2}
    budget = pd.read_csv(results / "rounds/2/budget.csv")
    assert budget["per_composition"].sum() == 3
    assert (results / "report/discovery_curve.png").stat().st_size > 10_000

    third = planned_jobs(workdir, config, *rounds(3))
    assert set(third) <= ROUND_RULES  # nothing of round 1 again
    assert third["sample_round"] == 1 and third["relax_round"] == 2  # round 3 only
    assert third["confirm"] == 1 and third["discovery"] == 1  # the new final hull, the end
