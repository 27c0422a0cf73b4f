"""The known structure shown beside each candidate.

Chosen in this order (the first rule that applies):

1. ``known``: the known structure the relaxed candidate is (the export's ``known_as``,
   answered by the known-structure index, :mod:`pipeline.screen.known`).
2. ``fingerprint``: among the known structures of the same reduced formula (the data set
   with held-out formulas, and the hull's relaxed phases), the one with the smallest
   fingerprint distance: the Euclidean distance between radial distribution functions (pair
   distances up to :data:`RDF_CUTOFF` Å per atom, Gaussian-smoothed), which compares local
   geometry without aligning cells.
3. ``composition``: no known structure has the formula: the hull reference nearest in
   composition (atomic fractions, L1 distance), the lowest energy per atom among equals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Composition, Structure
from tqdm import tqdm

from pipeline.records import CrystalRecord

RDF_CUTOFF = 6.0  # Å
RDF_BIN = 0.05  # Å
RDF_SMOOTHING = 0.1  # Å, standard deviation of the Gaussian
HOW = {
    "known": "the same structure (known_as)",
    "fingerprint": "same formula, most similar RDF",
    "composition": "nearest composition on the hull",
}


@dataclass(frozen=True)
class Nearest:
    """The known structure shown beside one candidate."""

    candidate_id: str
    known_id: str | None  # None when there is nothing known to show
    rule: str  # a key of HOW; "" with no known structure
    distance: float  # fingerprint or composition distance; 0 for a match, NaN if none

    @property
    def how(self) -> str:
        return HOW.get(self.rule, "")


def radial_fingerprint(structure: Structure) -> np.ndarray:
    """Pair distances up to :data:`RDF_CUTOFF` Å per atom, histogrammed and Gaussian-smoothed."""
    edges = np.arange(0.0, RDF_CUTOFF + RDF_BIN, RDF_BIN)
    _, _, _, distances = structure.get_neighbor_list(RDF_CUTOFF)
    counts, _ = np.histogram(distances, bins=edges)
    offsets = np.arange(-3 * RDF_SMOOTHING, 3 * RDF_SMOOTHING + RDF_BIN, RDF_BIN)
    kernel = np.exp(-0.5 * (offsets / RDF_SMOOTHING) ** 2)
    return np.convolve(counts / len(structure), kernel / kernel.sum(), mode="same")


def composition_distance(a: Composition, b: Composition) -> float:
    """L1 distance between the atomic fractions of two compositions."""
    elements = set(a.elements) | set(b.elements)
    return float(sum(abs(a.get_atomic_fraction(e) - b.get_atomic_fraction(e)) for e in elements))


def find_nearest(
    candidates: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord],
    known_structures: Sequence[CrystalRecord],
    known_as: Mapping[str, str],
) -> list[Nearest]:
    """The known structure to show beside each candidate (see the module's rules).

    Parameters
    ----------
    candidates
        Relaxed structures.
    references
        The hull's relaxed references (``properties.energy_per_atom`` used to break ties).
    known_structures
        The data set with held-out formulas (the data stage's known.json.gz).
    known_as
        Candidate id -> the id of the known structure it is (candidates.csv's ``known_as``).
    """
    known = {r.id: r for r in known_structures} | {r.id: r for r in references}
    by_formula: dict[str, list[CrystalRecord]] = defaultdict(list)
    wanted = {r.to_structure().composition.reduced_formula for r in candidates}
    for record in known.values():
        formula = Composition(record.formula).reduced_formula
        if formula in wanted:
            by_formula[formula].append(record)
    fingerprints: dict[str, np.ndarray] = {}

    def fingerprint(record: CrystalRecord) -> np.ndarray:
        if record.id not in fingerprints:
            fingerprints[record.id] = radial_fingerprint(record.to_structure())
        return fingerprints[record.id]

    reference_compositions = [(r, Composition(r.formula)) for r in references]
    out = []
    for candidate in tqdm(candidates, desc="nearest known", unit="structure"):
        match = known_as.get(candidate.id)
        if match and match in known:
            out.append(Nearest(candidate.id, match, "known", 0.0))
            continue
        structure = candidate.to_structure()
        same_formula = by_formula.get(structure.composition.reduced_formula, [])
        if same_formula:
            own = radial_fingerprint(structure)
            distances = [float(np.linalg.norm(own - fingerprint(r))) for r in same_formula]
            best = int(np.argmin(distances))
            out.append(Nearest(candidate.id, same_formula[best].id, "fingerprint", distances[best]))
            continue
        if reference_compositions:
            composition = structure.composition
            scored = [
                (
                    composition_distance(composition, c),
                    r.properties.get("energy_per_atom", np.inf),
                    r.id,
                )
                for r, c in reference_compositions
            ]
            distance, _, best_id = min(scored)
            out.append(Nearest(candidate.id, best_id, "composition", distance))
            continue
        out.append(Nearest(candidate.id, None, "", float("nan")))
    return out
