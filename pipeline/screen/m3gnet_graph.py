"""The bond and angle graph of M3GNet (:mod:`pipeline.screen.m3gnet`) for a batch of structures.

Every atom pair within ``cutoff`` is a directed bond (pymatgen's periodic neighbour search, at
the TensorFlow package's bonding tolerance), and every ordered pair of bonds shorter than
``threebody_cutoff`` that share their centre atom is an angle. The graph holds indices only:
the network computes bond vectors from the positions, so forces and stress flow through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.optimization.neighbors import find_points_in_spheres

_NEIGHBOUR_TOLERANCE = 1e-8  # Å; the TensorFlow package's bonding tolerance


@dataclass
class Graph:
    """Bonds and angles of a batch of structures (indices only; geometry comes from positions).

    ``bond_atoms`` (n_bonds, 2): centre and neighbour atom of each directed bond;
    ``bond_images`` (n_bonds, 3): the neighbour's periodic image, in lattice vectors;
    ``bond_system`` (n_bonds,): structure of each bond; ``triples`` (n_triples, 2): the bonds
    i-j and i-k of each angle; ``atom_system`` (n_atoms,): structure of each atom.
    """

    bond_atoms: torch.Tensor
    bond_images: torch.Tensor
    bond_system: torch.Tensor
    triples: torch.Tensor
    atom_system: torch.Tensor
    n_systems: int


def build_graph(
    systems: list[tuple[np.ndarray, np.ndarray]], cutoff: float, threebody_cutoff: float
) -> Graph:
    """The bond and angle graph of ``systems``, each (cartesian positions, row-vector cell)."""
    bond_atoms, images, bond_system, triples, atom_system = [], [], [], [], []
    atom_offset = bond_offset = 0
    for index, (positions, cell) in enumerate(systems):
        positions = np.ascontiguousarray(positions, dtype=float)
        centres, neighbours, image, distances = find_points_in_spheres(
            positions,
            positions,
            r=float(cutoff),
            pbc=np.array([1, 1, 1], dtype=int),
            lattice=np.ascontiguousarray(cell, dtype=float),
            tol=_NEIGHBOUR_TOLERANCE,
        )
        keep = (centres != neighbours) | (distances > _NEIGHBOUR_TOLERANCE)
        centres, neighbours, image, distances = (
            centres[keep],
            neighbours[keep],
            image[keep],
            distances[keep],
        )
        bond_atoms.append(np.stack([centres, neighbours], axis=1) + atom_offset)
        images.append(image)
        bond_system.append(np.full(len(centres), index))
        triples.append(_angle_bonds(centres, distances <= threebody_cutoff) + bond_offset)
        atom_system.append(np.full(len(positions), index))
        atom_offset += len(positions)
        bond_offset += len(centres)

    def cat(parts, width=None):
        if width is not None:
            parts = [p.reshape(-1, width) for p in parts]
        return torch.as_tensor(np.concatenate(parts).astype(np.int64))

    return Graph(
        bond_atoms=cat(bond_atoms, 2),
        bond_images=cat(images, 3),
        bond_system=cat(bond_system),
        triples=cat(triples, 2),
        atom_system=cat(atom_system),
        n_systems=len(systems),
    )


def _angle_bonds(centres: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Every ordered pair (i-j, i-k), j-bond != k-bond, of short bonds sharing centre i."""
    bonds = np.flatnonzero(short)
    if len(bonds) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    bonds = bonds[np.argsort(centres[bonds], kind="stable")]
    _, group, sizes = np.unique(centres[bonds], return_inverse=True, return_counts=True)
    starts = np.cumsum(sizes) - sizes
    size = sizes[group]
    first = np.repeat(np.arange(len(bonds)), size)
    within = np.arange(len(first)) - np.repeat(np.cumsum(size) - size, size)
    second = np.repeat(starts[group], size) + within
    keep = first != second
    return np.stack([bonds[first[keep]], bonds[second[keep]]], axis=1)
