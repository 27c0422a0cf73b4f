"""How often potentials agree on a candidate's stability, each on its own hull and scale.

Each potential's E_hull of a candidate is its own energy of the candidate (relaxed by it, or a
single point at another potential's geometry) against the hull of its own relaxed references,
on its energy scale (:func:`pipeline.screen.hull_table.hull_table`). Two potentials agree on a
candidate as the screen's verdict decides ``agrees`` (:meth:`Criteria.agreement`: both E_hull
known and on the same side of both thresholds).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pandas as pd

from pipeline.records import CrystalRecord
from pipeline.screen.criteria import Criteria
from pipeline.screen.hull_table import hull_table


def e_above_own_hull(
    records: Sequence[CrystalRecord], references: Sequence[CrystalRecord], oxygen_reference: str
) -> pd.Series:
    """E_hull (eV/atom) by candidate id against the hull of ``references``; NaN without energy."""
    table = hull_table(records, references, oxygen_reference)
    return table.set_index("id")["e_above_hull"].astype(float)


def pairwise_agreement(e_hull: Mapping[str, pd.Series], criteria: Criteria) -> dict[str, dict]:
    """Per pair of potentials (``a-b``): candidates both were asked about, how many both
    evaluated, the share that agree, and the median |E_hull difference| (eV/atom).
    ``e_hull``: potential -> E_hull by candidate id."""
    pairs = {}
    for a, b in itertools.combinations(sorted(e_hull), 2):
        first, second = e_hull[a].align(e_hull[b], join="inner")
        agrees = criteria.agreement(first, second)
        both = first.notna() & second.notna()
        difference = (first - second)[both].abs()
        pairs[f"{a}-{b}"] = {
            "candidates": len(first),
            "both_evaluated": int(both.sum()),
            "agree": round(float(agrees.mean()), 3) if len(first) else float("nan"),
            "median_abs_difference_eV_per_atom": (
                round(float(difference.median()), 3) if len(difference) else float("nan")
            ),
        }
    return pairs
