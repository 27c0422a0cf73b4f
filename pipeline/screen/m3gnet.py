"""M3GNet MP-2021.2.8 (the original TensorFlow universal potential) as a compact torch module.

Chen and Ong's M3GNet (Nat. Comput. Sci. 2, 718 (2022)) shipped its universal potential
``MP-2021.2.8-EFS`` inside the source distribution of the TensorFlow package ``m3gnet``
0.2.4 (BSD-3). ``scripts/convert_m3gnet.py`` reads that checkpoint once, in a separate
TensorFlow environment, and writes its weights as a NumPy archive; this module is the same
network in torch, so the pipeline runs it with no TensorFlow:

* a graph of every atom pair within ``cutoff`` (5 Å) and every angle j-i-k of bonds
  within ``threebody_cutoff`` (4 Å);
* bonds expanded on three smooth spherical Bessel functions, atoms embedded by atomic
  number;
* three blocks of a three-body update (spherical Bessel x Y_l^0 of the angle, weighted by
  the atoms at the far end and by a polynomial cutoff) then a bond and an atom update
  (gated MLPs);
* a gated MLP to one number per atom, summed, times ``std`` plus the element reference
  energies. Forces and stress are derivatives of that energy.

Energies are on the raw Materials Project PBE(+U) scale the model was trained on: the
MP2020 anion and U corrections are *not* part of them (unlike CHGNet's).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress
from torch import nn

from pipeline.errors import PipelineInputError
from pipeline.screen.m3gnet_graph import Graph, build_graph

# The training energies of MP-2021.2.8: raw MP PBE(+U) totals, no MP2020 corrections.
ENERGIES_INCLUDE_MP2020_CORRECTIONS = False
ENERGY_SCALE = "raw Materials Project PBE(+U), without MP2020 corrections"

CHECKPOINT_NAME = "MP-2021.2.8-EFS"
BUNDLED_CHECKPOINT = (
    Path(__file__).resolve().parents[2] / "resources" / "potentials" / "m3gnet-MP-2021.2.8-EFS.npz"
)


@dataclass(frozen=True)
class M3GNetConfig:
    """The hyperparameters of a converted checkpoint (``m3gnet.json`` of the original)."""

    cutoff: float = 5.0
    threebody_cutoff: float = 4.0
    max_n: int = 3
    max_l: int = 3
    n_blocks: int = 3
    units: int = 64
    mean: float = 0.0
    std: float = 1.0


class _Dense(nn.Module):
    """Keras' ``Dense``: ``activation(x @ kernel + bias)``, kernel stored (in, out)."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray | None, activation: str | None):
        super().__init__()
        self.kernel = nn.Parameter(torch.as_tensor(kernel), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(torch.as_tensor(bias), False)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.kernel
        if self.bias is not None:
            y = y + self.bias
        if self.activation == "swish":
            return torch.nn.functional.silu(y)
        if self.activation == "sigmoid":
            return torch.sigmoid(y)
        return y


class _GatedMLP(nn.Module):
    """``MLP(x) * MLP_gate(x)``; the gate's last layer is a sigmoid."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str, activations: list):
        super().__init__()
        n = len(activations)
        gates = [*activations[:-1], "sigmoid"]
        self.pipe = nn.Sequential(
            *(_layer(weights, f"{prefix}.pipe.{i}", activations[i]) for i in range(n))
        )
        self.gate = nn.Sequential(
            *(_layer(weights, f"{prefix}.gate.{i}", gates[i]) for i in range(n))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pipe(x) * self.gate(x)


def _layer(weights: dict[str, np.ndarray], name: str, activation: str | None) -> _Dense:
    return _Dense(weights[f"{name}.kernel"], weights.get(f"{name}.bias"), activation)


class M3GNet(nn.Module):
    """The M3GNet energy model of the TensorFlow package, on torch tensors.

    Parameters
    ----------
    config
        Cutoffs, basis sizes and the energy scale.
    weights
        Arrays by the names ``scripts/convert_m3gnet.py`` writes.
    """

    def __init__(self, config: M3GNetConfig, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.config = config
        swish = "swish"
        self.embedding = nn.Parameter(torch.as_tensor(weights["embedding"]), False)
        self.element_refs = nn.Parameter(torch.as_tensor(weights["element_refs"]), False)
        self.bond_adjust = _layer(weights, "bond_adjust", swish)
        self.three_body_atoms = nn.ModuleList()
        self.three_body_bonds = nn.ModuleList()
        self.bond_updates = nn.ModuleList()
        self.bond_weights = nn.ModuleList()
        self.atom_updates = nn.ModuleList()
        self.atom_weights = nn.ModuleList()
        for b in range(config.n_blocks):
            self.three_body_atoms.append(_layer(weights, f"block{b}.three_body_atoms", "sigmoid"))
            self.three_body_bonds.append(_GatedMLP(weights, f"block{b}.three_body_bonds", [swish]))
            self.bond_updates.append(_GatedMLP(weights, f"block{b}.bond_update", [swish, swish]))
            self.bond_weights.append(_layer(weights, f"block{b}.bond_weight", None))
            self.atom_updates.append(_GatedMLP(weights, f"block{b}.atom_update", [swish, swish]))
            self.atom_weights.append(_layer(weights, f"block{b}.atom_weight", swish))
        self.readout = _GatedMLP(weights, "readout", [swish, swish, None])
        roots = np.asarray(weights["sbf_roots"], dtype=float)[: config.max_l, : config.max_n]
        # Normalisation of j_l(z r / rc): sqrt(2 / rc^3) / |j_{l+1}(z)| at each root z.
        norms = np.array(
            [
                [
                    math.sqrt(2.0 / config.cutoff**3) / abs(_spherical_jn_np(l + 1, z))
                    for z in roots[l]
                ]
                for l in range(config.max_l)  # noqa: E741 (the angular momentum's name)
            ]
        )
        dtype = self.embedding.dtype
        self.register_buffer("sbf_roots", torch.as_tensor(roots.ravel(), dtype=dtype))
        self.register_buffer("sbf_norms", torch.as_tensor(norms.ravel(), dtype=dtype))

    def forward(
        self, numbers: torch.Tensor, bond_vectors: torch.Tensor, graph: Graph
    ) -> torch.Tensor:
        """Total energy (eV) of each structure of ``graph``.

        Parameters
        ----------
        numbers
            Atomic number of every atom, (n_atoms,).
        bond_vectors
            Neighbour minus centre position of every bond, (n_bonds, 3), Å.
        graph
            The bond and angle indices (:func:`pipeline.screen.m3gnet_graph.build_graph`).
        """
        config = self.config
        centre, neighbour = graph.bond_atoms[:, 0], graph.bond_atoms[:, 1]
        bond_ij, bond_ik = graph.triples[:, 0], graph.triples[:, 1]
        length = torch.linalg.norm(bond_vectors, dim=1)
        radial = self._smooth_bessel(length)  # the bond weights of every update
        bonds = self.bond_adjust(radial)
        atoms = self.embedding[numbers]

        cos_angle = (bond_vectors[bond_ij] * bond_vectors[bond_ik]).sum(dim=1) / (
            length[bond_ij] * length[bond_ik]
        )
        three_basis = self._bessel(length[bond_ik]) * self._harmonics(
            cos_angle.clamp(-1.0, 1.0)
        ).repeat_interleave(config.max_n, dim=1)
        cutoff = _polynomial_cutoff(length, config.threebody_cutoff)
        three_basis = three_basis * (cutoff[bond_ij] * cutoff[bond_ik])[:, None]
        far_atom = neighbour[bond_ik]

        for b in range(config.n_blocks):
            gathered = three_basis * self.three_body_atoms[b](atoms)[far_atom]
            summed = torch.zeros(
                len(length), gathered.shape[1], dtype=gathered.dtype, device=gathered.device
            ).index_add(0, bond_ij, gathered)
            bonds = bonds + self.three_body_bonds[b](summed)
            pair = torch.cat([atoms[centre], atoms[neighbour], bonds], dim=1)
            bonds = self.bond_updates[b](pair) * self.bond_weights[b](radial) + bonds
            pair = torch.cat([atoms[centre], atoms[neighbour], bonds], dim=1)
            messages = self.atom_updates[b](pair) * self.atom_weights[b](radial)
            atoms = atoms + torch.zeros_like(atoms).index_add(0, centre, messages)

        per_atom = self.readout(atoms)[:, 0]
        zeros = torch.zeros(graph.n_systems, dtype=per_atom.dtype, device=per_atom.device)
        energy = zeros.index_add(0, graph.atom_system, per_atom) * config.std + config.mean
        return energy + zeros.index_add(0, graph.atom_system, self.element_refs[numbers])

    def _smooth_bessel(self, r: torch.Tensor) -> torch.Tensor:
        """The smooth radial basis of Kocer et al. (first and second derivative 0 at rc)."""
        rc, max_n = self.config.cutoff, self.config.max_n
        en = [n**2 * (n + 2) ** 2 / (4 * (n + 1) ** 4 + 1) for n in range(max_n)]
        dn = [1.0]
        for n in range(1, max_n):
            dn.append(1 - en[n] / dn[-1])
        basis = []
        for n in range(max_n):
            a, b = (n + 1) * math.pi / rc, (n + 2) * math.pi / rc
            fn = (
                (-1) ** n
                * math.sqrt(2.0)
                * math.pi
                / rc**1.5
                * (n + 1)
                * (n + 2)
                / math.sqrt((n + 1) ** 2 + (n + 2) ** 2)
                * (torch.sin(r * a) / (r * a) + torch.sin(r * b) / (r * b))
            )
            if n == 0:
                basis.append(fn)
            else:
                basis.append((fn + math.sqrt(en[n] / dn[n - 1]) * basis[-1]) / math.sqrt(dn[n]))
        return torch.stack(basis, dim=1)

    def _bessel(self, r: torch.Tensor) -> torch.Tensor:
        """j_l(z_ln r / rc) * norm_ln, columns (l, n) with n fastest."""
        max_n = self.config.max_n
        x = r[:, None] * self.sbf_roots[None, :] / self.config.cutoff
        columns = [
            _spherical_jn(l, x[:, l * max_n : (l + 1) * max_n])
            for l in range(self.config.max_l)  # noqa: E741
        ]
        return torch.cat(columns, dim=1) * self.sbf_norms

    def _harmonics(self, cos_angle: torch.Tensor) -> torch.Tensor:
        """Y_l^0 of the angle for l < max_l (the model uses no azimuth)."""
        columns = [torch.full_like(cos_angle, 0.5 / math.sqrt(math.pi))]
        if self.config.max_l > 1:
            columns.append(0.5 * math.sqrt(3 / math.pi) * cos_angle)
        if self.config.max_l > 2:
            columns.append(0.25 * math.sqrt(5 / math.pi) * (3 * cos_angle**2 - 1))
        if self.config.max_l > 3:
            raise ValueError("max_l above 3 is not implemented")
        return torch.stack(columns, dim=1)


def _polynomial_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    ratio = r / cutoff
    value = 1 - 6 * ratio**5 + 15 * ratio**4 - 10 * ratio**3
    return torch.where(r <= cutoff, value, torch.zeros_like(value))


def _spherical_jn(order: int, x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel function of the first kind, orders 0-3 (Rayleigh's closed forms)."""
    sin, cos = torch.sin(x), torch.cos(x)
    if order == 0:
        return sin / x
    if order == 1:
        return sin / x**2 - cos / x
    if order == 2:
        return (3 / x**2 - 1) * sin / x - 3 * cos / x**2
    if order == 3:
        return (15 / x**3 - 6 / x) * sin / x - (15 / x**2 - 1) * cos / x
    raise ValueError(f"spherical Bessel order {order} is not implemented")


def _spherical_jn_np(order: int, x: float) -> float:
    return float(_spherical_jn(order, torch.tensor(x, dtype=torch.float64)))


def load_m3gnet(path: str | Path = BUNDLED_CHECKPOINT) -> M3GNet:
    """The converted model in ``path`` (a ``.npz`` written by ``scripts/convert_m3gnet.py``)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"m3gnet: no converted checkpoint at {path}")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(str(arrays.pop("metadata")))
    model = M3GNet(M3GNetConfig(**metadata["config"]), arrays)
    model.metadata = metadata
    return model.eval()


def energies_forces_stresses(
    model: M3GNet,
    systems: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    compute_stress: bool = True,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Energy (eV), forces (eV/Å) and stress (eV/Å^3, ASE's sign) of each structure.

    ``systems`` holds (cartesian positions (n, 3), row-vector cell (3, 3), atomic numbers)
    per structure, in the model's dtype and device. The stress is the derivative of the
    energy by a homogeneous strain of positions and cell, over the volume.
    """
    config = model.config
    graph = build_graph(
        [(p.detach().cpu().numpy(), c.detach().cpu().numpy()) for p, c, _ in systems],
        config.cutoff,
        config.threebody_cutoff,
    )
    device = systems[0][0].device
    dtype = systems[0][0].dtype
    graph = Graph(
        bond_atoms=graph.bond_atoms.to(device),
        bond_images=graph.bond_images.to(device=device, dtype=dtype),
        bond_system=graph.bond_system.to(device),
        triples=graph.triples.to(device),
        atom_system=graph.atom_system.to(device),
        n_systems=graph.n_systems,
    )
    positions = torch.cat([p for p, _, _ in systems]).detach().requires_grad_(True)
    cells = torch.stack([c for _, c, _ in systems]).detach()
    numbers = torch.cat([z for _, _, z in systems]).to(device=device, dtype=torch.int64)
    strain = torch.zeros_like(cells, requires_grad=compute_stress)
    with torch.enable_grad():
        deformation = torch.eye(3, dtype=dtype, device=device) + strain
        strained_cells = cells @ deformation
        strained_positions = torch.einsum("ai,aij->aj", positions, deformation[graph.atom_system])
        centre, neighbour = graph.bond_atoms[:, 0], graph.bond_atoms[:, 1]
        bond_vectors = (
            strained_positions[neighbour]
            + torch.einsum("bi,bij->bj", graph.bond_images, strained_cells[graph.bond_system])
            - strained_positions[centre]
        )
        energy = model(numbers, bond_vectors, graph)
        inputs = [positions, strain] if compute_stress else [positions]
        gradients = torch.autograd.grad(energy.sum(), inputs)
    counts = torch.bincount(graph.atom_system, minlength=len(systems)).tolist()
    forces = list((-gradients[0]).detach().split(counts))
    stresses = []
    if compute_stress:
        volumes = torch.linalg.det(cells).abs()
        stresses = list((gradients[1] / volumes[:, None, None]).detach())
    return energy.detach(), forces, stresses


class M3GNetCalculator(Calculator):
    """ASE calculator of the torch port (energy eV, forces eV/Å, stress eV/Å^3, Voigt)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: M3GNet, device: str = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model.to(device)
        self.dtype = next(model.parameters()).dtype
        self.device = torch.device(device)

    def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        options = {"dtype": self.dtype, "device": self.device}
        system = (
            torch.as_tensor(self.atoms.get_positions(), **options),
            torch.as_tensor(np.asarray(self.atoms.cell), **options),
            torch.as_tensor(self.atoms.get_atomic_numbers(), device=self.device),
        )
        energy, forces, stresses = energies_forces_stresses(self.model, [system])
        self.results = {
            "energy": float(energy[0]),
            "free_energy": float(energy[0]),
            "forces": forces[0].cpu().double().numpy(),
            "stress": full_3x3_to_voigt_6_stress(stresses[0].cpu().double().numpy()),
        }
