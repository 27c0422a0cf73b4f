"""The split of a discovery round's samples: seeded, the whole budget, never below the floor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.discovery.bandit import (
    SourceTally,
    adaptive_split,
    budget_table,
    least_units,
    source_budget,
)
from pipeline.discovery.rounds import id_prefix, round_seed
from pipeline.errors import PipelineInputError
from pipeline.stages.budget import main as budget_main

TALLIES = [
    SourceTally("wyckoff_diffusion", samples=64, hits=6),
    SourceTally("pyxtal_random", samples=64, hits=0),
    SourceTally("substitution", samples=64, hits=2),
]


def test_the_adaptive_split_is_seeded_and_sums_to_the_budget():
    first = budget_table(3, TALLIES, 16, "adaptive", 0.1, seed=7)
    again = budget_table(3, TALLIES, 16, "adaptive", 0.1, seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert first["per_composition"].sum() == 16 * len(TALLIES)
    assert first["share"].sum() == pytest.approx(1.0)
    # another seed or another round draws anew (seeds 0..4: not all alike)
    others = [
        tuple(budget_table(r, TALLIES, 16, "adaptive", 0.1, seed=s)["per_composition"])
        for s, r in [(0, 2), (1, 2), (2, 2), (7, 4), (7, 5)]
    ]
    assert len(set(others) | {tuple(first["per_composition"])}) > 1


def test_the_adaptive_split_respects_the_floor_and_follows_the_hits():
    floor = 0.2
    units = 16 * len(TALLIES)
    least = math.ceil(floor * units)
    for seed in range(20):
        counts = adaptive_split(TALLIES, units, floor, np.random.default_rng(seed))
        assert sum(counts.values()) == units
        assert min(counts.values()) >= least
        # 6 hits in 64 against none: the posterior of the first is far above the second's
        assert counts["wyckoff_diffusion"] > counts["pyxtal_random"]
    # no record yet: every source as likely, each near a third
    fresh = [SourceTally(t.source, 0, 0) for t in TALLIES]
    totals = {t.source: 0 for t in TALLIES}
    for seed in range(50):
        for source, n in adaptive_split(fresh, units, floor, np.random.default_rng(seed)).items():
            totals[source] += n
    assert all(abs(n / (50 * units) - 1 / 3) < 0.05 for n in totals.values())


def test_the_floor_is_at_least_one_sample_and_must_fit():
    assert least_units(units=4, sources=2, floor=0.01) == 1
    assert least_units(units=48, sources=3, floor=0.1) == 5
    with pytest.raises(PipelineInputError, match="exceeds the whole budget"):
        least_units(units=48, sources=3, floor=0.4)
    table = budget_table(2, TALLIES, 16, "fixed", 0.1, seed=0)
    assert table["per_composition"].tolist() == [16, 16, 16]
    with pytest.raises(PipelineInputError, match="discovery.split"):
        budget_table(2, TALLIES, 16, "greedy", 0.1, seed=0)


def test_round_seeds_and_ids():
    assert round_seed(5, 1) == 5 and id_prefix(1) == ""
    assert round_seed(5, 2) != round_seed(5, 3) != 5
    assert round_seed(5, 2) == round_seed(5, 2)
    assert id_prefix(3) == "r3-"


def test_the_budget_stage_counts_samples_and_confirmed_hits(tmp_path):
    """Round 3's budget from rounds 1 and 2: samples asked from the reports, hits from the
    confirmation tables; the sample stage's reader gives each source its share."""
    reports = []
    for round_number in (1, 2):
        for source, asked in (("wyckoff_diffusion", 8), ("pyxtal_random", 8)):
            path = tmp_path / f"report_{round_number}_{source}.csv"
            pd.DataFrame({"composition": ["Mg1Mn1O2", "Mg2Mn1O4"], "asked": [asked] * 2}).to_csv(
                path, index=False
            )
            reports += ["--sample-report", source, str(path)]
    confirmations = []
    for round_number, confirmed in ((1, [True, True, False]), (2, [True, False, False])):
        path = tmp_path / f"confirmed_{round_number + 1}.csv"
        pd.DataFrame(
            {
                "round": round_number,
                "id": [f"a{round_number}", f"b{round_number}", f"c{round_number}"],
                "model": ["wyckoff_diffusion", "wyckoff_diffusion", "pyxtal_random"],
                "confirmed": confirmed,
            }
        ).to_csv(path, index=False)
        confirmations.append(str(path))
    out = tmp_path / "budget.csv"
    argv = ["--round", "3", "--sources", "wyckoff_diffusion", "pyxtal_random", *reports]
    argv += ["--confirmations", *confirmations, "--per-composition", "8", "--out", str(out)]
    assert budget_main(argv) == 0
    table = pd.read_csv(out).set_index("source")
    assert table.loc["wyckoff_diffusion", "samples"] == 32
    assert table.loc["wyckoff_diffusion", "hits"] == 3
    assert table.loc["pyxtal_random", "hits"] == 0
    assert table["per_composition"].sum() == 16
    assert source_budget(out, "pyxtal_random") == (3, table.loc["pyxtal_random", "per_composition"])
    with pytest.raises(PipelineInputError, match="no single row"):
        source_budget(out, "ccgan")
