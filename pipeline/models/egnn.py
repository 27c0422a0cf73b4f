"""E(n)-equivariant graph networks on periodic crystals (Satorras et al., ICML 2021).

An :class:`EGNNLayer` updates invariant node features ``h`` from messages that see only
edge lengths, and (optionally) moves every atom by a weighted sum of its edge vectors,
so that the displacement rotates with the crystal and ignores translations. On a periodic
graph the edge vector of ``j -> i`` is ``(f_j + offset - f_i) @ L``
(:func:`pipeline.represent.graph.edge_vectors`); moving atoms by ``shift`` changes it by
``shift_j - shift_i``, which is how the layers below carry the positions along.

Two networks use the layers:

* :class:`Denoiser`: (noisy crystal, time step) -> a score for each atom's fractional
  coordinates (the total displacement of the EGNN, taken back to fractional
  coordinates: invariant under rotations of the crystal) and the noise of the six
  lattice parameters (from pooled invariant features);
* :class:`PropertyPredictor`: (noisy crystal, time step) -> one scalar per crystal (the
  band gap), the noise-aware predictor whose gradient steers the sampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch_geometric.utils import scatter

from pipeline.models.layers import mlp as dense_stack
from pipeline.represent.graph import batch_radius_graph, edge_vectors


def mlp(*sizes: int) -> nn.Sequential:
    """Dense layers with SiLU between them."""
    return dense_stack(*sizes, activation=nn.SiLU)


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``(B, dim)`` of a time in [0, 1] (Vaswani et al. 2017)."""
    frequencies = torch.exp(
        -math.log(1000.0) * torch.arange(dim // 2, device=t.device) / (dim // 2)
    )
    angles = 1000.0 * t[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class GaussianBasis(nn.Module):
    """Distances expanded on Gaussians centred between 0 and the cutoff."""

    def __init__(self, cutoff: float, n: int):
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n))
        self.width = cutoff / (n - 1)

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(((distance[:, None] - self.centres) / self.width) ** 2))


class EGNNLayer(nn.Module):
    """One E(n)-equivariant layer: ``h_i += phi_h(h_i, mean_j m_ij)`` and, if it moves
    atoms, ``shift_i += mean_j r_ij / (|r_ij| + 1) * phi_x(m_ij)`` with
    ``m_ij = phi_e(h_i, h_j, rbf(|r_ij|))``."""

    def __init__(self, hidden: int, basis: GaussianBasis, moves_atoms: bool):
        super().__init__()
        self.basis = basis
        n_rbf = len(basis.centres)
        self.edge_mlp = nn.Sequential(mlp(2 * hidden + n_rbf, hidden, hidden), nn.SiLU())
        self.node_mlp = mlp(2 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.coord_mlp = mlp(hidden, hidden, 1) if moves_atoms else None

    def forward(
        self, h: torch.Tensor, vectors: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        neighbour, centre = edge_index
        distance = vectors.norm(dim=1)
        messages = self.edge_mlp(torch.cat([h[centre], h[neighbour], self.basis(distance)], dim=1))
        pooled = scatter(messages, centre, dim=0, dim_size=len(h), reduce="mean")
        h = self.norm(h + self.node_mlp(torch.cat([h, pooled], dim=1)))
        if self.coord_mlp is None:
            return h, None
        weights = self.coord_mlp(messages) / (distance[:, None] + 1.0)
        shift = scatter(vectors * weights, centre, dim=0, dim_size=len(h), reduce="mean")
        return h, shift


class EGNN(nn.Module):
    """Species embedding + time embedding, then :class:`EGNNLayer` s on the periodic graph.

    Returns the final node features and the atoms' total Cartesian displacement (zeros
    when the layers do not move atoms).
    """

    def __init__(
        self,
        n_species: int,
        hidden: int,
        layers: int,
        cutoff: float,
        max_neighbours: int,
        moves_atoms: bool,
        time_dim: int = 32,
        node_features: int = 0,
    ):
        super().__init__()
        self.cutoff, self.max_neighbours, self.time_dim = cutoff, max_neighbours, time_dim
        self.species_embedding = nn.Embedding(n_species, hidden)
        self.time_mlp = mlp(time_dim, hidden, hidden)
        basis = GaussianBasis(cutoff, 32)
        self.layers = nn.ModuleList(EGNNLayer(hidden, basis, moves_atoms) for _ in range(layers))
        # Invariant per-atom conditioning (e.g. site symmetry), added to the species embedding;
        # made last, so a network without it is initialised as before.
        self.node_embedding = nn.Linear(node_features, hidden) if node_features else None

    def forward(
        self,
        species: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        t: torch.Tensor,
        batch: torch.Tensor,
        ptr: torch.Tensor,
        node_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``t``: (B,) time in [0, 1]; ``batch``/``ptr``: PyG's node-to-crystal maps;
        ``node_features``: (N, node_features) when the network was made with them."""
        edge_index, edge_offset = batch_radius_graph(
            frac_coords, lattices, ptr, self.cutoff, self.max_neighbours
        )
        vectors = edge_vectors(
            frac_coords, lattices, batch, edge_index, edge_offset.to(frac_coords)
        )
        h = self.species_embedding(species) + self.time_mlp(time_features(t, self.time_dim))[batch]
        if self.node_embedding is not None:
            h = h + self.node_embedding(node_features)
        shift = torch.zeros_like(frac_coords)
        neighbour, centre = edge_index
        for layer in self.layers:
            h, step = layer(h, vectors + shift[neighbour] - shift[centre], edge_index)
            if step is not None:
                shift = shift + step
        return h, shift


class Denoiser(nn.Module):
    """(noisy crystal, t) -> (fractional-coordinate score x sigma_t, lattice noise)."""

    def __init__(
        self,
        n_species: int,
        hidden: int,
        layers: int,
        cutoff: float,
        max_neighbours: int,
        node_features: int = 0,
    ):
        super().__init__()
        self.egnn = EGNN(
            n_species,
            hidden,
            layers,
            cutoff,
            max_neighbours,
            moves_atoms=True,
            node_features=node_features,
        )
        self.lattice_head = mlp(2 * hidden + 6, hidden, hidden, 6)
        self.time_for_lattice = mlp(self.egnn.time_dim, hidden)

    def forward(
        self,
        species: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        lattice_z: torch.Tensor,
        t: torch.Tensor,
        batch: torch.Tensor,
        ptr: torch.Tensor,
        node_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``lattice_z``: (B, 6) the standardised lattice parameters ``lattices`` came from;
        ``node_features``: the EGNN's per-atom conditioning, if made with it."""
        h, shift = self.egnn(species, frac_coords, lattices, t, batch, ptr, node_features)
        # A Cartesian displacement d = delta_f @ L  <=>  delta_f = d @ L^-1: invariant under
        # rotations of the crystal, as the fractional coordinates are.
        frac_score = torch.einsum("nk,nkl->nl", shift, torch.linalg.inv(lattices)[batch])
        pooled = scatter(h, batch, dim=0, dim_size=len(lattices), reduce="mean")
        time = self.time_for_lattice(time_features(t, self.egnn.time_dim))
        return frac_score, self.lattice_head(torch.cat([pooled, time, lattice_z], dim=1))


class PropertyPredictor(nn.Module):
    """(noisy crystal, t) -> one scalar per crystal, from mean-pooled invariant EGNN
    features and the (invariant) standardised lattice parameters."""

    def __init__(
        self, n_species: int, hidden: int, layers: int, cutoff: float, max_neighbours: int
    ):
        super().__init__()
        self.egnn = EGNN(n_species, hidden, layers, cutoff, max_neighbours, moves_atoms=False)
        self.head = mlp(hidden + 6, hidden, 1)

    def forward(
        self,
        species: torch.Tensor,
        frac_coords: torch.Tensor,
        lattices: torch.Tensor,
        lattice_z: torch.Tensor,
        t: torch.Tensor,
        batch: torch.Tensor,
        ptr: torch.Tensor,
    ) -> torch.Tensor:
        h, _ = self.egnn(species, frac_coords, lattices, t, batch, ptr)
        pooled = scatter(h, batch, dim=0, dim_size=len(lattices), reduce="mean")
        return self.head(torch.cat([pooled, lattice_z], dim=1)).squeeze(1)
