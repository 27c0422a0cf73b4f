"""The screen's verdict: decided once, from config.yaml's thresholds, in pipeline.screen.criteria."""

from __future__ import annotations

import dataclasses
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from pipeline.candidates.ranking import rank_candidates
from pipeline.errors import PipelineInputError
from pipeline.formats import consensus_column, second_opinion_column
from pipeline.screen.criteria import Criteria
from pipeline.settings import default_settings

CRITERIA = Criteria(
    metastable=0.2,
    synthesizable=0.08,
    band_gap_min=1.6,
    band_gap_max=3.0,
    band_gap_level="HSE",
    max_delta_g_pbx=0.59,
    second_opinion="sevennet",
    consensus=(),
)


def table(**columns) -> pd.DataFrame:
    base = {
        "id": ["a", "b", "c", "d"],
        "e_above_hull": [0.05, 0.01, np.nan, 0.02],
        "band_gap": [2.0, 2.5, 2.0, 2.0],
        "delta_g_pbx": [0.1, 0.2, 0.1, 0.9],
        "known_as": [None, None, None, None],
        "duplicate_of": [None, None, None, None],
        second_opinion_column("sevennet"): [0.06, 0.15, 0.0, np.nan],
    }
    return pd.DataFrame({**base, **columns})


def test_the_default_criteria_are_config_yamls():
    screen = default_settings().screen
    criteria = Criteria.default()
    assert (criteria.metastable, criteria.synthesizable) == (
        screen.e_hull.metastable,
        screen.e_hull.synthesizable,
    )
    assert (criteria.band_gap_min, criteria.band_gap_max, criteria.band_gap_level) == (
        screen.band_gap.min,
        screen.band_gap.max,
        screen.band_gap.level,
    )
    assert criteria.max_delta_g_pbx == screen.pourbaix.max_delta_g
    assert Criteria.from_json(criteria.to_json()) == criteria


def test_a_missing_measurement_fails_its_criterion_and_passes_rank_first():
    verdict = rank_candidates(CRITERIA.apply(table())).set_index("id")
    assert verdict.loc["b", "rank"] == 1 and verdict.loc["a", "rank"] == 2
    assert verdict.loc["c", "failed"] == "e_above_hull" and pd.isna(verdict.loc["c", "rank"])
    assert verdict.loc["d", "failed"] == "delta_g_pbx"
    assert list(verdict.loc[["a", "b", "c", "d"], "synthesizable"]) == [True, True, False, True]


def test_agreement_means_the_same_side_of_both_thresholds_and_never_filters():
    verdict = CRITERIA.apply(table()).set_index("id")
    # a: 0.05 vs 0.06 (both <= 0.08); b: 0.01 vs 0.15 (other side of 0.08);
    # c: main E_hull missing; d: second opinion missing.
    assert list(verdict["agrees"]) == [True, False, False, False]
    assert verdict.loc["b", "passes"]  # informs, never filters


def test_band_gap_window_is_inclusive_and_a_missing_gap_fails():
    verdict = CRITERIA.apply(table(band_gap=[1.6, 3.0, 3.01, np.nan])).set_index("id")
    assert list(verdict["in_band_gap_window"]) == [True, True, False, False]
    assert verdict.loc["d", "failed"] == "band_gap;delta_g_pbx"


def test_a_known_or_duplicate_candidate_is_not_new_and_fails():
    verdict = CRITERIA.apply(
        table(known_as=[None, "mp-1", "", None], duplicate_of=["", None, None, "b"])
    ).set_index("id")
    assert list(verdict["new"]) == [True, False, True, False]
    assert verdict.loc["b", "failed"] == "new"
    assert verdict.loc["d", "failed"] == "delta_g_pbx;new"


def test_consensus_needs_each_potentials_own_relaxation_within_the_threshold():
    criteria = dataclasses.replace(CRITERIA, consensus=("m3gnet",))
    with pytest.raises(PipelineInputError, match="e_above_hull_m3gnet_relaxed"):
        criteria.apply(table())
    verdict = criteria.apply(
        table(**{consensus_column("m3gnet"): [0.07, 0.09, 0.0, np.nan]})
    ).set_index("id")
    assert verdict.loc["a", "passes"]
    assert verdict.loc["b", "failed"] == "consensus:m3gnet"
    assert verdict.loc["d", "failed"] == "consensus:m3gnet;delta_g_pbx"


def test_the_main_potential_is_never_its_own_consensus():
    screen = dataclasses.replace(default_settings().screen, consensus=("chgnet", "sevennet"))
    assert Criteria.from_settings(screen).consensus == ("sevennet",)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"band_gap_min": 3.5}, "band-gap window"),
        ({"band_gap_level": "GW"}, "PBE or HSE"),
        ({"synthesizable": 0.3}, "E_hull thresholds"),
    ],
)
def test_inconsistent_criteria_are_an_input_error(change, message):
    with pytest.raises(PipelineInputError, match=message):
        dataclasses.replace(CRITERIA, **change)


def test_the_e_hull_thresholds_live_in_config_schema_and_the_criteria_module_only():
    """No stage, rule or library reads the E_hull thresholds but pipeline.screen.criteria."""
    tracked = subprocess.run(
        ["git", "ls-files", "pipeline", "rules", "Snakefile", "bench", "scripts"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # config["screen"]["e_hull"], settings.screen.e_hull.synthesizable, "screen.e_hull.metastable"
    pattern = re.compile(r"\[\"e_hull\"\]|e_hull\.(metastable|synthesizable)\b")
    readers = sorted(
        path
        for path in tracked
        if path.endswith((".py", ".smk", "Snakefile"))
        and pattern.search((REPO / path).read_text(encoding="utf-8"))
    )
    assert readers == ["pipeline/screen/criteria.py"]


def test_one_e_hull_within_each_threshold():
    assert CRITERIA.within(0.05) == (True, True)
    assert CRITERIA.within(0.1) == (False, True)
    assert CRITERIA.within(float("nan")) == (False, False)


def test_a_verdict_the_repeat_contradicts_is_not_stable_and_one_not_repeated_is():
    verdict = CRITERIA.apply(table(e_above_hull_repeat=[0.06, 0.09, np.nan, np.nan])).set_index(
        "id"
    )
    # a: 0.05 and 0.06 on the same sides; b: 0.01 then 0.09 across 0.08; c, d: not repeated
    assert list(verdict["verdict_stable"]) == [True, False, True, True]
