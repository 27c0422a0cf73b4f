"""Is this crystal one we have seen? Matching within a batch and against the training data.

pymatgen's ``StructureMatcher`` (default tolerances, no supercells) decides whether two
crystals are the same up to symmetry and small distortions. Fitting is the expensive part,
so each structure is reduced to its Niggli-reduced primitive cell once (:func:`prepare`;
``fit`` then skips its own reduction, which otherwise takes most of its time), and pairs
that cannot match (other formula, other primitive size, Niggli lengths too far apart:
:func:`can_match`) are never fitted. Used by the known-structure index and duplicate search
(:mod:`pipeline.screen.known`) and by the hull's choice of distinct polymorphs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure


@dataclass(frozen=True)
class Prepared:
    """A structure reduced once for matching: its primitive cell and cheap invariants."""

    primitive: Structure  # Niggli-reduced
    formula: str
    nsites: int
    lengths: tuple[float, float, float]  # Niggli cell lengths at 1 Å^3 per atom, ascending


def prepare(structure: Structure) -> Prepared:
    """The primitive cell of ``structure`` and the invariants :func:`can_match` compares."""
    return invariants(structure.get_primitive_structure().get_reduced_structure("niggli"))


def invariants(primitive: Structure) -> Prepared:
    """The :class:`Prepared` of a cell that is already primitive and Niggli-reduced."""
    lattice = primitive.lattice
    scale = (len(primitive) / lattice.volume) ** (1 / 3)
    lengths = tuple(sorted(float(x) * scale for x in lattice.abc))
    return Prepared(primitive, primitive.composition.reduced_formula, len(primitive), lengths)


def can_match(a: Prepared, b: Prepared, ltol: float) -> bool:
    """Necessary conditions of ``StructureMatcher.fit(a, b)`` that cost nothing.

    Without supercells the matcher compares primitive cells of equal size, scaled to equal
    volumes, and looks for a basis of ``a``'s lattice whose lengths are within a factor
    ``1 + ltol`` of ``b``'s Niggli cell lengths. The Niggli lengths being the lattice's successive
    minima, ``a``'s k-th Niggli length is then below ``(1 + ltol)`` times ``b``'s, for each k.
    """
    if a.formula != b.formula or a.nsites != b.nsites:
        return False
    bound = (1.0 + ltol) * (1.0 + 1e-6)
    return all(x < bound * y for x, y in zip(a.lengths, b.lengths))


def matches(a: Prepared, b: Prepared, matcher: StructureMatcher) -> bool:
    """``matcher.fit(a, b)`` on the reduced cells, after the free necessary conditions."""
    return can_match(a, b, matcher.ltol) and matcher.fit(
        a.primitive, b.primitive, skip_structure_reduction=True
    )


def default_matcher() -> StructureMatcher:
    """pymatgen's default matcher, working on the primitive cells ``prepare`` made once."""
    return StructureMatcher(primitive_cell=False)


def duplicates(
    structures: Sequence[Prepared],
    ids: Sequence[str],
    groups: Sequence[str] | None = None,
    matcher: StructureMatcher | None = None,
) -> list[str | None]:
    """For each structure, the id of the first earlier one of its group it matches.

    ``groups`` (e.g. each structure's generator) limits duplicates to the same group;
    None: one group. The first of each set of matching structures gets None.
    """
    matcher = matcher or default_matcher()
    groups = groups if groups is not None else [""] * len(structures)
    kept: dict[tuple[str, str, int], list[tuple[str, Prepared]]] = defaultdict(list)
    out: list[str | None] = []
    for structure, structure_id, group in zip(structures, ids, groups):
        pool = kept[group, structure.formula, structure.nsites]
        first = next((i for i, other in pool if matches(structure, other, matcher)), None)
        if first is None:
            pool.append((structure_id, structure))
        out.append(first)
    return out
