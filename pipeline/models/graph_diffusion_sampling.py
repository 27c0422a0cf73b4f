"""Sampling with :mod:`pipeline.models.graph_diffusion`: starting noise (random or between two
seeds), the reverse diffusion and decoding to crystals."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch_geometric.data import Data

from pipeline.models.base import TargetComposition, check_target_elements
from pipeline.models.graph_diffusion_process import CrystalDiffusion, NoisyCrystals
from pipeline.records import CrystalRecord
from pipeline.represent.graph import DecodeError, GraphEncoding

if TYPE_CHECKING:
    from pipeline.models.graph_diffusion import SampleOptions


def target_species(target: TargetComposition, elements: Sequence[str]) -> list[int]:
    """Species indices of a target's atoms, grouped by element in the system's order."""
    check_target_elements(target, elements)
    return [k for k, el in enumerate(elements) for _ in range(int(target.counts.get(el, 0)))]


def crystals_of(species: list[int], n: int, device: torch.device) -> NoisyCrystals:
    """``n`` crystals of the same species, with zero coordinates and lattice noise."""
    n_atoms = len(species)
    return NoisyCrystals(
        species=torch.tensor(species, device=device).repeat(n),
        frac=torch.zeros(n * n_atoms, 3, device=device),
        lattice_z=torch.zeros(n, 6, device=device),
        num_atoms=torch.full((n,), n_atoms, device=device),
        batch=torch.arange(n, device=device).repeat_interleave(n_atoms),
        ptr=torch.arange(n + 1, device=device) * n_atoms,
    )


def initial_noise(
    model: CrystalDiffusion,
    species: list[int],
    generators: list[torch.Generator],
    device: torch.device,
) -> NoisyCrystals:
    """Uniform coordinates and Gaussian lattice noise, each crystal from its own generator."""
    x = crystals_of(species, len(generators), device)
    frac = torch.cat([torch.rand(len(species), 3, generator=g) for g in generators])
    z = torch.stack([torch.randn(6, generator=g) for g in generators])
    return dataclasses.replace(x, frac=frac.to(device), lattice_z=z.to(device))


def interpolated_noise(
    model: CrystalDiffusion,
    species: list[int],
    seed_start: int,
    seed_end: int,
    positions: list[float],
    device: torch.device,
) -> tuple[NoisyCrystals, list[dict[str, float]]]:
    """Starting points between the noise of two seeds, at ``positions`` in [0, 1]."""
    ends = initial_noise(
        model,
        species,
        [torch.Generator().manual_seed(seed_start), torch.Generator().manual_seed(seed_end)],
        device,
    )
    n_atoms = len(species)
    frac0, frac1 = ends.frac[:n_atoms], ends.frac[n_atoms:]
    frac, z = interpolate_states(frac0, frac1, ends.lattice_z[0], ends.lattice_z[1], positions)
    x = dataclasses.replace(crystals_of(species, len(positions), device), frac=frac, lattice_z=z)
    return x, [
        {"latent_seed": float(seed_start), "latent_seed_end": float(seed_end), "latent_t": float(p)}
        for p in positions
    ]


def interpolate_states(
    frac0: torch.Tensor,
    frac1: torch.Tensor,
    z0: torch.Tensor,
    z1: torch.Tensor,
    positions: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates along the shortest path on the torus, lattice noise on a great circle."""
    step = frac1 - frac0
    step = step - torch.round(step)
    frac = torch.cat([(frac0 + p * step) % 1.0 for p in positions])
    omega = torch.arccos((z0 @ z1 / (z0.norm() * z1.norm())).clamp(-1.0, 1.0))
    if float(omega) < 1e-6:
        z = torch.stack([z0 + p * (z1 - z0) for p in positions])
    else:
        z = torch.stack(
            [
                (torch.sin((1 - p) * omega) * z0 + torch.sin(p * omega) * z1) / torch.sin(omega)
                for p in positions
            ]
        )
    return frac, z


@torch.no_grad()
def denoise_from(
    model: CrystalDiffusion,
    x: NoisyCrystals,
    start_step: int,
    opts: SampleOptions,
    generators: list[torch.Generator] | None,
) -> NoisyCrystals:
    """Run the reverse diffusion from ``start_step`` to 0; stochastic noise of crystal ``k``
    comes from ``generators[k]`` (deterministic sampling, and interpolation, need none)."""
    deterministic = opts.sampler == "deterministic" or generators is None
    n_atoms = int(x.num_atoms[0])
    for step in range(start_step, 0, -1):
        noise = None
        if not deterministic:
            noise = (
                torch.cat([torch.randn(n_atoms, 3, generator=g) for g in generators]).to(
                    x.frac.device
                ),
                torch.stack([torch.randn(6, generator=g) for g in generators]).to(x.frac.device),
            )
        x = model.reverse_step(
            x, step, deterministic, noise, opts.target_band_gap, opts.guidance_scale
        )
    return x


def decoded(
    model: CrystalDiffusion, encoding: GraphEncoding, x: NoisyCrystals, ids: list[str]
) -> list[CrystalRecord | None]:
    """Records of denoised crystals (``predicted_band_gap`` set); None where one does not decode."""
    lattices = model.lattices(x)
    with torch.no_grad():
        gaps = model.band_gap(x, torch.zeros(len(ids), dtype=torch.long, device=x.frac.device))
    records: list[CrystalRecord | None] = []
    for k, id in enumerate(ids):
        nodes = slice(int(x.ptr[k]), int(x.ptr[k + 1]))
        graph = Data(
            species=x.species[nodes], frac_coords=x.frac[nodes], lattice=lattices[k : k + 1]
        )
        try:
            record = encoding.decode(graph, id=id)
        except DecodeError:
            records.append(None)
            continue
        record.properties["predicted_band_gap"] = float(gaps[k])
        records.append(record)
    return records
