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
            "e_above_hull": [0.0, 0.1, 0.3, 0.05],
            "e_above_hull_chgnet": [0.02, 0.3, 0.25, math.nan],
            "e_above_hull_mp": [0.0, 0.0, 0.0, 0.0],  # not a potential
        }
    )
    result = bench.agreement(table, "m3gnet", [0.08, 0.2])
    pair = result["pairs"]["m3gnet-chgnet"]
    assert pair["candidates"] == 3  # chgnet failed on the last one
    assert pair["agree_at_0.08"] == 1.0  # below, above, above for both
    assert pair["agree_at_0.2"] == pytest.approx(2 / 3, abs=1e-3)  # 0.1 vs 0.3 disagree
    assert pair["median_abs_difference_eV_per_atom"] == 0.05
    assert result["below_threshold"]["m3gnet"] == {"at_0.08": 2, "at_0.2": 3}
    with pytest.raises(PipelineInputError, match="screen.consensus"):
        bench.agreement(table[["e_above_hull"]], "m3gnet", [0.08])
