"""Is this crystal one we have seen? Matching within a batch and against the training data.

pymatgen's ``StructureMatcher`` (default tolerances, no supercells) decides whether two
crystals are the same up to symmetry and small distortions. Fitting is the expensive part,
so each structure is reduced to its Niggli-reduced primitive cell once (:func:`prepare`;
``fit`` then skips its own reduction, which otherwise takes most of its time), and pairs
that cannot match (other formula, other primitive size, Niggli lengths too far apart:
:func:`can_match`) are never fitted. Used by the validate stage (duplicates, novelty)
by the quality evaluation (uniqueness, novelty) and by the export (is a relaxed candidate a
known structure?).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from tqdm import tqdm


@dataclass(frozen=True)
class Prepared:
    """A structure reduced once for matching: its primitive cell and cheap invariants."""

    primitive: Structure  # Niggli-reduced
    formula: str
    nsites: int
    lengths: tuple[float, float, float]  # Niggli cell lengths at 1 Å^3 per atom, ascending


def prepare(structure: Structure) -> Prepared:
    """The primitive cell of ``structure`` and the invariants :func:`can_match` compares."""
    primitive = structure.get_primitive_structure().get_reduced_structure("niggli")
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


def unique_indices(structures: Sequence[Prepared], matcher: StructureMatcher) -> list[int]:
    """Indices of the first structure of each group of matching structures."""
    by_key: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, s in enumerate(structures):
        by_key[s.formula, s.nsites].append(i)
    keep = []
    for indices in by_key.values():
        representatives: list[int] = []
        for i in indices:
            if not any(matches(structures[i], structures[j], matcher) for j in representatives):
                representatives.append(i)
        keep.extend(representatives)
    return sorted(keep)


def novel_mask(
    structures: Sequence[Prepared], training: Sequence[Prepared], matcher: StructureMatcher
) -> list[bool]:
    """Whether each structure matches no training structure."""
    by_key: dict[tuple[str, int], list[Prepared]] = defaultdict(list)
    for t in training:
        by_key[t.formula, t.nsites].append(t)
    return [
        not any(matches(s, t, matcher) for t in by_key[s.formula, s.nsites])
        for s in tqdm(structures, desc="novelty", unit="structure", leave=False)
    ]


@dataclass(frozen=True)
class Match:
    """Which earlier candidate a candidate duplicates, and which training structure it is."""

    duplicate_of: str | None
    known_as: str | None


def find_matches(
    candidates: Sequence[tuple[str, Structure]],
    known: Sequence[tuple[str, Structure]],
    matcher: StructureMatcher | None = None,
    progress: bool = False,
) -> list[Match]:
    """For each candidate: the first earlier candidate it duplicates, and a known match.

    Parameters
    ----------
    candidates
        ``(id, structure)`` in their order of priority: the first of a group of
        duplicates is kept, the later ones point to it.
    known
        ``(id, structure)`` of the training data. Only candidates that are not
        duplicates are compared with them; only known structures with a candidate's
        formula are reduced.
    """
    matcher = matcher or default_matcher()
    known_prepared = _index_known(candidates, known, progress)
    kept: dict[tuple[str, int], list[tuple[str, Prepared]]] = defaultdict(list)
    results = []
    for candidate_id, structure in tqdm(
        candidates, desc="deduplicate", unit="structure", disable=not progress
    ):
        prepared = prepare(structure)
        key = (prepared.formula, prepared.nsites)
        duplicate_of = _first_match(prepared, kept[key], matcher)
        known_as = None
        if duplicate_of is None:
            kept[key].append((candidate_id, prepared))
            known_as = _first_match(prepared, known_prepared[key], matcher)
        results.append(Match(duplicate_of=duplicate_of, known_as=known_as))
    return results


def known_matches(
    candidates: Sequence[tuple[str, Structure]],
    known: Sequence[tuple[str, Structure]],
    matcher: StructureMatcher | None = None,
    progress: bool = False,
) -> list[str | None]:
    """For each candidate, the id of the first ``known`` structure it matches (None: new).

    Unlike :func:`find_matches`, every candidate is compared, duplicates included.
    """
    matcher = matcher or default_matcher()
    known_prepared = _index_known(candidates, known, progress)
    out = []
    for _, structure in tqdm(candidates, desc="known?", unit="structure", disable=not progress):
        prepared = prepare(structure)
        out.append(
            _first_match(prepared, known_prepared[prepared.formula, prepared.nsites], matcher)
        )
    return out


def _index_known(
    candidates: Sequence[tuple[str, Structure]],
    known: Sequence[tuple[str, Structure]],
    progress: bool,
) -> dict[tuple[str, int], list[tuple[str, Prepared]]]:
    """The known structures of the candidates' formulas, prepared, by formula and size."""
    formulas = {structure.composition.reduced_formula for _, structure in candidates}
    index: dict[tuple[str, int], list[tuple[str, Prepared]]] = defaultdict(list)
    for known_id, structure in tqdm(
        known, desc="known cells", unit="structure", disable=not progress
    ):
        if structure.composition.reduced_formula in formulas:
            prepared = prepare(structure)
            index[prepared.formula, prepared.nsites].append((known_id, prepared))
    return index


def _first_match(
    prepared: Prepared, pool: Sequence[tuple[str, Prepared]], matcher: StructureMatcher
) -> str | None:
    for other_id, other in pool:
        if matches(prepared, other, matcher):
            return other_id
    return None
