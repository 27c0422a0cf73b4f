"""The phases a candidate's E_hull needs, and E_hull among phases computed at one level.

A DFT check cannot afford the whole hull, so it computes what each candidate's E_hull rests on
(:func:`reference_ids`): the known lowest polymorph of its formula and the competing phases,
the mixture of phases of other compositions that the ML hull puts lowest at its composition.
The DFT E_hull is then the distance to the lower convex hull of the computed phases at the
candidate's composition: the cheapest mixture of them with its composition, a linear programme
(:func:`e_above_hull`). Unlike pymatgen's ``PhaseDiagram`` it needs no elemental references,
which a facet of oxides does not involve (an element such as the 29-atom alpha-Mn is computed
only where it competes). A phase that is not computed could only lower the hull, so the DFT
E_hull is at most the one on a complete DFT hull; they are equal unless DFT puts a phase that
the ML hull ranked elsewhere below the computed ones (docs/dft.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from scipy.optimize import linprog

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord

ENERGY = "energy_per_atom"
FRACTION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Phase:
    """A phase on a hull: name, composition and energy per atom (eV/atom)."""

    name: str
    composition: Composition
    energy_per_atom: float


@dataclass(frozen=True)
class HullDistance:
    """E_hull (eV/atom, negative below the hull) and the mixture it is measured to."""

    e_above_hull: float
    decomposition: dict[str, float]  # phase name -> atom fraction

    def describe(self) -> str:
        """``"0.67 MnO2 + 0.33 MgO"``-style text, largest fraction first."""
        parts = sorted(self.decomposition.items(), key=lambda item: -item[1])
        return " + ".join(f"{fraction:.3g} {name}" for name, fraction in parts)


def _ml_energy(record: CrystalRecord) -> float:
    if ENERGY not in record.properties:
        raise PipelineInputError(f"{record.id}: no properties.{ENERGY} (an ML-relaxed record?)")
    return record.properties[ENERGY]


def _pd_entry(record: CrystalRecord) -> PDEntry:
    composition = Composition(record.formula)
    return PDEntry(composition, _ml_energy(record) * composition.num_atoms, name=record.id)


def reference_ids(
    candidates: Sequence[CrystalRecord], phases: Sequence[CrystalRecord]
) -> dict[str, list[str]]:
    """Per candidate, the ids of the ML-hull ``phases`` its E_hull needs.

    The lowest polymorph of its reduced formula among ``phases`` (if any) and its competing
    phases: the decomposition that the ML hull of ``phases`` gives its composition from phases
    of other compositions (pymatgen's ``get_decomp_and_phase_separation_energy``). Together
    they hold the facet under the candidate on the ML hull, so among them its ML E_hull is the
    full hull's. Energies are the records' ML ``energy_per_atom``, all from one potential.
    """
    try:
        diagram = PhaseDiagram([_pd_entry(r) for r in phases])
    except ValueError as exc:
        raise PipelineInputError(f"the hull phases make no hull: {exc}") from None
    lowest: dict[str, CrystalRecord] = {}
    for record in phases:
        formula = Composition(record.formula).reduced_formula
        if formula not in lowest or _ml_energy(record) < _ml_energy(lowest[formula]):
            lowest[formula] = record
    needed: dict[str, list[str]] = {}
    for candidate in candidates:
        entry = _pd_entry(candidate)
        ids = set()
        if not entry.composition.is_element:
            competing, _ = diagram.get_decomp_and_phase_separation_energy(entry)
            ids = {e.name for e in competing}
        polymorph = lowest.get(entry.composition.reduced_formula)
        if polymorph is not None:
            ids.add(polymorph.id)
        needed[candidate.id] = sorted(ids)
    return needed


def e_above_hull(candidate: Phase, references: Iterable[Phase]) -> HullDistance:
    """E_hull of ``candidate`` above the lower hull of ``references`` at its composition.

    Minimises the energy of a mixture of references with the candidate's atom fractions
    (``scipy.optimize.linprog``). A reference of the candidate's own name is left out: for a
    structure that is itself a reference, this is its distance to the mixture of the others
    (negative where it is stable, as pymatgen's phase separation energy).
    """
    pool = [p for p in references if p.name != candidate.name]
    elements = sorted({el.symbol for p in (*pool, candidate) for el in p.composition.elements})
    if not pool:
        raise PipelineInputError(f"{candidate.name}: no reference phases to measure E_hull to")

    def fractions(composition: Composition) -> np.ndarray:
        return np.array([composition.get_atomic_fraction(el) for el in elements])

    matrix = np.stack([fractions(p.composition) for p in pool], axis=1)
    energies = np.array([p.energy_per_atom for p in pool])
    solution = linprog(
        energies, A_eq=matrix, b_eq=fractions(candidate.composition), bounds=(0, None)
    )
    if not solution.success:
        raise PipelineInputError(
            f"{candidate.name} ({candidate.composition.reduced_formula}): the references"
            f" {sorted({p.composition.reduced_formula for p in pool})} cannot make its"
            " composition"
        )
    decomposition = {p.name: float(x) for p, x in zip(pool, solution.x) if x > FRACTION_TOLERANCE}
    return HullDistance(float(candidate.energy_per_atom - solution.fun), decomposition)
