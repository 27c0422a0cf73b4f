"""A potential's hull checked against experiment: formation enthalpies and stable phases.

For the hull of one potential's relaxed references, on its energy scale and with its oxygen
reference (:mod:`pipeline.screen.convex_hull`):

* the formation enthalpy of every phase with a measured value
  (:func:`pipeline.screen.thermochemistry.measured_formation_enthalpies`) against that value,
  and the mean absolute error (eV/atom). With a fitted oxygen reference, each fitted oxide is
  counted by its leave-one-out residual (predicted with ``mu_O`` fitted to the other oxides), so
  the fit does not flatter the error (a lone fitted oxide has none: it only sets ``mu_O``);
* which experimentally stable phases sit above the potential's hull, and by how much.
  Experimentally stable: on the hull of the measured formation enthalpies themselves (the
  elements at zero), so the check needs no list typed by hand and works for any system.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import oxygen_fit_of, pd_entry
from pipeline.screen.thermochemistry import (
    MeasuredEnthalpy,
    OxygenFit,
    lowest_per_formula,
    measured_formation_enthalpies,
    with_oxygen_reference,
)

ON_HULL = 1e-4  # eV/atom: closer to the hull than this counts as on it (numerical noise)


@dataclass(frozen=True)
class FormationCheck:
    """One phase's computed formation enthalpy (eV/atom) against the measured one."""

    formula: str
    computed: float
    measured: float
    residual: float  # counted in the MAE: leave-one-out for a fitted oxide
    source: str


@dataclass(frozen=True)
class HullCheck:
    """How one hull compares with experiment (see the module docstring)."""

    phases: int
    oxygen: OxygenFit
    formation: list[FormationCheck]
    above_hull: dict[str, float]  # experimentally stable phase -> its E_hull here, eV/atom
    missing: list[str] = field(default_factory=list)  # stable phases not among the references

    @property
    def mae(self) -> float:
        """Mean absolute formation-enthalpy error over the phases with a residual, eV/atom (NaN
        without one: e.g. a single measured oxide, fitted to itself)."""
        residuals = [abs(f.residual) for f in self.formation if math.isfinite(f.residual)]
        return sum(residuals) / len(residuals) if residuals else math.nan

    def summary(self) -> dict:
        """The figures as plain JSON-ready values (eV/atom, rounded to meV)."""
        return {
            "phases": self.phases,
            "oxygen_reference": self.oxygen.describe(),
            "formation_enthalpy_mae_eV_per_atom": _rounded(self.mae),
            "residuals_eV_per_atom": {f.formula: _rounded(f.residual) for f in self.formation},
            "stable_phases_above_hull_eV_per_atom": {
                k: round(v, 3) for k, v in self.above_hull.items()
            },
            "stable_phases_missing": self.missing,
        }


def _rounded(value: float) -> float | None:
    """meV precision; None (JSON null) for NaN."""
    return round(value, 3) if math.isfinite(value) else None


def experimentally_stable(
    measured: dict[str, MeasuredEnthalpy], elements: Sequence[str]
) -> list[str]:
    """The measured compounds on the hull of the measured formation enthalpies (elements at 0)."""
    entries = [PDEntry(Composition(el), 0.0) for el in elements]
    entries += [
        PDEntry(Composition(f), m.enthalpy_per_atom * Composition(f).num_atoms)
        for f, m in measured.items()
    ]
    diagram = PhaseDiagram(entries)
    return sorted(
        e.composition.reduced_formula
        for e in diagram.stable_entries
        if not e.composition.is_element
    )


def check_hull(references: Sequence[CrystalRecord], oxygen_reference: str) -> HullCheck:
    """Check the hull of ``references`` (one potential's relaxed phases) against experiment."""
    raw = [pd_entry(r) for r in references]
    fit = oxygen_fit_of(raw, oxygen_reference)
    entries = with_oxygen_reference(raw, fit)
    diagram = PhaseDiagram(entries)
    elements = sorted({el.symbol for e in entries for el in e.composition.elements})
    measured = measured_formation_enthalpies(elements)
    lowest = lowest_per_formula(entries)
    formation = []
    for formula in sorted(set(measured) & set(lowest)):
        computed = float(diagram.get_form_energy_per_atom(lowest[formula]))
        target = measured[formula]
        residual = computed - target.enthalpy_per_atom
        if formula in fit.fitted_to:
            # Only a prediction from the other oxides tests the fit: none with a single oxide.
            residual = fit.leave_one_out.get(formula, math.nan)
        formation.append(
            FormationCheck(formula, computed, target.enthalpy_per_atom, residual, target.source)
        )
    above, missing = {}, []
    for formula in experimentally_stable(measured, elements):
        if formula not in lowest:
            missing.append(formula)
            continue
        e_hull = float(diagram.get_e_above_hull(lowest[formula], allow_negative=True))
        if e_hull > ON_HULL:
            above[formula] = e_hull
    return HullCheck(len(lowest), fit, formation, above, missing)
