"""Energies of structures as they are, without relaxing them (the prescreen's measure).

One model call per structure (ASE calculator) or per batch of structures (torch-sim
model, batches bounded by atom count as in the batched relaxer). A structure the
potential cannot evaluate gets NaN, never an exception: the prescreen reports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pymatgen.io.ase import AseAtomsAdaptor
from tqdm import tqdm

from pipeline.records import CrystalRecord


def energies_sequential(
    records: Sequence[CrystalRecord], calculator, progress: bool = True
) -> list[float]:
    """Energy per atom (eV/atom) of each record with an ASE calculator."""
    energies = []
    for record in tqdm(records, desc="single point", unit="structure", disable=not progress):
        atoms = AseAtomsAdaptor.get_atoms(record.to_structure())
        atoms.calc = calculator
        try:
            energy = atoms.get_potential_energy() / len(atoms)
        # A broken geometry can make any potential raise (graphs, neighbour lists).
        except Exception:  # noqa: BLE001
            energy = math.nan
        energies.append(float(energy))
    return energies


def energies_batched(
    records: Sequence[CrystalRecord],
    model,
    batch_atoms: int | None = None,
    progress: bool = True,
) -> list[float]:
    """Energy per atom (eV/atom) of each record with a torch-sim model, in batches.

    ``batch_atoms`` bounds the atoms of one batch as in
    :func:`pipeline.screen.batched.relax_batched` (``None``: measured on a GPU).
    """
    import torch_sim as ts
    from torch_sim.autobatching import BinningAutoBatcher

    from pipeline.screen.batched import batch_atoms_limit

    if not records:
        return []
    limit = batch_atoms_limit(model, batch_atoms, max(r.natoms for r in records))
    state = ts.initialize_state([r.to_structure() for r in records], model.device, model.dtype)
    batcher = BinningAutoBatcher(model=model, memory_scales_with="n_atoms", max_memory_scaler=limit)
    batcher.load_states(state)
    energies = [math.nan] * len(records)
    with tqdm(
        total=len(records), desc="single point (batched)", unit="structure", disable=not progress
    ) as bar:
        for batch, indices in zip(batcher, batcher.index_bins):
            output = model(batch)
            atoms = torch.bincount(batch.system_idx, minlength=batch.n_systems)
            for index, energy in zip(indices, (output["energy"] / atoms).tolist()):
                energies[index] = float(energy)
            bar.update(batch.n_systems)
    return energies
