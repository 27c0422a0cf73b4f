"""The geometry of the ternary hull plot: triangle corners, stable phases, tie lines, and where
each candidate's composition lies (first element bottom left, second bottom right, third at
the top, as in the report's PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition

from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import hull_entries

HEIGHT = math.sqrt(3) / 2


@dataclass
class TernaryHull:
    """Everything the page draws in the ternary plot, in the plot's x/y coordinates."""

    elements: list[str]
    stable: list[dict] = field(default_factory=list)  # {"id", "formula", "x", "y"}
    tie_lines: list[list[float]] = field(default_factory=list)  # [x1, y1, x2, y2]


def ternary_xy(composition: Composition, elements: Sequence[str]) -> tuple[float, float]:
    """Plot coordinates of ``composition`` in the triangle of ``elements``."""
    fractions = [composition.get_atomic_fraction(el) for el in elements]
    return fractions[1] + 0.5 * fractions[2], HEIGHT * fractions[2]


def ternary_hull(
    references: Sequence[CrystalRecord], elements: Sequence[str], oxygen_reference: str
) -> TernaryHull:
    """The convex hull of the relaxed references projected on the composition triangle.

    References without an energy are left out; a set that does not span every element
    gives a hull with no phases (the page then shows the candidates alone), and a system of
    other than three elements one with no geometry at all.
    """
    hull = TernaryHull(list(elements))
    if len(elements) != 3:  # no triangle to draw in
        return hull
    # on the potential's energy scale and with the oxygen reference, as the ehull stage's
    entries = hull_entries(
        [r for r in references if "energy_per_atom" in r.properties], oxygen_reference
    )
    try:
        diagram = PhaseDiagram(entries, elements=[Composition(e).elements[0] for e in elements])
    except ValueError:  # some element has no reference: no hull to draw
        return hull
    for facet in diagram.facets:
        for i in range(len(facet)):
            for j in range(i + 1, len(facet)):
                a = ternary_xy(diagram.qhull_entries[facet[i]].composition, elements)
                b = ternary_xy(diagram.qhull_entries[facet[j]].composition, elements)
                hull.tie_lines.append([round(v, 5) for v in (*a, *b)])
    for entry in sorted(diagram.stable_entries, key=lambda e: e.composition.reduced_formula):
        x, y = ternary_xy(entry.composition, elements)
        hull.stable.append(
            {
                "id": entry.name,
                "formula": entry.composition.reduced_formula,
                "x": round(x, 5),
                "y": round(y, 5),
            }
        )
    return hull
