"""Is a generated crystal physically plausible? Distances, density, charge neutrality.

Each check returns ``""`` for a structure that passes and a one-line reason otherwise,
so the validation table can say why every rejected structure was rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.settings.typed import ScreenSettings


@dataclass(frozen=True)
class ValidityLimits:
    """Shortest allowed interatomic distance (Å) and the sane range of volume per atom (Å^3).

    The volume range is wide on purpose: Mg-Mn-O solids sit near 10-12 Å^3/atom and a
    relaxation can fix a cell that is off by a factor of two, but not a gas or a collapse.
    """

    min_distance: float
    min_volume_per_atom: float
    max_volume_per_atom: float

    def __post_init__(self) -> None:
        if self.min_distance <= 0 or not 0 < self.min_volume_per_atom < self.max_volume_per_atom:
            raise PipelineInputError(
                "validity limits need min_distance > 0 and"
                " 0 < min_volume_per_atom < max_volume_per_atom"
            )

    @classmethod
    def from_settings(cls, screen: ScreenSettings) -> ValidityLimits:
        """The limits of a run's ``screen`` settings."""
        return cls(screen.min_distance, screen.min_volume_per_atom, screen.max_volume_per_atom)


def min_interatomic_distance(structure: Structure) -> float:
    """Shortest distance between two atoms, periodic images included (Å)."""
    if len(structure) == 1:
        # A single atom only meets its own images: the shortest lattice translation.
        return float(min(structure.lattice.abc))
    distances = structure.distance_matrix
    np.fill_diagonal(distances, np.inf)
    shortest = float(distances.min())
    # Images of the same atom are not in the distance matrix; short lattice vectors are.
    return min(shortest, float(min(structure.lattice.abc)))


def element_problem(structure: Structure, system: ChemicalSystem) -> str:
    """Elements outside the chemical system."""
    foreign = system.foreign_elements(site.specie.symbol for site in structure)
    return f"elements outside {system}: {', '.join(foreign)}" if foreign else ""


def structural_problem(structure: Structure, limits: ValidityLimits) -> str:
    """Atoms too close, or a volume per atom outside the sane range."""
    volume_per_atom = structure.volume / len(structure)
    if not np.isfinite(volume_per_atom) or volume_per_atom <= 0:
        return "degenerate cell (zero or non-finite volume)"
    shortest = min_interatomic_distance(structure)
    if shortest < limits.min_distance:
        return f"atoms overlap: shortest distance {shortest:.2f} Å < {limits.min_distance} Å"
    if volume_per_atom < limits.min_volume_per_atom:
        return f"too dense: {volume_per_atom:.1f} Å^3/atom < {limits.min_volume_per_atom} Å^3/atom"
    if volume_per_atom > limits.max_volume_per_atom:
        return f"too sparse: {volume_per_atom:.1f} Å^3/atom > {limits.max_volume_per_atom} Å^3/atom"
    return ""


def charge_problem(structure: Structure) -> str:
    """No assignment of common oxidation states makes the composition neutral.

    Uses pymatgen's ``oxi_state_guesses`` on the reduced formula (sites of one element
    may take different states, so mixed valence such as Mn3O4 is allowed).
    """
    composition = structure.composition.reduced_composition
    if len(composition.elements) == 1:
        return ""  # an element is neutral
    if composition.oxi_state_guesses(max_sites=-1):
        return ""
    return f"no charge-neutral oxidation states for {composition.reduced_formula}"
