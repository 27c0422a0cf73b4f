"""Energy above the convex hull, on one energy scale per potential.

The hull is built from reference structures relaxed with the same potential as the
candidates (the system's reference phases and every training formula's lowest polymorph:
:mod:`pipeline.screen.reference_hull`). Every entry of a potential's hull, references,
training polymorphs and candidates alike, is put on that potential's energy scale where it is
made (:func:`pd_entry`): the MP2020 corrections (anion, GGA/GGA+U mixing, with the U values of
pymatgen's ``MPRelaxSet``) for a potential trained on raw PBE(+U) energies (SevenNet, M3GNet),
none for one trained on MP2020-corrected energies (CHGNet), the potential read from each
record's ``provenance.potential`` (:data:`pipeline.screen.potentials.ENERGY_SCALES`). The
oxygen reference of the hull is a setting (``screen.oxygen_reference``): the relaxed O2
molecule, or an oxygen chemical potential fitted to the measured formation enthalpies of the
hull's binary oxides (:mod:`pipeline.screen.thermochemistry`). So the E_hull of every
potential, first or second opinion, is measured on a scale checked against experiment.
With Materials Project data, a second E_hull places the candidates on the Materials
Project hull, whose GGA/GGA+U entries carry the same MP2020 corrections.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.vasp.sets import MPRelaxSet

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.potential_names import energy_scale
from pipeline.screen.thermochemistry import (
    OxygenFit,
    fit_oxygen,
    with_oxygen_reference,
)

ENERGY = "energy_per_atom"


@dataclass(frozen=True)
class HullResult:
    """E_hull of one structure (eV/atom) and the phases it would decompose into."""

    e_above_hull: float
    decomposition: str


def pd_entry(record: CrystalRecord) -> PDEntry:
    """A phase-diagram entry of a record on its potential's energy scale (total eV).

    The record's ``energy_per_atom`` with the corrections of its potential's energy scale
    (:func:`mp2020_entry`); a record that names no potential is taken as it is.
    """
    if ENERGY not in record.properties:
        raise PipelineInputError(f"{record.id}: no properties.{ENERGY} to place on a hull")
    composition = Composition(record.formula)
    energy = record.properties[ENERGY] * composition.num_atoms
    potential = record.provenance.get("potential")
    if potential and not energy_scale(potential_name(record)).mp2020_included:
        energy = mp2020_entry(record).energy
    return PDEntry(composition, energy, name=record.id)


def hull_entries(references: Sequence[CrystalRecord], oxygen_reference: str) -> list[PDEntry]:
    """The hull entries of ``references`` (one per record, in order, named by record id) with
    the oxygen reference ``oxygen_reference`` (``screen.oxygen_reference``)."""
    entries = [pd_entry(r) for r in references]
    return with_oxygen_reference(entries, oxygen_fit_of(entries, oxygen_reference))


def oxygen_fit_of(entries: Sequence[PDEntry], oxygen_reference: str) -> OxygenFit:
    """The oxygen reference of a hull of ``entries`` (none without oxygen: a zero shift)."""
    if not any(e.composition.reduced_formula == "O2" for e in entries):
        return OxygenFit(oxygen_reference, 0.0, 0.0)
    return fit_oxygen(entries, oxygen_reference)


def oxygen_fit(references: Sequence[CrystalRecord], oxygen_reference: str) -> OxygenFit:
    """The oxygen reference the hull of ``references`` uses, and its fit to experiment."""
    return oxygen_fit_of([pd_entry(r) for r in references], oxygen_reference)


def phase_diagram(references: Sequence[CrystalRecord], oxygen_reference: str) -> PhaseDiagram:
    """The hull of the relaxed references; every element needs a reference of its own."""
    entries = hull_entries(references, oxygen_reference)
    elements = sorted({el.symbol for e in entries for el in e.composition.elements})
    elemental = {e.composition.elements[0].symbol for e in entries if e.composition.is_element}
    missing = [el for el in elements if el not in elemental]
    if missing:
        raise PipelineInputError(
            f"the hull references lack a structure of the pure element(s) {missing}"
            " (did their relaxation fail? see the references' status table)"
        )
    return PhaseDiagram(entries)


def e_above_hull(diagram: PhaseDiagram, entry: PDEntry) -> HullResult:
    """E_hull of ``entry`` against ``diagram`` (negative below the hull)."""
    foreign = set(entry.composition.elements) - set(diagram.elements)
    if foreign:
        raise PipelineInputError(
            f"{entry.name}: elements {sorted(map(str, foreign))} are not on the hull"
        )
    decomposition, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
    names = sorted(d.composition.reduced_formula for d in decomposition)
    return HullResult(float(e_hull), " + ".join(names))


def e_above_hull_of(
    diagram: PhaseDiagram, record: CrystalRecord, energy_per_atom: float, potential: str
) -> float:
    """E_hull (eV/atom) of ``record`` with ``energy_per_atom`` from ``potential`` (as
    :func:`pipeline.screen.potentials.describe` names it), on that potential's energy scale;
    NaN for a NaN energy (a failed evaluation)."""
    if not math.isfinite(energy_per_atom):
        return math.nan
    evaluated = dataclasses.replace(
        record,
        properties={**record.properties, ENERGY: float(energy_per_atom)},
        provenance={**record.provenance, "potential": potential},
    )
    return e_above_hull(diagram, pd_entry(evaluated)).e_above_hull


def potential_name(record: CrystalRecord) -> str:
    """The potential that computed a record's energy (first word of ``provenance.potential``)."""
    described = record.provenance.get("potential", "")
    if not described:
        raise PipelineInputError(f"{record.id}: no provenance.potential to say whose energy it is")
    return described.split()[0]


def mp2020_entry(record: CrystalRecord) -> ComputedStructureEntry:
    """The record's potential energy as a GGA(+U) entry on MP's MP2020-corrected scale.

    Where the potential learnt uncorrected energies, the MP2020 corrections are applied with
    the run type and U values Materials Project uses for this composition (pymatgen's
    ``MPRelaxSet``), as Matbench Discovery does for ML energies; where its training target
    already carried them (CHGNet), the energy is taken as it is.
    """
    structure = record.to_structure()
    energy = record.properties[ENERGY] * len(structure)
    if energy_scale(potential_name(record)).mp2020_included:
        return ComputedStructureEntry(structure, energy, entry_id=record.id)
    elements = {site.specie.symbol for site in structure}
    u_tables = MPRelaxSet.CONFIG["INCAR"]["LDAUU"]  # {anion: {metal: U}}
    hubbards = {
        metal: u
        for anion, table in u_tables.items()
        if anion in elements
        for metal, u in table.items()
        if metal in elements and u
    }
    entry = ComputedStructureEntry(
        structure,
        energy,
        entry_id=record.id,
        parameters={
            "run_type": "GGA+U" if hubbards else "GGA",
            "hubbards": hubbards,
            "is_hubbard": bool(hubbards),
        },
    )
    with warnings.catch_warnings():  # e.g. "failed to guess oxidation states": no anion of it
        warnings.simplefilter("ignore")
        processed = MaterialsProject2020Compatibility(check_potcar=False).process_entries(
            [entry], verbose=False
        )
    if not processed:
        raise PipelineInputError(f"{record.id}: MP2020 compatibility rejected the entry")
    return processed[0]


def mp_corrections_note(potential: str) -> str:
    """What :func:`mp2020_entry` does to this potential's energies, for the hull table."""
    return energy_scale(potential).corrections


def mp_e_above_hull(records: Sequence[CrystalRecord], mp_entries: Sequence) -> list[float]:
    """E_hull of each record on the Materials Project hull (MP2020-corrected entries)."""
    try:
        diagram = PhaseDiagram(list(mp_entries))
    except ValueError as exc:
        raise PipelineInputError(f"the Materials Project entries make no hull: {exc}") from None
    return [float(diagram.get_e_above_hull(mp2020_entry(r), allow_negative=True)) for r in records]
