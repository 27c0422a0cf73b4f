"""bench/potential_agreement.py: pairwise stability agreement of the consensus columns."""

from __future__ import annotations

import importlib.util
import math

import pandas as pd
import pytest

from pipeline.errors import PipelineInputError


@pytest.fixture(scope="module")
def bench(repo):
    spec = importlib.util.spec_from_file_location(
        "potential_agreement", repo / "bench" / "potential_agreement.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agreement_counts_the_same_side_of_each_threshold(bench):
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "potential": "m3gnet (torch port of m3gnet 0.2.4) checkpoint MP-2021.2.8-EFS",
            "e_above_hull": [0.0, 0.1, 0.3, 0.05],
            "e_above_hull_chgnet_relaxed": [0.02, 0.3, 0.25, math.nan],
            "e_above_hull_mp": [0.0, 0.0, 0.0, 0.0],  # not potentials
            "e_above_hull_is_lower_bound": [False, False, True, False],
        }
    )
    result = bench.agreement(bench.potential_columns(table), [0.08, 0.2])
    pair = result["pairs"]["m3gnet-chgnet"]
    assert pair["candidates"] == 3  # chgnet failed on the last one
    assert pair["agree_at_0.08"] == 1.0  # below, above, above for both
    assert pair["agree_at_0.2"] == pytest.approx(2 / 3, abs=1e-3)  # 0.1 vs 0.3 disagree
    assert pair["median_abs_difference_eV_per_atom"] == 0.05
    assert result["below_threshold"]["m3gnet"] == {"at_0.08": 2, "at_0.2": 3}
    # Two runs that differ in the potential: joined on the candidate id.
    sevennet_run = pd.DataFrame(
        {"id": ["c", "b"], "potential": "sevennet (sevenn 0.13.0)", "e_above_hull": [0.1, 0.15]}
    )
    joined = bench.combined([table, sevennet_run])
    assert list(joined.columns) == ["m3gnet", "chgnet", "sevennet"]
    pair = bench.agreement(joined, [0.2])["pairs"]["m3gnet-sevennet"]
    assert pair["candidates"] == 2 and pair["agree_at_0.2"] == 0.5  # c: 0.3 vs 0.1
    with pytest.raises(PipelineInputError, match="one potential only"):
        bench.agreement(joined[["m3gnet"]], [0.08])
