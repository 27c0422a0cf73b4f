"""Keep the records the pipeline can use; give every rejected one its reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.chemsys import ChemicalSystem
from pipeline.records import CrystalRecord


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
