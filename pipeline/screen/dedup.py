"""Duplicates within a batch of candidates, and matches against the training data.

pymatgen's ``StructureMatcher`` decides whether two crystals are the same (up to
symmetry, supercells and small distortions). Only structures with the same reduced
formula can match, so both searches compare within a formula only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from tqdm import tqdm


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
        duplicates are compared with them.
    """
    matcher = matcher or StructureMatcher()
    known_by_formula: dict[str, list[tuple[str, Structure]]] = defaultdict(list)
    for known_id, structure in known:
        known_by_formula[structure.composition.reduced_formula].append((known_id, structure))
    kept_by_formula: dict[str, list[tuple[str, Structure]]] = defaultdict(list)
    matches = []
    for candidate_id, structure in tqdm(candidates, desc="deduplicate", unit="structure",
                                        disable=not progress):
        formula = structure.composition.reduced_formula
        duplicate_of = _first_match(structure, kept_by_formula[formula], matcher)
        known_as = None
        if duplicate_of is None:
            kept_by_formula[formula].append((candidate_id, structure))
            known_as = _first_match(structure, known_by_formula[formula], matcher)
        matches.append(Match(duplicate_of=duplicate_of, known_as=known_as))
    return matches


def unique_structures(
    structures: Sequence[tuple[str, Structure]], matcher: StructureMatcher | None = None
) -> list[tuple[str, Structure]]:
    """The structures that match no earlier one (e.g. training data without supercells)."""
    matches = find_matches(structures, [], matcher)
    return [item for item, match in zip(structures, matches) if match.duplicate_of is None]


def _first_match(
    structure: Structure, pool: Sequence[tuple[str, Structure]], matcher: StructureMatcher
) -> str | None:
    for other_id, other in pool:
        if matcher.fit(structure, other):
            return other_id
    return None
