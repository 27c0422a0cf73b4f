"""Batched relaxation with torch-sim: many structures at once on one device.

torch-sim's FIRE on a Frechet cell filter (``frechet_cell_fire``, ASE's flavour of FIRE,
so the same steps as the sequential relaxer) advances every structure of a batch with
one model call per step. An ``InFlightAutoBatcher`` keeps the batch full: a structure
that has converged or failed leaves, the next one enters. The batch holds at most
``batch_atoms`` atoms; left unset on a GPU, torch-sim measures how many fit in memory.

Convergence and divergence are judged per structure by the same rules as the sequential
relaxer (:func:`pipeline.screen.relaxation.divergence_reason`).

A structure's relaxation does not depend on its batch partners. torch-sim 0.3.0's ASE-FIRE
step marks a structure that has not moved yet by NaN velocities, and while any structure
of the batch has them it takes ASE's first step (zero velocity, no FIRE mixing, no update
of the time step) for *every* structure of the batch. With in-flight swapping, each entry
of a new structure therefore reset the FIRE state of the others in the batch, so a path
depended on who travelled with it. Here every structure starts with zero velocities and a
time step of ``dt_start / f_dec``: its first ordinary FIRE step sees no power, halves the
step to ``dt_start`` and zeroes the velocities, which is ASE's first step exactly, and the
batch-wide branch is never taken (:func:`start_independently`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch_sim as ts
from torch_sim.autobatching import BinningAutoBatcher, InFlightAutoBatcher
from tqdm import tqdm

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.relaxation import (
    FAILED,
    NOT_CONVERGED,
    OK,
    RelaxResult,
    RelaxSettings,
    StepWatch,
    divergence_reason,
    not_converged_reason,
)

CPU_BATCH_ATOMS = 512


@dataclass(frozen=True)
class FireOptions:
    """The FIRE parameters of torch-sim's ``frechet_cell_fire``; the defaults are ASE's (and
    torch-sim's), the screen's. Another choice is another path, measured in bench/."""

    dt_start: float = 0.1
    dt_max: float = 1.0
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99
    max_step: float = 0.2  # Å (atoms and cell together), the most one step moves


ASE_FIRE = FireOptions()


def relax_batched(
    records: Sequence[CrystalRecord],
    model,
    settings: RelaxSettings,
    batch_atoms: int | None = None,
    progress: bool = True,
    keep_unconverged: bool = False,
    watch: StepWatch | None = None,
    fire: FireOptions = ASE_FIRE,
) -> list[RelaxResult]:
    """Relax ``records`` in batches with a torch-sim ``model``; results in input order.

    Parameters
    ----------
    records
        Structures to relax.
    model
        A torch-sim ``ModelInterface`` (see :func:`pipeline.screen.potentials.batched_model`).
    settings
        Force threshold, step limit and divergence limits.
    batch_atoms
        Most atoms relaxed together. ``None``: measured from GPU memory on a GPU,
        :data:`CPU_BATCH_ATOMS` on a CPU.
    keep_unconverged
        A relaxation that reached the step limit keeps its last structure (still failed).
    watch
        Sees each structure's result after each of its steps; a non-empty answer stops it
        (:data:`pipeline.screen.relaxation.StepWatch`). The others go on unchanged: a path does not depend on its
        batch partners.
    fire
        FIRE's parameters (default: ASE's).
    """
    if not records:
        return []
    batch_atoms = batch_atoms_limit(model, batch_atoms, max(r.natoms for r in records))
    batcher_options = {"memory_scales_with": "n_atoms", "max_memory_scaler": batch_atoms}
    init_fn, update_fn = ts.frechet_cell_fire(model=model, **asdict(fire))
    structures = [r.to_structure() for r in records]
    state = ts.initialize_state(structures, model.device, model.dtype)

    # The first model call of every structure, in batches (as torch-sim's optimize does).
    binning = BinningAutoBatcher(model=model, **batcher_options)
    binning.load_states(state)
    state = ts.concatenate_states(binning.restore_original_order([init_fn(b) for b in binning]))
    start_independently(state, fire)

    atoms_per_system = torch.bincount(state.system_idx).to(state.energy.dtype)
    start_energy = (state.energy / atoms_per_system).tolist()
    start_volume = torch.linalg.det(state.cell).abs().tolist()
    results = [RelaxResult(id=r.id, status=FAILED) for r in records]

    in_flight = InFlightAutoBatcher(model=model, return_indices=True, **batcher_options)
    in_flight.load_states(state)
    batch, _, current = in_flight.next_batch(None, None)
    finished_states = []
    with tqdm(
        total=len(records), desc="relax (batched)", unit="structure", disable=not progress
    ) as bar:
        while batch is not None:
            batch = update_fn(batch)
            rows = list(current)  # the batcher reuses this list; copy before the next call
            done = _judge(batch, rows, results, start_energy, start_volume, settings, watch)
            bar.update(int(done.sum()))
            batch, finished, current = in_flight.next_batch(batch, done)
            finished_states.extend(finished)

    for result, final in zip(results, in_flight.restore_original_order(finished_states)):
        if result.status == OK or (keep_unconverged and result.reason.startswith(NOT_CONVERGED)):
            result.structure = ts.io.state_to_structures(final)[0]
    return results


def start_independently(state, fire: FireOptions = ASE_FIRE) -> None:
    """Give every structure of a fresh FIRE ``state`` a start its batch partners cannot reset.

    Zero velocities (atoms and cell) instead of torch-sim's NaN markers, and a time step of
    ``dt_start / f_dec``, so that the first FIRE step, finding no power, multiplies it by
    ``f_dec`` to ``dt_start`` and takes ASE's first step (see the module docstring). In place.
    """
    state.velocities = torch.zeros_like(state.positions)
    state.cell_velocities = torch.zeros_like(state.cell_forces)
    state.dt = torch.full_like(state.dt, fire.dt_start / fire.f_dec)


def _judge(
    batch,
    rows: list[int],
    results: list[RelaxResult],
    start_energy: list[float],
    start_volume: list[float],
    settings: RelaxSettings,
    watch: StepWatch | None = None,
) -> torch.Tensor:
    """Update the results of the structures in ``batch`` after one step; which are done."""
    n_systems = batch.n_systems
    atoms_per_system = torch.bincount(batch.system_idx, minlength=n_systems)
    energy = (batch.energy / atoms_per_system).tolist()
    volume = torch.linalg.det(batch.cell).abs().tolist()
    atom_force = torch.linalg.norm(batch.forces, dim=1)
    max_force = torch.zeros(n_systems, dtype=atom_force.dtype, device=atom_force.device)
    max_force = max_force.scatter_reduce(0, batch.system_idx, atom_force, "amax")
    # ASE's convergence test counts the cell's generalized forces too.
    cell_force = torch.linalg.norm(batch.cell_forces, dim=2).amax(dim=1)
    max_force = torch.maximum(max_force, cell_force).tolist()
    bad_atoms = torch.zeros(n_systems, dtype=atom_force.dtype, device=atom_force.device)
    bad_atoms = bad_atoms.index_add(
        0, batch.system_idx, (~torch.isfinite(atom_force)).to(atom_force.dtype)
    )
    finite = (bad_atoms == 0).tolist()
    done = torch.zeros(n_systems, dtype=torch.bool)
    for row, index in enumerate(rows):
        result = results[index]
        result.steps += 1
        result.energy_per_atom = energy[row]
        result.max_force = max_force[row]
        result.volume_ratio = volume[row] / start_volume[index]
        result.reason = divergence_reason(
            energy[row], start_energy[index], result.volume_ratio, finite[row], settings
        )
        stop = watch(result) if watch is not None else ""  # sees every step, the last too
        if not result.reason and max_force[row] < settings.fmax:
            result.status = OK
        elif not result.reason and result.steps >= settings.max_steps:
            result.reason = not_converged_reason(settings, max_force[row])
        elif not result.reason:
            result.reason = stop
        done[row] = result.status == OK or bool(result.reason)
    return done.to(batch.positions.device)


def batch_atoms_limit(model, requested: int | None, largest: int) -> int | None:
    """Most atoms per batch.

    The request (at least the largest structure), :data:`CPU_BATCH_ATOMS` on a CPU, or
    ``None`` on a GPU, where torch-sim measures what fits in memory.
    """
    if requested is not None:
        if requested < 1:
            raise PipelineInputError("screen.batch_atoms must be at least 1")
        return max(requested, largest)
    if model.device.type == "cpu":
        return max(CPU_BATCH_ATOMS, largest)
    return None  # torch-sim measures the GPU memory
