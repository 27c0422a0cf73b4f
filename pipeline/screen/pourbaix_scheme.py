"""Aqueous (Pourbaix) stability of candidates: Delta G_pbx at a fixed potential vs RHE.

The stability measure is that of Singh et al. (Chem. Mater. 29, 10159, 2017) used by Kim et
al. (2020): the free energy of a solid above the Pourbaix hull, the lowest-energy combination
of solids and aqueous ions at the same metal ratio (pymatgen's ``PourbaixDiagram``), scanned
over pH at ``V_SHE = V_RHE - 0.0591 pH`` and minimised. The hull is made of the hull references
(stable ones only) and the ions, not of the candidates, so a candidate below the known phases
gets a negative Delta G_pbx.

Putting solids and ions on one footing (the scheme):

* Ions: experimental standard free energies of formation (eV per formula unit). Offline, the
  table that ASE ships (``ase.phasediagram.solvated``: Johnson, Oelkers and Helgeson 1992, and
  Pourbaix's atlas, 1966); online, the Materials Project's aqueous ion reference data (mp-api).
* Solids: the potential's energies minus fitted reference chemical potentials of the elements,
  ``G_f = E - sum_i n_i mu_i``. Each ``mu_i`` is the potential's elemental reference energy plus a
  correction ``delta_i`` fitted by least squares so the potential's binary oxides among the hull
  references reproduce their experimental free energies of formation (NBS tables, in
  ``resources/thermo``). This is the fitted elemental-phase reference energy (FERE) idea of
  Stevanovic et al. (PRB 85, 115104, 2012) with free energies as targets: it absorbs the
  potential's O2 error and the solids' entropy of formation, so the formation energies of solids
  and ions share the experimental scale that pymatgen's Pourbaix formalism assumes (O and H
  referenced to O2 and H2 gas; water at -2.4583 eV). When the oxides do not determine every
  correction, the minimum-norm solution changes the potential's references as little as possible.
  An element in no fitted oxide has no reference on the experimental scale: the Pourbaix stability
  of a solid containing it is not computed (:func:`pourbaix_obstacle` says why), nor that of a
  solid with an element that has no aqueous species in the ion data.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.analysis.pourbaix_diagram import PREFAC, IonEntry, PourbaixDiagram, PourbaixEntry
from pymatgen.core import Composition, Element
from pymatgen.core.ion import Ion
from pymatgen.entries.computed_entries import ComputedEntry

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord

KJ_PER_MOL_PER_EV = 96.485
WATER_ELEMENTS = frozenset({"H", "O"})


@dataclass(frozen=True)
class AqueousSpecies:
    """One aqueous ion (or neutral aqueous species) with its free energy of formation."""

    formula: str  # pymatgen Ion formula, e.g. "Mg[+2]", "MnO4[-1]", "MnO(aq)"
    energy: float  # eV per formula unit

    @property
    def ion(self) -> Ion:
        return Ion.from_formula(self.formula)


def ase_aqueous_species(elements: Iterable[str]) -> list[AqueousSpecies]:
    """The aqueous species of ASE's table made of ``elements`` (plus H, O), water and H+ left out."""
    from ase.phasediagram import solvated

    metals = [el for el in elements if el not in WATER_ELEMENTS]
    species = []
    for name, energy in solvated(metals):
        formula = name.removesuffix("(aq)")
        charge = formula.count("+") - formula.count("-")
        core = formula.rstrip("+-")
        if set(Composition(core).chemical_system.split("-")) <= WATER_ELEMENTS:
            continue
        species.append(
            AqueousSpecies(f"{core}[{charge:+d}]" if charge else f"{core}(aq)", float(energy))
        )
    return species


def mp_aqueous_species(records: Sequence[dict]) -> list[AqueousSpecies]:
    """Aqueous species from the Materials Project's ion reference data (``MPRester``'s
    ``get_ion_reference_data_for_chemsys`` records; energies in kJ/mol or MJ/mol)."""
    to_ev = {"kJ/mol": 1.0 / KJ_PER_MOL_PER_EV, "MJ/mol": 1000.0 / KJ_PER_MOL_PER_EV}
    species = []
    for record in records:
        free_energy = record["data"]["ΔGᶠ"]
        if free_energy["unit"] not in to_ev:
            raise PipelineInputError(f"ion {record['formula']}: unknown unit {free_energy['unit']}")
        species.append(
            AqueousSpecies(record["formula"], free_energy["value"] * to_ev[free_energy["unit"]])
        )
    return species


def fetch_mp_aqueous_species(elements: Iterable[str]) -> list[AqueousSpecies]:
    """Download the ion reference data of ``elements`` from the Materials Project (online)."""
    from mp_api.client import MPRester

    metals = sorted(el for el in elements if el not in WATER_ELEMENTS)
    with MPRester() as rester:
        return mp_aqueous_species(rester.get_ion_reference_data_for_chemsys(metals))


def read_experimental_free_energies(path: str | Path) -> dict[str, float]:
    """Reduced formula -> experimental free energy of formation, eV per formula unit."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"experimental free-energy table not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"formula", "delta_g_f_kj_per_mol"} <= set(rows[0]):
        raise PipelineInputError(f"{path}: needs columns formula, delta_g_f_kj_per_mol")
    table = {}
    for row in rows:
        composition = Composition(row["formula"])
        reduced, factor = composition.get_reduced_composition_and_factor()
        table[reduced.reduced_formula] = (
            float(row["delta_g_f_kj_per_mol"]) / KJ_PER_MOL_PER_EV / factor
        )
    return table


UNVERIFIED = "unverified"


def read_unverified_formulas(path: str | Path) -> set[str]:
    """Reduced formulas of the table's rows that no cited source confirms (``status``
    ``unverified``; every row of a table without a ``status`` column)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        Composition(row["formula"]).reduced_formula
        for row in rows
        if row.get("status", UNVERIFIED).strip() == UNVERIFIED
    }


def unverified_dependence(fit: ReferenceChemicalPotentials, unverified: set[str]) -> list[str]:
    """The fitted oxides of ``fit`` whose free energies no source confirms. Every Delta G_pbx
    depends on all of them: the oxides are fitted jointly, sharing the oxygen correction."""
    return sorted(set(fit.residuals) & unverified)


@dataclass
class ReferenceChemicalPotentials:
    """Fitted reference chemical potentials (eV/atom) and what they were fitted to."""

    mu: dict[str, float]
    elemental: dict[str, float]  # the potential's own elemental reference energies, eV/atom
    residuals: dict[str, float] = field(default_factory=dict)  # fitted oxide: G_f error, eV/atom

    @property
    def fitted_elements(self) -> set[str]:
        """The elements of the fitted oxides: those whose mu is on the experimental scale."""
        return {el.symbol for f in self.residuals for el in Composition(f).elements}

    def formation_energy(self, composition: Composition, energy_per_atom: float) -> float:
        """Free energy of formation of ``composition`` (eV per that composition)."""
        return composition.num_atoms * energy_per_atom - sum(
            n * self.mu[el.symbol] for el, n in composition.items()
        )


def lowest_energy_per_formula(
    records: Iterable[CrystalRecord],
) -> dict[str, tuple[Composition, float]]:
    """Reduced formula -> (reduced composition, lowest energy per atom) over the records."""
    best: dict[str, tuple[Composition, float]] = {}
    for record in records:
        if "energy_per_atom" not in record.properties:
            raise PipelineInputError(f"reference {record.id} has no properties.energy_per_atom")
        composition = Composition(record.formula).reduced_composition
        energy = record.properties["energy_per_atom"]
        key = composition.reduced_formula
        if key not in best or energy < best[key][1]:
            best[key] = (composition, energy)
    return best


def fit_chemical_potentials(
    references: Sequence[CrystalRecord], experimental: dict[str, float]
) -> ReferenceChemicalPotentials:
    """Fit the reference chemical potentials (see the module docstring)."""
    phases = lowest_energy_per_formula(references)
    elements = sorted({el.symbol for comp, _ in phases.values() for el in comp})
    elemental = {
        comp.elements[0].symbol: energy
        for comp, energy in phases.values()
        if len(comp.elements) == 1
    }
    missing = [el for el in elements if el not in elemental]
    if missing:
        raise PipelineInputError(f"the hull references have no elemental phase of {missing}")
    fitted = [f for f in sorted(experimental) if f in phases]
    delta = dict.fromkeys(elements, 0.0)
    residuals = {}
    if fitted:
        free = sorted({el.symbol for f in fitted for el in phases[f][0]})
        matrix = np.array([[phases[f][0][el] for el in free] for f in fitted])

        def potential_formation(formula: str) -> float:
            composition, energy = phases[formula]
            return composition.num_atoms * energy - sum(
                n * elemental[el.symbol] for el, n in composition.items()
            )

        # G_f = potential_formation - sum_i n_i delta_i must equal experiment for each oxide.
        rhs = np.array([potential_formation(f) - experimental[f] for f in fitted])
        solution, *_ = np.linalg.lstsq(matrix, rhs, rcond=None)
        delta.update(zip(free, solution))
        for f, row, target in zip(fitted, matrix, rhs):
            # Fitted minus experimental free energy of formation, per atom.
            residuals[f] = float((target - row @ solution) / phases[f][0].num_atoms)
    mu = {el: elemental[el] + delta[el] for el in elements}
    return ReferenceChemicalPotentials(mu=mu, elemental=elemental, residuals=residuals)


def pourbaix_obstacle(
    composition: Composition,
    fit: ReferenceChemicalPotentials,
    ions: Sequence[AqueousSpecies],
    experimental: dict[str, float],
) -> str | None:
    """Why Delta G_pbx of a solid of ``composition`` cannot be computed, or None if it can."""
    symbols = [el.symbol for el in composition.elements]
    metals = [el for el in symbols if el not in WATER_ELEMENTS]
    if not metals:
        return "no element besides H and O"
    unreferenced = [el for el in symbols if el not in fit.mu]
    if unreferenced:
        return f"no hull reference of {', '.join(unreferenced)}"
    with_ions = {el.symbol for s in ions for el in s.ion.elements}
    no_ions = [el for el in metals if el not in with_ions]
    if no_ions:
        return f"no aqueous species of {', '.join(no_ions)} in the ion data"
    unfitted = [el for el in symbols if el not in fit.fitted_elements]
    if unfitted:
        reasons = []
        for el in unfitted:
            tabulated = sorted(
                f for f in experimental if {e.symbol for e in Composition(f).elements} == {el, "O"}
            )
            reasons.append(
                f"{el}: the hull references hold none of its tabulated oxides"
                f" ({', '.join(tabulated)})"
                if tabulated
                else f"{el}: no binary oxide in the experimental free-energy table"
            )
        return "no experimental oxide datum to fit the reference of " + "; ".join(reasons)
    return None


@dataclass(frozen=True)
class PourbaixResult:
    """Delta G_pbx of one solid: its minimum over the pH scan and where it occurs."""

    delta_g_pbx: float  # eV/atom above the Pourbaix hull
    ph_at_min: float


class PourbaixScreen:
    """Pourbaix hulls of a chemical system, one per metal ratio, built on demand."""

    def __init__(
        self,
        solids: Sequence[tuple[Composition, float]],
        ions: Sequence[AqueousSpecies],
        v_rhe: float,
        ph_grid: Sequence[float],
        concentration: float,
    ) -> None:
        """``solids``: (composition, free energy of formation of that composition in eV);
        ``v_rhe`` (V vs RHE), the pH values scanned and each ion's concentration (mol/L) are
        ``screen.pourbaix``'s.

        Solids of H and O alone (O2, H2O ice) are left out: water and its ions stand for them
        in a Pourbaix diagram, and pymatgen normalises each entry by its atoms other than H
        and O, which they have none of."""
        self.solids = [
            PourbaixEntry(ComputedEntry(c, g), entry_id=f"solid-{i}")
            for i, (c, g) in enumerate(solids)
            if any(el.symbol not in WATER_ELEMENTS for el in c.elements)
        ]
        self.ions = [
            PourbaixEntry(
                IonEntry(s.ion, s.energy), entry_id=f"ion-{i}", concentration=concentration
            )
            for i, s in enumerate(ions)
        ]
        self.concentration = concentration
        self.ph = np.asarray(ph_grid, dtype=float)
        self.v_she = v_rhe - PREFAC * self.ph
        self._diagrams: dict[tuple, PourbaixDiagram] = {}

    def diagram(self, composition: Composition) -> PourbaixDiagram:
        """The Pourbaix diagram at the metal ratio of ``composition`` (cached)."""
        metals = {el.symbol: n for el, n in composition.items() if el.symbol not in WATER_ELEMENTS}
        if not metals:
            raise PipelineInputError(
                f"{composition.reduced_formula} has no element besides H and O"
            )
        total = sum(metals.values())
        key = tuple(sorted((el, round(n / total, 6)) for el, n in metals.items()))
        if key not in self._diagrams:
            allowed = set(metals) | WATER_ELEMENTS
            entries = [
                e
                for e in self.solids + self.ions
                if {el.symbol for el in e.composition.elements} <= allowed
            ]
            for el in metals:
                if not any(Element(el) in e.composition for e in entries if e.phase_type == "Ion"):
                    raise PipelineInputError(f"no aqueous species of {el} in the ion data")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._diagrams[key] = PourbaixDiagram(
                    entries,
                    comp_dict={el: n / total for el, n in metals.items()},
                    conc_dict=dict.fromkeys(metals, self.concentration),
                )
        return self._diagrams[key]

    def evaluate(self, composition: Composition, formation_energy: float) -> PourbaixResult:
        """Delta G_pbx (eV/atom) of a solid of ``composition`` with that formation energy."""
        entry = PourbaixEntry(ComputedEntry(composition, formation_energy))
        energies = self.diagram(composition).get_decomposition_energy(entry, self.ph, self.v_she)
        best = int(np.argmin(energies))
        return PourbaixResult(float(energies[best]), float(self.ph[best]))
