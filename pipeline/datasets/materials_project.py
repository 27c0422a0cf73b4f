"""Structures, energies and band gaps from the Materials Project (``mp-api``).

Needs the ``MP_API_KEY`` environment variable and network access. The query is built
by :func:`subsystems` and :func:`entries_criteria`, the answer converted by
:func:`docs_to_records`; they are plain functions so they are tested offline on recorded
documents.

The hull entries are those of one functional: by default MP's GGA/GGA+U hull with the MP2020
corrections (``thermo_types: GGA_GGA+U``), the scale the potentials' energies are put on
(:mod:`pipeline.screen.convex_hull`); ``R2SCAN`` asks for the r2SCAN hull instead (no MP2020
corrections; the potentials' GGA-level energies then meet another functional's hull). mp-api's
own default, the mixed GGA/GGA+U/r2SCAN hull, is never asked for.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.settings import default

MP_SOURCE = "mp"
THERMO_TYPES = ("GGA_GGA+U", "R2SCAN")  # emmet's ThermoType values we ask for
SUMMARY_FIELDS = [
    "material_id",
    "structure",
    "energy_per_atom",
    "uncorrected_energy_per_atom",
    "formation_energy_per_atom",
    "energy_above_hull",
    "band_gap",
    "is_stable",
]
PROPERTY_FIELDS = {
    "energy_per_atom": "energy_per_atom",
    "uncorrected_energy_per_atom": "uncorrected_energy_per_atom",
    "formation_energy_per_atom": "formation_energy_per_atom",
    "energy_above_hull": "e_above_hull",
    "band_gap": "band_gap",
}


@dataclass(frozen=True)
class MaterialsProjectQuery:
    """What to fetch: every sub-system of ``system``, split into training and references."""

    system: ChemicalSystem
    require_all_elements: bool = True
    reference_e_above_hull: float = 0.0
    thermo_type: str = field(default_factory=lambda: default("data.mp.thermo_type"))

    def __post_init__(self) -> None:
        if self.thermo_type not in THERMO_TYPES:
            raise PipelineInputError(
                f"unknown Materials Project thermo type {self.thermo_type!r};"
                f" choose from {THERMO_TYPES}"
            )


def subsystems(system: ChemicalSystem) -> list[str]:
    """Every chemical sub-system, e.g. ``Mg``, ``Mg-O``, ..., ``Mg-Mn-O`` (sorted symbols)."""
    elements = sorted(system.elements)
    return [
        "-".join(combo)
        for size in range(1, len(elements) + 1)
        for combo in itertools.combinations(elements, size)
    ]


def entries_criteria(query: MaterialsProjectQuery) -> dict[str, list[str]]:
    """``additional_criteria`` of ``get_entries_in_chemsys``: the hull of one functional."""
    return {"thermo_types": [query.thermo_type]}


def api_key_from_env() -> str:
    """The Materials Project API key, or a one-line error saying how to set it."""
    key = os.environ.get("MP_API_KEY", "").strip()
    if not key:
        raise PipelineInputError(
            "data.source is 'mp' but MP_API_KEY is not set: export MP_API_KEY=<your key>"
            " (materialsproject.org, dashboard), or use data.source: bundled"
        )
    return key


def docs_to_records(
    docs: Iterable[Any], query: MaterialsProjectQuery
) -> tuple[list[CrystalRecord], list[CrystalRecord]]:
    """Convert summary documents into training records and hull reference records.

    A document is anything with the attributes of :data:`SUMMARY_FIELDS` (mp-api's
    ``SummaryDoc``). Training records contain every element of the system unless
    ``require_all_elements`` is off; reference records are all documents within
    ``reference_e_above_hull`` of the Materials Project hull.
    """
    training: list[CrystalRecord] = []
    references: list[CrystalRecord] = []
    for doc in docs:
        properties = {
            name: float(getattr(doc, field))
            for field, name in PROPERTY_FIELDS.items()
            if getattr(doc, field, None) is not None
        }
        record = CrystalRecord.from_structure(
            doc.structure, id=str(doc.material_id), source=MP_SOURCE, properties=properties
        )
        elements = set(record.species)
        if not query.require_all_elements or elements == set(query.system.elements):
            training.append(record)
        e_hull = properties.get("e_above_hull")
        if e_hull is not None and e_hull <= query.reference_e_above_hull + 1e-9:
            references.append(record)
    training.sort(key=lambda r: r.id)
    references.sort(key=lambda r: r.id)
    return training, references


def fetch(query: MaterialsProjectQuery, api_key: str) -> tuple[list[Any], list[Any]]:
    """Ask the Materials Project for summary documents and the entries of one hull.

    Returns the summary documents of every sub-system and the ``ComputedStructureEntry``
    list of the whole system on the hull of ``query.thermo_type`` (GGA_GGA+U: MP2020
    corrections applied), which the hull stage uses to place candidates on the Materials
    Project hull.
    """
    from mp_api.client import MPRester

    try:
        with MPRester(api_key) as mpr:
            docs = mpr.materials.summary.search(
                chemsys=subsystems(query.system), fields=SUMMARY_FIELDS
            )
            entries = mpr.get_entries_in_chemsys(
                list(query.system.elements), additional_criteria=entries_criteria(query)
            )
    except Exception as exc:  # network, authentication and server errors alike
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PipelineInputError(f"Materials Project query failed: {first_line}") from None
    return list(docs), list(entries)
