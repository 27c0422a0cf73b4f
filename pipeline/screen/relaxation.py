"""Relaxation of cell and positions, one structure at a time (ASE FIRE + FrechetCellFilter).

The settings, the result of one relaxation and the divergence checks live here and are
shared with the batched relaxer (:mod:`pipeline.screen.batched`), so both modes stop
and fail structures for exactly the same reasons:

* converged: the largest force, cell forces included, is below ``fmax`` (eV/Å);
* failed, ``non-finite energy or forces``: the potential returned NaN or inf;
* failed, ``volume ...``: the cell grew or shrank by more than ``max_volume_ratio``;
* failed, ``energy ...``: the energy per atom rose more than ``max_energy_rise`` eV above
  where it started (FIRE only goes downhill: an explosion), or fell below
  ``min_energy_per_atom`` (no compound of the periodic table lies below about -13 eV/atom
  with these PBE-trained potentials: a collapse). A large drop alone is no failure: a
  generated structure with close atoms may start several eV/atom above its minimum;
* failed, ``not converged in N steps``: the step limit was reached;
* failed, ``potential error``: the potential raised on this structure.

A failed relaxation is kept with its reason, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase.constraints import FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from tqdm import tqdm

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.settings.typed import ScreenSettings

OK = "ok"
FAILED = "failed"

# Sees a structure's result after each of its steps (the last one too); a non-empty answer stops
# a structure that has neither converged nor failed (failed, with the answer as its reason).
# The screen's early stop (pipeline.screen.early_stop) is one; a recorder answers "".
StepWatch = Callable[["RelaxResult"], str]


@dataclass(frozen=True)
class RelaxSettings:
    """When a relaxation has converged (``screen.fmax``, ``screen.max_steps`` of config.yaml),
    and when it has gone wrong (limits of this module, not settings)."""

    fmax: float  # eV/Å
    max_steps: int
    max_volume_ratio: float = 3.0
    max_energy_rise: float = 1.0
    min_energy_per_atom: float = -15.0

    def __post_init__(self) -> None:
        if self.fmax <= 0 or self.max_steps < 1:
            raise PipelineInputError("relaxation needs fmax > 0 and max_steps >= 1")
        if self.max_volume_ratio <= 1 or self.max_energy_rise <= 0:
            raise PipelineInputError("max_volume_ratio must exceed 1, max_energy_rise 0")

    @classmethod
    def from_settings(cls, screen: ScreenSettings) -> RelaxSettings:
        """The candidates' relaxation settings of a run's ``screen`` settings."""
        return cls(fmax=screen.fmax, max_steps=screen.max_steps)


@dataclass
class RelaxResult:
    """The outcome of one relaxation: status, reason, steps, final energy and structure."""

    id: str
    status: str
    reason: str = ""
    steps: int = 0
    energy_per_atom: float = math.nan
    max_force: float = math.nan
    volume_ratio: float = math.nan
    structure: Structure | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_record(self, original: CrystalRecord, potential: str) -> CrystalRecord:
        """The relaxed structure as a record that keeps the original's provenance."""
        if self.structure is None:
            raise ValueError(f"{self.id}: a failed relaxation has no structure")
        record = CrystalRecord.from_structure(
            self.structure,
            id=original.id,
            source=original.source,
            parent=original.parent,
            properties={**original.properties, "energy_per_atom": self.energy_per_atom},
        )
        record.provenance = {**original.provenance, "potential": potential}
        return record

    def table_row(self, potential: str) -> dict[str, object]:
        """One row of ``relax_status.csv``."""
        return {
            "id": self.id,
            "status": self.status,
            "reason": self.reason,
            "steps": self.steps,
            "energy_per_atom": self.energy_per_atom,
            "max_force": self.max_force,
            "volume_ratio": self.volume_ratio,
            "potential": potential,
        }


def divergence_reason(
    energy_per_atom: float,
    start_energy_per_atom: float,
    volume_ratio: float,
    forces_finite: bool,
    settings: RelaxSettings,
) -> str:
    """Why a relaxation has diverged, or ``""`` while it has not."""
    if not (forces_finite and math.isfinite(energy_per_atom) and math.isfinite(volume_ratio)):
        return "non-finite energy or forces"
    if volume_ratio > settings.max_volume_ratio or volume_ratio < 1 / settings.max_volume_ratio:
        return f"volume changed by a factor {volume_ratio:.2f} (limit {settings.max_volume_ratio})"
    rise = energy_per_atom - start_energy_per_atom
    if rise > settings.max_energy_rise:
        return f"energy rose {rise:+.2f} eV/atom above the start (limit {settings.max_energy_rise})"
    if energy_per_atom < settings.min_energy_per_atom:
        return (
            f"energy collapsed to {energy_per_atom:.2f} eV/atom"
            f" (floor {settings.min_energy_per_atom})"
        )
    return ""


NOT_CONVERGED = "not converged"


def not_converged_reason(settings: RelaxSettings, max_force: float) -> str:
    return (
        f"{NOT_CONVERGED} in {settings.max_steps} steps"
        f" (max force {max_force:.3f} > {settings.fmax} eV/Å)"
    )


def relax_one(
    record: CrystalRecord,
    calculator,
    settings: RelaxSettings,
    keep_symmetry: float | None = None,
    keep_unconverged: bool = False,
    watch: StepWatch | None = None,
) -> RelaxResult:
    """Relax one structure with ASE's FIRE on a FrechetCellFilter.

    ``keep_symmetry``: constrain the relaxation to the space group the start has at this
    tolerance (Å), with ASE's ``FixSymmetry`` (forces and stress symmetrised every step).
    ``keep_unconverged``: a relaxation that reached the step limit keeps its last structure
    (still failed), e.g. as the start of another relaxation. ``watch``: see :data:`StepWatch`.
    """
    atoms = AseAtomsAdaptor.get_atoms(record.to_structure())
    atoms.calc = calculator
    if keep_symmetry is not None:
        atoms.set_constraint(FixSymmetry(atoms, symprec=keep_symmetry))
    natoms = len(atoms)
    start_volume = atoms.get_volume()
    result = RelaxResult(id=record.id, status=FAILED)
    try:
        start_energy = atoms.get_potential_energy() / natoms
        cell_filter = FrechetCellFilter(atoms)
        optimizer = FIRE(cell_filter, logfile=None)
        for converged in optimizer.irun(fmax=settings.fmax, steps=settings.max_steps):
            forces = cell_filter.get_forces()
            result.steps = optimizer.nsteps
            result.energy_per_atom = atoms.get_potential_energy() / natoms
            result.max_force = float(np.sqrt((forces**2).sum(axis=1).max()))
            result.volume_ratio = atoms.get_volume() / start_volume
            result.reason = divergence_reason(
                result.energy_per_atom,
                start_energy,
                result.volume_ratio,
                bool(np.isfinite(forces).all()),
                settings,
            )
            stop = watch(result) if watch is not None else ""
            if result.reason:
                return result
            if converged:
                result.status = OK
                result.structure = AseAtomsAdaptor.get_structure(atoms)
                return result
            if stop and optimizer.nsteps < settings.max_steps:
                result.reason = stop
                return result
    # The potentials raise many kinds of errors on broken geometries (graph building,
    # neighbour lists, linear algebra); any of them fails this structure, not the run.
    except Exception as exc:  # noqa: BLE001
        result.reason = f"potential error: {type(exc).__name__}: {str(exc)[:200]}"
        return result
    result.reason = not_converged_reason(settings, result.max_force)
    if keep_unconverged:
        result.structure = AseAtomsAdaptor.get_structure(atoms)
    return result


def relax_sequential(
    records: Sequence[CrystalRecord],
    calculator,
    settings: RelaxSettings,
    progress: bool = True,
    keep_symmetry: float | None = None,
    keep_unconverged: bool = False,
    watch: StepWatch | None = None,
) -> list[RelaxResult]:
    """Relax ``records`` one after the other with the same ASE calculator."""
    return [
        relax_one(record, calculator, settings, keep_symmetry, keep_unconverged, watch)
        for record in tqdm(records, desc="relax", unit="structure", disable=not progress)
    ]


def summarize(results: Iterable[RelaxResult]) -> dict[str, int]:
    """Counts of converged and failed relaxations."""
    results = list(results)
    return {"relaxed": sum(r.ok for r in results), "failed": sum(not r.ok for r in results)}
