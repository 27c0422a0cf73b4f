"""Batches of Wyckoff crystals as tensors, and their lattices, for :mod:`~pipeline.models.wyckoff_diffusion`.

A :class:`Frame` holds what stays fixed while a batch diffuses: the species of every atom and
the site symmetry of its Wyckoff position (:func:`pipeline.represent.wyckoff.site_symmetry_features`),
the affine map from its orbit's free parameters to its position (``A``, ``b``,
:func:`pipeline.represent.wyckoff.orbit_operators`), which parameters are free, and each
crystal's lattice projector and fixed angles. What diffuses are the orbits' parameters
``xyz`` (O, 3) on the torus and six standardised lattice features ``v`` (B, 6)
(:class:`LatticeScaler`), which stay in the crystal system's subspace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch_geometric.utils import scatter

from pipeline.represent.wyckoff import (
    WyckoffCrystal,
    fixed_angles,
    lattice_projection,
    orbit_operators,
    site_symmetry_features,
)

ANGLE_RANGE = (30.0, 150.0)  # degrees; noisy angles are clamped into it
V_CLIP = 5.0  # standard deviations: estimates of clean lattice features stay in the data's range


@dataclass
class Frame:
    """The fixed part of a batch of crystals (atoms ``N``, orbits ``O``, crystals ``B``)."""

    species: torch.Tensor  # (N,) element index
    site: torch.Tensor  # (N, SITE_FEATURES) site symmetry of the atom's Wyckoff position
    a: torch.Tensor  # (N, 3, 3)
    b: torch.Tensor  # (N, 3)
    atom_orbit: torch.Tensor  # (N,)
    batch: torch.Tensor  # (N,) crystal of each atom
    ptr: torch.Tensor  # (B + 1,)
    free: torch.Tensor  # (O, 3) 1 where the parameter moves the orbit
    orbit_batch: torch.Tensor  # (O,)
    projection: torch.Tensor  # (B, 6, 6)
    fixed_angles: torch.Tensor  # (B, 3) degrees
    num_atoms: torch.Tensor  # (B,)

    def positions(self, xyz: torch.Tensor) -> torch.Tensor:
        """Fractional coordinates (N, 3) of every atom for orbit parameters ``xyz``."""
        return (torch.einsum("nij,nj->ni", self.a, xyz[self.atom_orbit]) + self.b) % 1.0

    def orbit_vectors(self, atom_vectors: torch.Tensor) -> torch.Tensor:
        """Per-atom fractional vectors pulled back to the orbits' free parameters: the mean
        of ``A_i^T v_i`` over each orbit (the chain rule of :meth:`positions`), masked."""
        pulled = torch.einsum("nji,nj->ni", self.a, atom_vectors)
        mean = scatter(pulled, self.atom_orbit, dim=0, dim_size=len(self.free), reduce="mean")
        return mean * self.free

    def project(self, v: torch.Tensor) -> torch.Tensor:
        """Lattice features (B, 6) onto each crystal system's subspace."""
        return torch.einsum("bij,bj->bi", self.projection, v)

    def to(self, device: torch.device) -> Frame:
        return Frame(**{k: t.to(device) for k, t in self.__dict__.items()})


def lattice_features(crystal: WyckoffCrystal) -> np.ndarray:
    """Log lengths per atom^(1/3) and angle deviations (radians) from the fixed angles."""
    natoms = sum(len(orbit_operators(crystal.space_group, o.wyckoff)[1]) for o in crystal.orbits)
    lengths = np.log(np.array(crystal.lattice[:3])) - math.log(natoms) / 3
    angles = np.radians(np.array(crystal.lattice[3:]) - fixed_angles(crystal.crystal_system))
    return np.concatenate([lengths, angles])


def make_frame(crystals: Sequence[WyckoffCrystal], elements: Sequence[str]) -> Frame:
    """The frame of ``crystals`` (their ``xyz`` are not part of it: see :func:`orbit_xyz`)."""
    species, site, a, b, atom_orbit, batch, free, orbit_batch, counts = ([] for _ in range(9))
    orbit_offset = 0
    for k, crystal in enumerate(crystals):
        n = 0
        for j, orbit in enumerate(crystal.orbits):
            ops_a, ops_b, ops_free = orbit_operators(crystal.space_group, orbit.wyckoff)
            species += [elements.index(orbit.element)] * len(ops_b)
            features = site_symmetry_features(crystal.space_group, orbit.wyckoff)
            site.append(np.repeat(features[None], len(ops_b), axis=0))
            a.append(ops_a)
            b.append(ops_b)
            atom_orbit += [orbit_offset + j] * len(ops_b)
            free.append(ops_free)
            orbit_batch.append(k)
            n += len(ops_b)
        batch += [k] * n
        counts.append(n)
        orbit_offset += len(crystal.orbits)
    systems = [c.crystal_system for c in crystals]
    return Frame(
        species=torch.tensor(species),
        site=torch.from_numpy(np.concatenate(site)).float(),
        a=torch.from_numpy(np.concatenate(a)).float(),
        b=torch.from_numpy(np.concatenate(b)).float(),
        atom_orbit=torch.tensor(atom_orbit),
        batch=torch.tensor(batch),
        ptr=torch.tensor(np.concatenate([[0], np.cumsum(counts)])),
        free=torch.from_numpy(np.stack(free)).float(),
        orbit_batch=torch.tensor(orbit_batch),
        projection=torch.from_numpy(np.stack([lattice_projection(s) for s in systems])).float(),
        fixed_angles=torch.from_numpy(np.stack([fixed_angles(s) for s in systems])).float(),
        num_atoms=torch.tensor(counts),
    )


def orbit_xyz(crystals: Sequence[WyckoffCrystal]) -> torch.Tensor:
    """The free parameters (O, 3) of every orbit of ``crystals``, in frame order."""
    return torch.tensor([o.xyz for c in crystals for o in c.orbits], dtype=torch.float32)


class LatticeScaler(nn.Module):
    """Lattice features <-> standardised ``v``: one mean and spread for the three log
    lengths (tied lengths stay tied), one spread for the angle deviations (zero stays zero)."""

    def __init__(self, length_mean: float = 0.0, length_std: float = 1.0, angle_std: float = 1.0):
        super().__init__()
        self.register_buffer("stats", torch.tensor([length_mean, length_std, angle_std]))

    @classmethod
    def fit(cls, features: np.ndarray, projections: np.ndarray) -> LatticeScaler:
        lengths = features[:, :3].ravel()
        free_angles = features[:, 3:][np.diagonal(projections, axis1=1, axis2=2)[:, 3:] > 0]
        angle_std = float(np.sqrt(np.mean(free_angles**2))) if len(free_angles) else 0.1
        return cls(float(lengths.mean()), max(float(lengths.std()), 0.05), max(angle_std, 0.05))

    def to_v(self, features: torch.Tensor) -> torch.Tensor:
        mean, length_std, angle_std = self.stats
        return torch.cat([(features[:, :3] - mean) / length_std, features[:, 3:] / angle_std], 1)

    def parameters_of(self, v: torch.Tensor, frame: Frame) -> tuple[torch.Tensor, torch.Tensor]:
        """Lengths (B, 3) in Å and angles (B, 3) in degrees of standardised features ``v``."""
        mean, length_std, angle_std = self.stats
        v = v.clamp(-2 * V_CLIP, 2 * V_CLIP)  # a wild noisy v still gives a finite cell
        size = torch.log(frame.num_atoms.to(v.dtype))[:, None] / 3
        lengths = torch.exp(v[:, :3] * length_std + mean + size)
        angles = frame.fixed_angles + torch.rad2deg(v[:, 3:] * angle_std)
        return lengths, angles.clamp(*ANGLE_RANGE)

    def cells(self, v: torch.Tensor, frame: Frame) -> torch.Tensor:
        """Lattice matrices (B, 3, 3), rows are vectors: a along x, b in the xy plane."""
        lengths, angles = self.parameters_of(v, frame)
        alpha, beta, gamma = torch.deg2rad(angles).unbind(1)
        la, lb, lc = lengths.unbind(1)
        zero = torch.zeros_like(la)
        cx = lc * torch.cos(beta)
        cy = lc * (torch.cos(alpha) - torch.cos(beta) * torch.cos(gamma)) / torch.sin(gamma)
        cz = torch.sqrt((lc**2 - cx**2 - cy**2).clamp(min=(0.1 * lc) ** 2))
        rows = [
            torch.stack([la, zero, zero], 1),
            torch.stack([lb * torch.cos(gamma), lb * torch.sin(gamma), zero], 1),
            torch.stack([cx, cy, cz], 1),
        ]
        return torch.stack(rows, 1)
