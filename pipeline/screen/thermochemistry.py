"""Measured formation enthalpies, and the oxygen reference of a hull chosen by them.

Measured data: the experimental standard formation enthalpies (298 K) that the Materials
Project's MP2020 correction scheme was fitted to, as pymatgen ships them
(``pymatgen/analysis/compatibility/exp_compounds.json.gz``: eV per formula unit with an
uncertainty, compiled by Wang et al., Sci. Rep. 11, 15496 (2021) from the Kubaschewski
tables and NIST-JANAF). Every value keeps its source: that file and the compound's key.
The file covers any chemical system, so the same check runs on Mg-Mn-O, Ba-Mn-O or any other.

The oxygen reference. A hull's O2 molecule in a box carries the potential's (and, beneath
it, PBE's) over-binding error of O2; every decomposition that releases oxygen inherits it.
``fitted`` replaces it, as MP2020 and FERE do, by an oxygen chemical potential ``mu_O`` fitted
so that the hull's binary oxides reproduce their measured formation enthalpies (one
parameter, least squares on eV/atom, the metals' own references kept):
``dH_f(MxOy) = [E(MxOy) - x E(M) - y mu_O] / (x + y)``. Only oxides proper (oxygen at -2 by
pymatgen's oxidation-state guess) enter the fit, not peroxides. ``molecule`` keeps the
molecule. :class:`OxygenFit` also gives the leave-one-out residuals (each oxide predicted by
a ``mu_O`` fitted without it), the honest error of the fitted reference.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path

import pymatgen.analysis.compatibility as pymatgen_compatibility
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition

from pipeline.errors import PipelineInputError

OXYGEN = "O"
OXYGEN_REFERENCES = ("fitted", "molecule")
EXPERIMENTAL_FILE = Path(pymatgen_compatibility.__file__).parent / "exp_compounds.json.gz"
EXPERIMENTAL_CITATION = (
    "Wang et al., Sci. Rep. 11, 15496 (2021), from Kubaschewski et al. and NIST-JANAF"
)


@dataclass(frozen=True)
class MeasuredEnthalpy:
    """The measured standard formation enthalpy of one compound, with its source."""

    formula: str  # reduced formula
    enthalpy_per_atom: float  # eV/atom
    uncertainty_per_atom: float  # eV/atom; NaN where the source gives none
    source: str


@cache
def _experimental_compounds() -> tuple[dict, ...]:
    with gzip.open(EXPERIMENTAL_FILE, "rt", encoding="utf-8") as handle:
        return tuple(json.load(handle))


def measured_formation_enthalpies(
    elements: Iterable[str] | None = None,
) -> dict[str, MeasuredEnthalpy]:
    """Reduced formula -> measured formation enthalpy, for compounds made of ``elements``.

    ``elements=None``: every compound of the data. Elements themselves are not listed (their
    formation enthalpy is zero by definition).
    """
    allowed = None if elements is None else set(elements)
    release = f"pymatgen {version('pymatgen')}"
    measured = {}
    for row in _experimental_compounds():
        composition = Composition(row["formula"])
        symbols = {el.symbol for el in composition.elements}
        if len(symbols) < 2 or (allowed is not None and not symbols <= allowed):
            continue
        atoms = composition.num_atoms
        uncertainty = row.get("uncertainty")
        measured[composition.reduced_formula] = MeasuredEnthalpy(
            formula=composition.reduced_formula,
            enthalpy_per_atom=float(row["exp energy"]) / atoms,
            uncertainty_per_atom=math.nan if uncertainty is None else float(uncertainty) / atoms,
            source=f"{release} analysis/compatibility/{EXPERIMENTAL_FILE.name}"
            f" [{row['formula']}] ({EXPERIMENTAL_CITATION})",
        )
    return measured


def is_binary_oxide(formula: str) -> bool:
    """A compound of one element with oxygen at -2 (an oxide, not a peroxide or suboxide)."""
    composition = Composition(formula)
    symbols = {el.symbol for el in composition.elements}
    if len(symbols) != 2 or OXYGEN not in symbols:
        return False
    guesses = composition.oxi_state_guesses(max_sites=-20)
    return bool(guesses) and guesses[0].get(OXYGEN) == -2


def lowest_per_formula(entries: Iterable[PDEntry]) -> dict[str, PDEntry]:
    """Reduced formula -> its lowest-energy entry (eV/atom)."""
    lowest: dict[str, PDEntry] = {}
    for entry in entries:
        formula = entry.composition.reduced_formula
        if formula not in lowest or entry.energy_per_atom < lowest[formula].energy_per_atom:
            lowest[formula] = entry
    return lowest


def formation_enthalpy_per_atom(
    entry: PDEntry, elemental: dict[str, float], mu_oxygen: float | None = None
) -> float:
    """Formation energy per atom of ``entry`` from elemental energies (eV/atom); ``mu_oxygen``
    in place of the oxygen reference when given."""
    references = dict(elemental)
    if mu_oxygen is not None:
        references[OXYGEN] = mu_oxygen
    composition = entry.composition
    return (
        entry.energy - sum(n * references[el.symbol] for el, n in composition.items())
    ) / composition.num_atoms


@dataclass(frozen=True)
class OxygenFit:
    """The oxygen reference of one hull and, where fitted, how well it reproduces experiment.

    ``mu`` is the oxygen energy the hull uses (eV/atom); ``molecule`` the lowest oxygen
    entry's own energy. ``residuals``: computed minus measured formation enthalpy of each
    fitted oxide with ``mu`` (eV/atom); ``leave_one_out``: the same with ``mu`` fitted to the
    other oxides only (where at least two are fitted).
    """

    setting: str
    molecule: float
    mu: float
    fitted_to: tuple[str, ...] = ()
    residuals: dict[str, float] = field(default_factory=dict)
    leave_one_out: dict[str, float] = field(default_factory=dict)

    @property
    def shift(self) -> float:
        """``mu - molecule``, eV/atom of oxygen."""
        return self.mu - self.molecule

    def describe(self) -> str:
        """One line for tables and logs."""
        if self.setting == "molecule":
            return f"O2 molecule ({self.molecule:.3f} eV/atom)"
        if not self.fitted_to:
            return f"O2 molecule ({self.molecule:.3f} eV/atom): no measured binary oxide to fit"
        return (
            f"mu_O {self.mu:.3f} eV/atom fitted to {', '.join(self.fitted_to)}"
            f" (molecule {self.molecule:.3f}, shift {self.shift:+.3f})"
        )


def _fit_mu(oxides: Sequence[tuple[float, float, float]]) -> float:
    """Least-squares mu_O for (a, x_O, measured) per oxide: a - x_O mu = measured."""
    numerator = sum(x * (a - h) for a, x, h in oxides)
    return numerator / sum(x * x for _, x, _ in oxides)


def fit_oxygen(
    entries: Sequence[PDEntry],
    setting: str,
    measured: dict[str, MeasuredEnthalpy] | None = None,
) -> OxygenFit:
    """The oxygen reference of the hull of ``entries`` (see the module docstring).

    ``measured``: the measured enthalpies to fit to (default: those of the entries' elements).
    """
    if setting not in OXYGEN_REFERENCES:
        raise PipelineInputError(
            f"unknown oxygen reference {setting!r}; choose from {OXYGEN_REFERENCES}"
        )
    lowest = lowest_per_formula(entries)
    elemental = {
        e.composition.elements[0].symbol: e.energy_per_atom
        for e in lowest.values()
        if e.composition.is_element
    }
    if OXYGEN not in elemental:
        raise PipelineInputError("no elemental oxygen entry to take the oxygen reference from")
    molecule = elemental[OXYGEN]
    if setting == "molecule":
        return OxygenFit(setting, molecule, molecule)
    if measured is None:
        symbols = {el.symbol for e in entries for el in e.composition.elements}
        measured = measured_formation_enthalpies(symbols)
    oxides = {}
    for formula, entry in sorted(lowest.items()):
        metals = [el.symbol for el in entry.composition.elements if el.symbol != OXYGEN]
        if formula in measured and metals[0] in elemental and is_binary_oxide(formula):
            a = formation_enthalpy_per_atom(entry, elemental, mu_oxygen=0.0)
            x = entry.composition.get_atomic_fraction(OXYGEN)
            oxides[formula] = (a, x, measured[formula].enthalpy_per_atom)
    if not oxides:
        return OxygenFit(setting, molecule, molecule)
    mu = _fit_mu(list(oxides.values()))
    residuals = {f: a - x * mu - h for f, (a, x, h) in oxides.items()}
    leave_one_out = {}
    if len(oxides) > 1:
        for formula, (a, x, h) in oxides.items():
            others = [v for f, v in oxides.items() if f != formula]
            leave_one_out[formula] = a - x * _fit_mu(others) - h
    return OxygenFit(setting, molecule, mu, tuple(oxides), residuals, leave_one_out)


def with_oxygen_reference(entries: Sequence[PDEntry], fit: OxygenFit) -> list[PDEntry]:
    """``entries`` with every elemental oxygen entry moved by ``fit.shift`` (per atom), so the
    lowest sits at ``fit.mu``; the other entries are unchanged."""
    if fit.shift == 0.0:
        return list(entries)
    moved = []
    for entry in entries:
        if entry.composition.is_element and entry.composition.elements[0].symbol == OXYGEN:
            atoms = entry.composition.num_atoms
            entry = PDEntry(entry.composition, entry.energy + fit.shift * atoms, name=entry.name)
        moved.append(entry)
    return moved
