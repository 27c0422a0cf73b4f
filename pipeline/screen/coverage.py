"""How completely a set of hull references covers a chemical system.

A binary subsystem (e.g. Ba-O) with no compound among the references leaves the hull too
high over that edge: a candidate whose decomposition could involve such a compound gets an
E_hull that is only a lower bound of the true one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from pymatgen.core import Composition, Element


def elements_of(formula: str) -> frozenset[str]:
    return frozenset(el.symbol for el in Composition(formula).elements)


def binaries_without_compounds(elements: Sequence[str], formulas: Iterable[str]) -> list[str]:
    """The binary subsystems of ``elements`` (``"Ba-O"``) that no formula of ``formulas`` is in."""
    present = {elements_of(f) for f in formulas}
    return [
        f"{a}-{b}"
        for a, b in itertools.combinations(elements, 2)
        if frozenset((a, b)) not in present
    ]


def with_nonmetal(subsystems: Sequence[str]) -> list[str]:
    """The subsystems with a non-metal (``Ba-O``), leaving out the metal pairs (``Ba-Ti``):
    a candidate with its anions can decompose into a missing oxide, nitride, ..., but into
    an intermetallic only when it is short of anions."""
    return [s for s in subsystems if not all(Element(el).is_metal for el in s.split("-"))]


def uncovered_subsystems_of(formula: str, missing: Sequence[str]) -> list[str]:
    """Those of the ``missing`` subsystems whose elements are all in ``formula``."""
    own = elements_of(formula)
    return [s for s in missing if set(s.split("-")) <= own]
