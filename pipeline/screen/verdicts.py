"""Is a verdict robust? Repeat a relaxation from a start rattled by 1e-4 Å.

A relaxation can carry a difference in the last bits of a number (another CPU, BLAS or
release) into another local minimum, so a verdict near a threshold may not survive another
install. The repeat stage relaxes the candidates near a threshold again, from their start
with every atom moved by ``rattle`` Å in a direction seeded by the candidate's id, along the
screen's own path (:func:`relax_along_screen_path`); the E_hull stage places the repeats on
the same hull (``e_above_hull_repeat``), and the criteria module marks a verdict that lands
on the other side of a threshold ``verdict_stable = false``
(:meth:`pipeline.screen.criteria.Criteria.apply`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.early_stop import EarlyStop
from pipeline.screen.modes import relax_records
from pipeline.screen.potentials import PotentialSpec
from pipeline.screen.relaxation import RelaxResult, RelaxSettings
from pipeline.screen.symmetrise import Symmetrisation, first_relaxations, symmetrise_and_rerelax


def rattled(record: CrystalRecord, amplitude: float, seed: int) -> CrystalRecord:
    """``record`` with every atom moved by a random vector of length ``amplitude`` (Å).

    The direction comes from a generator seeded by ``seed`` and the record's id, so a
    candidate gets the same rattle in every run and in every shard.
    """
    if amplitude <= 0:
        raise PipelineInputError("the rattle amplitude must be positive")
    digest = hashlib.sha256(f"{seed}:{record.id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    structure = record.to_structure()
    directions = rng.normal(size=(len(structure), 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    moved = structure.cart_coords + amplitude * directions
    shaken = structure.copy()
    for index, coords in enumerate(moved):
        shaken.replace(index, structure[index].species, coords, coords_are_cartesian=True)
    return CrystalRecord.from_structure(
        shaken,
        id=record.id,
        source=record.source,
        parent=record.parent,
        properties=dict(record.properties),
    )


def relax_along_screen_path(
    records: Sequence[CrystalRecord],
    spec: PotentialSpec,
    settings: RelaxSettings,
    mode: str,
    batch_atoms: int | None,
    symmetrise: bool,
    progress: bool = True,
    early_stop: EarlyStop | None = None,
) -> tuple[list[RelaxResult], list[Symmetrisation]]:
    """Relax ``records`` as the relax stage does: the potential, then (``symmetrise``) the
    refinement to the space group and a second relaxation keeping the lower energy.
    ``early_stop`` (:mod:`pipeline.screen.early_stop`) stops first relaxations at its check
    steps and decides which converged ones are worth the second; the second relaxations start
    near their end and run to it."""
    results = relax_records(
        records, spec, settings, mode, batch_atoms, progress=progress, watch=early_stop
    )
    if symmetrise:
        outcomes = symmetrise_and_rerelax(
            records,
            results,
            spec,
            settings,
            mode,
            batch_atoms,
            progress=progress,
            worth_symmetrising=early_stop.worth_symmetrising if early_stop else None,
        )
    else:
        outcomes = first_relaxations(results)
    return results, outcomes
