"""Crystals as periodic graphs, the representation of the graph diffusion model.

A crystal becomes a :class:`torch_geometric.data.Data` graph:

* nodes: ``species`` (index into the chemical system's elements), ``atomic_numbers``
  and ``frac_coords`` ``(n, 3)``;
* ``lattice``: ``(1, 3, 3)``, rows are the lattice vectors in Å (one per graph, so a
  :class:`~torch_geometric.data.Batch` stacks them to ``(B, 3, 3)``);
* edges: every pair of atoms closer than ``cutoff`` in the periodic crystal, also an atom
  and its own periodic images. ``edge_index[0]`` is the neighbour ``j``, ``edge_index[1]``
  the centre ``i`` (PyTorch Geometric's source-to-target order), and ``edge_offset`` the
  lattice translation of the neighbour's image, so that the edge vector is
  ``(f_j + edge_offset - f_i) @ lattice``.

:meth:`GraphEncoding.encode` builds the edges with pymatgen's neighbour list;
:func:`periodic_radius_graph` builds the same edges in torch for the noisy crystals inside
the diffusion model (their positions change at every step). Values are kept in float64,
so ``decode(encode(record))`` gives the record back exactly.

A training set of graphs is stored without edges (they follow from the positions, the
lattice and the cutoff) as concatenated node arrays: :class:`GraphDataset`,
:func:`save_graph_dataset`, :func:`load_graph_dataset`; the encode_graph stage writes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Element
from pymatgen.io.vasp import Poscar
from torch_geometric.data import Data

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.formats import GraphDataset
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError

MIN_VOLUME_PER_ATOM = 1.0  # Å^3; below this a decoded cell is degenerate
TIE_TOLERANCE = 1e-4  # Å; neighbours this close in distance are one shell


@dataclass(frozen=True)
class GraphEncoding:
    """Periodic graphs of the crystals of one chemical system."""

    elements: tuple[str, ...]
    cutoff: float = 5.0  # Å, edge cutoff

    def encode(self, record: CrystalRecord) -> Data:
        """The periodic graph of ``record`` (edges from pymatgen's neighbour list)."""
        foreign = sorted(set(record.species) - set(self.elements))
        if foreign:
            raise PipelineInputError(f"{record.id}: elements {foreign} are not in {self.elements}")
        structure = record.to_structure()
        centres, neighbours, images, _ = structure.get_neighbor_list(self.cutoff)
        return Data(
            species=torch.tensor([self.elements.index(s) for s in record.species]),
            atomic_numbers=torch.tensor([Element(s).Z for s in record.species]),
            frac_coords=torch.tensor(record.frac_coords, dtype=torch.float64),
            lattice=torch.tensor(record.lattice, dtype=torch.float64).unsqueeze(0),
            edge_index=torch.from_numpy(np.stack([neighbours, centres])).long(),
            edge_offset=torch.from_numpy(images).double(),
            num_nodes=record.natoms,
        )

    def decode(self, graph: Data, id: str = "decoded") -> CrystalRecord:
        """The crystal of ``graph``; raises :class:`DecodeError` if there is none."""
        lattice = graph.lattice.reshape(3, 3).detach().cpu().double().numpy()
        coords = graph.frac_coords.detach().cpu().double().numpy()
        species = graph.species.detach().cpu().numpy()
        if len(species) == 0:
            raise DecodeError("no atoms")
        if not (np.all(np.isfinite(lattice)) and np.all(np.isfinite(coords))):
            raise DecodeError("non-finite values")
        if np.any(species < 0) or np.any(species >= len(self.elements)):
            raise DecodeError(f"species index outside 0..{len(self.elements) - 1}")
        volume = abs(float(np.linalg.det(lattice)))
        if volume < MIN_VOLUME_PER_ATOM * len(species):
            raise DecodeError(f"degenerate cell: volume {volume:.3g} Å^3 for {len(species)} atoms")
        return CrystalRecord(
            id=id,
            lattice=lattice.tolist(),
            species=[self.elements[k] for k in species],
            frac_coords=coords.tolist(),
        )


def to_poscar(record: CrystalRecord) -> str:
    """The VASP POSCAR text of a record (pymatgen; the record id as its comment line)."""
    return Poscar(record.to_structure(), comment=record.id).get_str()


# ----------------------------------------------------------------------------- dataset files


def graph_dataset(
    records: list[CrystalRecord], system: ChemicalSystem, band_gap: np.ndarray
) -> GraphDataset:
    if not records:
        raise PipelineInputError("nothing to encode: the dataset is empty")
    elements = tuple(system.elements)
    foreign = sorted({s for r in records for s in r.species} - set(elements))
    if foreign:
        raise PipelineInputError(f"elements {foreign} are not in the chemical system {system}")
    return GraphDataset(
        elements=elements,
        species=np.array([elements.index(s) for r in records for s in r.species], dtype=np.int64),
        frac_coords=np.concatenate([np.asarray(r.frac_coords) for r in records]),
        num_atoms=np.array([r.natoms for r in records], dtype=np.int64),
        lattice=np.stack([np.asarray(r.lattice) for r in records]),
        band_gap=np.asarray(band_gap, dtype=np.float64),
        ids=[r.id for r in records],
        parents=[r.parent or r.id for r in records],
    )


# ----------------------------------------------------------------------------- torch geometry


def periodic_radius_graph(
    frac_coords: torch.Tensor,
    lattice: torch.Tensor,
    cutoff: float,
    max_neighbours: int | None = None,
    max_images: int = 3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges of one periodic crystal within ``cutoff``, as :class:`GraphEncoding` has them.

    Parameters
    ----------
    frac_coords : (n, 3) fractional coordinates.
    lattice : (3, 3) lattice vectors as rows, Å.
    cutoff : edge cutoff, Å.
    max_neighbours : keep only the nearest this many neighbours of each centre, and those
        as near as the last of them (a noisy cell can be small, so the count is bounded);
        ``None`` keeps all.
    max_images : at most this many periodic images along each axis and direction.

    Returns
    -------
    edge_index : (2, E) long, ``[neighbour, centre]``.
    edge_offset : (E, 3) lattice translation of each neighbour's image.
    """
    with torch.no_grad():
        frac, cell = frac_coords.detach(), lattice.detach()
        # Images needed along axis k: cutoff over the spacing of the lattice planes normal to it.
        volume = torch.det(cell).abs()
        cross = torch.linalg.cross(cell[[1, 2, 0]], cell[[2, 0, 1]])
        spacing = volume / cross.norm(dim=1)
        reach = [min(max_images, math.ceil(cutoff / max(float(s), 1e-9))) for s in spacing]
        ranges = [torch.arange(-r, r + 1, device=frac.device, dtype=frac.dtype) for r in reach]
        images = torch.cartesian_prod(*ranges)  # (K, 3)
        delta = frac[None, :, None, :] - frac[:, None, None, :] + images  # (i, j, K, 3)
        distance = (delta @ cell).norm(dim=-1)
        n = len(frac)
        self_image = (
            torch.eye(n, dtype=torch.bool, device=frac.device)[:, :, None]
            & (images == 0).all(dim=1)[None, None, :]
        )
        keep = (distance < cutoff) & ~self_image
        centre, neighbour, image = keep.nonzero(as_tuple=True)
        if max_neighbours is not None:
            d = distance[centre, neighbour, image]
            # Sort by (centre, distance): rank each edge among its centre's edges.
            order = torch.argsort(centre.to(d.dtype) * (2 * cutoff + 1.0) + d)
            centre, neighbour, image, d = centre[order], neighbour[order], image[order], d[order]
            first = torch.searchsorted(centre, centre, right=False)
            rank = torch.arange(len(centre), device=frac.device) - first
            # Keep whole shells: every neighbour tied with the last one kept stays too, so
            # the graph of a symmetric crystal does not depend on rounding (or on rotations).
            last = torch.full((n,), float("inf"), dtype=d.dtype, device=frac.device)
            at_last = rank == max_neighbours - 1
            last[centre[at_last]] = d[at_last]
            nearest = d <= last[centre] + TIE_TOLERANCE
            centre, neighbour, image = centre[nearest], neighbour[nearest], image[nearest]
        return torch.stack([neighbour, centre]), images[image]


def batch_radius_graph(
    frac_coords: torch.Tensor,
    lattices: torch.Tensor,
    ptr: torch.Tensor,
    cutoff: float,
    max_neighbours: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`periodic_radius_graph` of every crystal of a batch (``ptr``: node offsets)."""
    edges, offsets = [], []
    for k in range(len(lattices)):
        start, end = int(ptr[k]), int(ptr[k + 1])
        edge_index, edge_offset = periodic_radius_graph(
            frac_coords[start:end], lattices[k], cutoff, max_neighbours
        )
        edges.append(edge_index + start)
        offsets.append(edge_offset)
    return torch.cat(edges, dim=1), torch.cat(offsets)


def edge_vectors(
    frac_coords: torch.Tensor,
    lattices: torch.Tensor,
    batch: torch.Tensor,
    edge_index: torch.Tensor,
    edge_offset: torch.Tensor,
) -> torch.Tensor:
    """Cartesian edge vectors ``(f_j + offset - f_i) @ L`` (differentiable in both)."""
    neighbour, centre = edge_index
    delta = frac_coords[neighbour] + edge_offset - frac_coords[centre]
    return torch.einsum("ek,ekl->el", delta, lattices[batch[centre]])


def lattice_log_metric(lattices: torch.Tensor) -> torch.Tensor:
    """``(B, 6)`` unique entries of ``S = log(G) / 2``, ``G = L L^T`` the metric of each lattice.

    ``exp(S)`` is the symmetric lattice with the same metric (the polar decomposition
    ``L = exp(S) Q``, ``Q`` a rotation), so ``S`` describes the cell up to rotation, and every
    symmetric ``S`` gives a valid cell: a noisy ``S`` never collapses the lattice. Order:
    ``S11, S22, S33, S12, S13, S23``.
    """
    metric = lattices @ lattices.transpose(1, 2)
    values, vectors = torch.linalg.eigh(metric)
    s = vectors @ torch.diag_embed(0.5 * torch.log(values)) @ vectors.transpose(1, 2)
    return s[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]


def lattice_from_log_metric(entries: torch.Tensor) -> torch.Tensor:
    """Symmetric lattice matrices ``exp(S)`` ``(B, 3, 3)`` from :func:`lattice_log_metric`
    entries (differentiable)."""
    s11, s22, s33, s12, s13, s23 = entries.unbind(dim=1)
    s = torch.stack(
        [
            torch.stack([s11, s12, s13], dim=1),
            torch.stack([s12, s22, s23], dim=1),
            torch.stack([s13, s23, s33], dim=1),
        ],
        dim=1,
    )
    return torch.linalg.matrix_exp(s)
