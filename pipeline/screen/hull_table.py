"""The hull table: every relaxed candidate's energy above the hull of its potential.

Measurements only: the verdict (which E_hull passes, whether two potentials agree) is the
criteria module's (:mod:`pipeline.screen.criteria`). Columns of ``hull.csv``: the main
potential's E_hull (``e_above_hull``) and decomposition; with a second opinion, that
potential's E_hull at the same geometry on its own hull (``e_above_hull_<potential>``); with
consensus potentials, each one's E_hull from its own relaxation
(``e_above_hull_<potential>_relaxed``); with Materials Project entries, E_hull on MP's hull
(``e_above_hull_mp``); and where the references miss a binary compound,
``missing_binaries`` and ``e_above_hull_is_lower_bound``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from pymatgen.core import Element

from pipeline.formats import consensus_column, second_opinion_column
from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import HullResult, e_above_hull, pd_entry, phase_diagram
from pipeline.screen.coverage import (
    binaries_without_compounds,
    elements_of,
    uncovered_subsystems_of,
    with_nonmetal,
)
from pipeline.screen.potential_names import energy_scale

HULL_COLUMNS = [
    "id",
    "formula",
    "model",
    "energy_per_atom",
    "e_above_hull",
    "decomposition",
    "potential",
    "energy_scale",
]


def hull_table(
    candidates: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord],
    oxygen_reference: str,
) -> pd.DataFrame:
    """E_hull of every candidate against the hull of ``references`` with its oxygen
    reference (``screen.oxygen_reference``); NaN without an energy."""
    diagram = phase_diagram(references, oxygen_reference)
    rows = []
    for record in candidates:
        energy = record.properties.get("energy_per_atom", math.nan)
        result = (
            e_above_hull(diagram, pd_entry(record))
            if math.isfinite(energy)
            else HullResult(math.nan, "")
        )
        potential = record.provenance.get("potential", "")
        rows.append(
            {
                "id": record.id,
                "formula": record.formula,
                "model": record.source,
                "energy_per_atom": energy,
                "e_above_hull": result.e_above_hull,
                "decomposition": result.decomposition,
                "potential": potential,
                "energy_scale": energy_scale(potential.split()[0]).description if potential else "",
            }
        )
    return pd.DataFrame(rows, columns=HULL_COLUMNS)


def add_other_potential(
    table: pd.DataFrame,
    column: str,
    candidates: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord],
    oxygen_reference: str,
) -> None:
    """Add ``column``: E_hull of ``candidates`` (another potential's energies) on that
    potential's own hull of ``references``; NaN where it has none."""
    other = hull_table(candidates, references, oxygen_reference)
    by_id = dict(zip(other["id"], other["e_above_hull"]))
    table[column] = [by_id.get(i, math.nan) for i in table["id"]]


def add_second_opinion(
    table: pd.DataFrame,
    potential: str,
    energies: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord],
    oxygen_reference: str,
) -> None:
    """Another potential's energies at the main potential's geometry, on its own hull."""
    column = second_opinion_column(potential)
    add_other_potential(table, column, energies, references, oxygen_reference)


def add_consensus(
    table: pd.DataFrame,
    potential: str,
    relaxed: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord],
    oxygen_reference: str,
) -> None:
    """Another potential's own relaxations of the candidates, on its own hull."""
    column = consensus_column(potential)
    add_other_potential(table, column, relaxed, references, oxygen_reference)


def add_coverage(table: pd.DataFrame, references: Sequence[CrystalRecord]) -> list[str]:
    """Add ``missing_binaries`` and ``e_above_hull_is_lower_bound``; return the gaps.

    A binary subsystem with a non-metal and no compound among the relaxed references leaves
    the hull too high there: E_hull of a candidate containing both elements is a lower bound.
    """
    formulas = [r.formula for r in references]
    # electropositive first, as formulas are written: Sr-O, not O-Sr
    elements = sorted({el for f in formulas for el in elements_of(f)}, key=lambda e: Element(e).X)
    missing = binaries_without_compounds(elements, formulas)
    flagged = with_nonmetal(missing)
    table["missing_binaries"] = [
        " ".join(uncovered_subsystems_of(f, flagged)) for f in table["formula"]
    ]
    table["e_above_hull_is_lower_bound"] = table["missing_binaries"] != ""
    return missing


def references_by_source(records: Sequence[CrystalRecord]) -> dict[str, list[str]]:
    """Formulas of the relaxed references per source (``ase``, ``cif``, ``reference``, ...)."""
    sources: dict[str, set[str]] = {}
    for record in records:
        sources.setdefault(record.source or "reference", set()).add(record.formula)
    return {source: sorted(formulas) for source, formulas in sorted(sources.items())}
