"""Keep the records the pipeline can use; give every rejected one its reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from pymatgen.core import Composition

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord

EXCLUDED = "excluded by data.exclude_formulas"


@dataclass(frozen=True)
class Rejection:
    """A structure the data stage could not use, and why."""

    id: str
    source: str
    reason: str


def rejection_reason(
    record: CrystalRecord, system: ChemicalSystem, caps: Mapping[str, int] | None
) -> str | None:
    """Why ``record`` cannot be used in ``system`` under ``caps``, or None if it can."""
    foreign = system.foreign_elements(record.species)
    if foreign:
        return f"elements outside the chemical system {system}: {', '.join(foreign)}"
    if caps:
        counts = Counter(record.species)
        over = [f"{el} {n} > {caps[el]}" for el, n in counts.items() if n > caps[el]]
        if over:
            return "more atoms than the encoding allows: " + ", ".join(over)
    return None


def reduced_formulas(formulas: Iterable[str]) -> set[str]:
    """Formulas as pymatgen's reduced formulas (``Mg2Mn4O8`` and ``MgMn2O4``: ``MgMn2O4``)."""
    out = set()
    for formula in formulas:
        try:
            out.add(Composition(formula).reduced_formula)
        except ValueError:
            raise PipelineInputError(f"data.exclude_formulas: {formula!r} is no formula") from None
    return out


def split_usable(
    records: Iterable[CrystalRecord],
    system: ChemicalSystem,
    caps: Mapping[str, int] | None,
    require_all_elements: bool = False,
) -> tuple[list[CrystalRecord], list[Rejection]]:
    """Split records into the usable ones and the rejected ones with reasons."""
    kept: list[CrystalRecord] = []
    rejected: list[Rejection] = []
    for record in records:
        reason = rejection_reason(record, system, caps)
        if reason is None and require_all_elements:
            absent = [el for el in system.elements if el not in record.species]
            if absent:
                reason = f"lacks elements of the system: {', '.join(absent)}"
        if reason is None:
            kept.append(record)
        else:
            rejected.append(Rejection(record.id, record.source, reason))
    return kept, rejected


def hold_out(
    records: Iterable[CrystalRecord], exclude_formulas: Collection[str]
) -> tuple[list[CrystalRecord], list[Rejection]]:
    """Leave out every structure whose reduced formula is one of ``exclude_formulas``.

    Any cell of a held-out formula is rejected as :data:`EXCLUDED`: the generators never see
    it, while it stays a known phase of the system (the data stage's ``--out-known``).
    """
    excluded = reduced_formulas(exclude_formulas)
    kept: list[CrystalRecord] = []
    rejected: list[Rejection] = []
    for record in records:
        formula = Composition(record.formula).reduced_formula
        if formula in excluded:
            rejected.append(Rejection(record.id, record.source, f"{EXCLUDED}: {formula}"))
        else:
            kept.append(record)
    return kept, rejected
