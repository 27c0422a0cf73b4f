"""Choose which valid candidates to relax: the lowest unrelaxed energies above the hull.

Relaxation is the expensive step of the screen, and a generated structure far above the
hull as generated (atoms squeezed together, a cell far off) seldom relaxes into a
low-energy one within the step limit. One single-point energy per candidate is cheap,
and its energy above the hull of the relaxed references (the "unrelaxed E_hull") is an
upper bound of where the candidate could at best end up after relaxation, comparable
across compositions. The candidates are ranked by it, new ones before those that are
known structures, and the first ``limit`` are relaxed; the others are deferred.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pymatgen.analysis.phase_diagram import PhaseDiagram

from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import e_above_hull_of

SELECTED, DEFERRED, FAILED = "selected", "deferred", "failed"


@dataclass
class PrescreenRow:
    """One row of the prescreen table: a candidate's unrelaxed energies and its fate."""

    id: str
    formula: str
    new: bool  # no known structure (validate's answer)
    energy_per_atom: float
    e_above_hull: float
    rank: int = 0
    status: str = DEFERRED
    reason: str = ""


def unrelaxed_rows(
    records: Sequence[CrystalRecord],
    energies: Sequence[float],
    diagram: PhaseDiagram,
    new: Mapping[str, bool],
    potential: str,
) -> list[PrescreenRow]:
    """The prescreen row of each record from its single-point energy (eV/atom) with
    ``potential`` (as :func:`pipeline.screen.potentials.describe` names it), placed on the
    hull on that potential's energy scale."""
    rows = []
    for record, energy in zip(records, energies, strict=True):
        e_hull = e_above_hull_of(diagram, record, energy, potential)
        rows.append(
            PrescreenRow(
                id=record.id,
                formula=record.formula,
                new=bool(new.get(record.id, True)),
                energy_per_atom=float(energy),
                e_above_hull=e_hull,
            )
        )
    return rows


def choose_for_relaxation(rows: Sequence[PrescreenRow], limit: int | None) -> list[PrescreenRow]:
    """Rank ``rows`` and mark the first ``limit`` of them (all when ``None``) selected.

    New candidates come first, then the lowest unrelaxed E_hull; rows without a finite
    energy are failed and come last. Returns the same row objects in that order.
    """
    failed = [row for row in rows if not math.isfinite(row.e_above_hull)]
    for row in failed:
        row.status, row.reason = FAILED, "the potential gave no finite single-point energy"
    ranked = sorted(
        (row for row in rows if math.isfinite(row.e_above_hull)),
        key=lambda row: (not row.new, row.e_above_hull, row.id),
    )
    for rank, row in enumerate(ranked, start=1):
        row.rank = rank
        if limit is None or rank <= limit:
            row.status = SELECTED
        else:
            row.status = DEFERRED
            row.reason = (
                f"unrelaxed E_hull {row.e_above_hull:.2f} eV/atom ranks {rank},"
                f" beyond screen.max_candidates = {limit}"
            )
    return ranked + failed
