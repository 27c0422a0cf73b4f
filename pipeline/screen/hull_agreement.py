"""How often potentials agree on a candidate's stability, each on its own hull and scale.

Each potential's E_hull of a candidate is its own energy of the candidate (relaxed by it, or a
single point at another potential's geometry) against the hull of its own relaxed references,
on its energy scale (:func:`pipeline.screen.convex_hull.pd_entry`). Two potentials agree on a
candidate when both have an E_hull and they lie on the same side of every E_hull threshold,
the rule of the screen's second opinion (``agrees``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import ENERGY, e_above_hull, pd_entry, phase_diagram


def e_above_own_hull(
    records: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord],
    oxygen_reference: str | None = None,
) -> dict[str, float]:
    """Candidate id -> E_hull (eV/atom) against the hull of ``references``; NaN without energy."""
    diagram = phase_diagram(references, oxygen_reference)
    result = {}
    for record in records:
        energy = record.properties.get(ENERGY, math.nan)
        result[record.id] = (
            e_above_hull(diagram, pd_entry(record)).e_above_hull
            if math.isfinite(energy)
            else math.nan
        )
    return result


def verdicts_agree(first: float, second: float, thresholds: Sequence[float]) -> bool:
    """Both E_hull known and on the same side of every threshold."""
    if not (math.isfinite(first) and math.isfinite(second)):
        return False
    return all((first <= t) == (second <= t) for t in thresholds)


def pairwise_agreement(
    e_hull: Mapping[str, Mapping[str, float]], thresholds: Sequence[float]
) -> dict[str, dict]:
    """Per pair of potentials (``a-b``): candidates both evaluated, the share that agree, and
    the median |E_hull difference| (eV/atom). ``e_hull``: potential -> candidate id -> E_hull."""
    pairs = {}
    for a, b in itertools.combinations(sorted(e_hull), 2):
        ids = sorted(set(e_hull[a]) & set(e_hull[b]))
        both = [
            (e_hull[a][i], e_hull[b][i])
            for i in ids
            if math.isfinite(e_hull[a][i]) and math.isfinite(e_hull[b][i])
        ]
        differences = sorted(abs(x - y) for x, y in both)
        pairs[f"{a}-{b}"] = {
            "candidates": len(ids),
            "both_evaluated": len(both),
            "agree": round(
                sum(verdicts_agree(e_hull[a][i], e_hull[b][i], thresholds) for i in ids)
                / max(len(ids), 1),
                3,
            ),
            "median_abs_difference_eV_per_atom": (
                round(differences[len(differences) // 2], 3) if differences else math.nan
            ),
        }
    return pairs
