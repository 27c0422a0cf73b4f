"""Elemental reference structures built offline from ASE's reference states.

A hull needs every element's ground state. When the data source lacks one (a user's CIF
folder rarely holds the pure elements), it is built here and relaxed with the potential
like every other reference:

* the diatomic gases H2, N2, O2, F2 and Cl2 (and Br2, I2) as one molecule in a 10 Å box;
* the noble gases as one atom in that box;
* the other elements from ``ase.data.reference_states`` with ``ase.build.bulk``;
* where ASE cannot build the reference state (it needs an atomic basis ASE does not ship:
  B, P, S, Ga, Se, Te, Mn, ...), a close-packed fcc guess at the element's atomic radius,
  marked ``approximate`` in its provenance: its relaxed energy lies above the true ground
  state, so put a CIF of the real element beside your structures for such an element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.data import atomic_numbers, covalent_radii, reference_states
from pymatgen.core import Element
from pymatgen.io.ase import AseAtomsAdaptor

from pipeline.records import CrystalRecord

ASE_SOURCE = "ase"
BOX = 10.0  # Å, the molecule's box: far beyond the potentials' cutoffs
MOLECULES = {"H": "H2", "N": "N2", "O": "O2", "F": "F2", "Cl": "Cl2"}
HEAVY_DIATOMIC = ("Br", "I")  # not in ASE's molecule set: a dimer at twice the covalent radius


@dataclass(frozen=True)
class ElementalReference:
    """An elemental structure and how it was made (e.g. ``bulk hcp``, ``molecule O2``)."""

    symbol: str
    atoms: Atoms
    how: str
    approximate: bool = False

    def to_record(self) -> CrystalRecord:
        record = CrystalRecord.from_structure(
            AseAtomsAdaptor.get_structure(self.atoms),
            id=f"{self.symbol}-ase-{self.how.replace(' ', '-')}",
            source=ASE_SOURCE,
        )
        record.provenance = {"built_by": f"ase {self.how}"}
        if self.approximate:
            record.provenance["approximate"] = "ASE has no buildable reference state"
        return record


def elemental_reference(symbol: str) -> ElementalReference:
    """The reference structure of element ``symbol`` (see the module docstring)."""
    if symbol in MOLECULES:
        atoms = molecule(MOLECULES[symbol])
        return ElementalReference(symbol, _boxed(atoms), f"molecule {MOLECULES[symbol]}")
    if symbol in HEAVY_DIATOMIC:
        bond = 2 * covalent_radii[atomic_numbers[symbol]]
        atoms = Atoms(f"{symbol}2", positions=[[0, 0, 0], [0, 0, bond]])
        return ElementalReference(symbol, _boxed(atoms), f"molecule {symbol}2")
    state = reference_states[atomic_numbers[symbol]] or {}
    if state.get("symmetry") == "atom":
        return ElementalReference(symbol, _boxed(Atoms(symbol)), "atom")
    try:
        atoms = bulk(symbol)
    except (ValueError, RuntimeError, KeyError, NotImplementedError):
        radius = Element(symbol).atomic_radius or covalent_radii[atomic_numbers[symbol]]
        atoms = bulk(symbol, "fcc", a=2 * np.sqrt(2) * float(radius))
        return ElementalReference(symbol, atoms, "bulk fcc guess", approximate=True)
    return ElementalReference(symbol, atoms, f"bulk {state.get('symmetry', '')}".strip())


def _boxed(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.set_cell([BOX, BOX, BOX])
    atoms.center()
    atoms.pbc = True
    return atoms
