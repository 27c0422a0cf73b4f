"""torch-sim models (``ModelInterface``) around CHGNet, SevenNet and the M3GNet port.

torch-sim 0.3.0 has no CHGNet wrapper, and its SevenNet wrapper imports a name that
sevenn 0.13 no longer has (sevenn's own wrapper needs a newer torch-sim), so both are
written here. Each takes a batch of systems (a ``SimState``) and returns the energy of
every system (eV), the forces (eV/Å) and the stress (eV/Å^3, ASE's sign convention).

A system whose positions or cell are no longer finite (a relaxation that blew up) is
not passed to the network: its outputs are NaN, which the relaxer reports as a failure,
so one bad structure cannot stop the batch it travels in.
"""

from __future__ import annotations

import torch
from pymatgen.core import Lattice, Structure
from torch_sim.models.interface import ModelInterface
from torch_sim.state import SimState

System = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # positions, row-vector cell, numbers
Predictions = tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]


class BatchedPotential(ModelInterface):
    """A potential on a batch of systems: the finite systems go to :meth:`predict`, every
    other system gets NaN outputs (see the module docstring)."""

    def __init__(self, device: torch.device, dtype: torch.dtype, memory_scales_with: str) -> None:
        super().__init__()
        self._device = device
        self._dtype = dtype
        self._compute_stress = True
        self._compute_forces = True
        self._memory_scales_with = memory_scales_with

    def predict(self, systems: list[System], state: SimState) -> Predictions:
        """Energy (eV) of each system, its forces (eV/Å, atoms x 3) and stress (eV/Å^3)."""
        raise NotImplementedError

    def forward(self, state: SimState, **kwargs) -> dict[str, torch.Tensor]:
        outputs = _nan_outputs(state)
        finite = [(k, system) for k, system in enumerate(_split(state)) if _is_finite(*system[:2])]
        if not finite:
            return outputs
        energy, forces, stress = self.predict([system for _, system in finite], state)
        offsets = _atom_offsets(state)
        for k, (index, _) in enumerate(finite):
            outputs["energy"][index] = energy[k]
            outputs["forces"][offsets[index] : offsets[index + 1]] = forces[k]
            outputs["stress"][index] = stress[k]
        return outputs


class CHGNetModel(BatchedPotential):
    """CHGNet on a batch of systems: one batched forward pass of CHGNet's graphs."""

    def __init__(self, model, device: torch.device, dtype: torch.dtype = torch.float64) -> None:
        super().__init__(device, dtype, "n_atoms")
        self.model = model.to(device).eval()
        self.model.graph_converter.set_isolated_atom_response("ignore")

    def predict(self, systems: list[System], state: SimState) -> Predictions:
        """CHGNet's own ``predict_graph`` takes forces and stress in two autograd passes
        that keep the graph for training (``create_graph=True``); one pass without it
        gives the same numbers in about half the time."""
        from chgnet.model.model import BatchedGraph

        graphs = [
            self.model.graph_converter(
                Structure(
                    Lattice(cell.detach().cpu().numpy()),
                    numbers.cpu().tolist(),
                    positions.detach().cpu().numpy(),
                    coords_are_cartesian=True,
                )
            )
            for positions, cell, numbers in systems
        ]
        batched = BatchedGraph.from_graphs(
            graphs,
            bond_basis_expansion=self.model.bond_basis_expansion,
            angle_basis_expansion=self.model.angle_basis_expansion,
            compute_stress=True,
        )
        prediction = self.model._compute(batched)  # energy only, still differentiable
        atoms = prediction["atoms_per_graph"]
        # CHGNet is intensive: "e" is eV/atom and the composition model adds eV/atom.
        per_atom = prediction["e"]
        extensive = per_atom * atoms
        gradients = torch.autograd.grad(
            extensive.sum(), [*batched.atom_positions, *batched.strains]
        )
        if self.model.composition_model is not None:
            per_atom = per_atom + self.model.composition_model(graphs)
        forces = [-g.detach() for g in gradients[: len(graphs)]]
        stress = [
            g.detach() / volume for g, volume in zip(gradients[len(graphs) :], batched.volumes)
        ]
        return (per_atom * atoms).detach(), forces, stress


class SevenNetModel(BatchedPotential):
    """SevenNet on a batch of systems (torch-sim 0.3.0's wrapper, fixed for sevenn 0.13)."""

    def __init__(self, model, device: torch.device) -> None:
        # SevenNet runs in float32 only
        super().__init__(device, torch.float32, "n_atoms_x_density")
        if not model.type_map or model.cutoff == 0.0:
            raise ValueError("SevenNet model lacks a type map or a cutoff")
        model.eval_type_map = torch.tensor(data=True)
        model.set_is_batch_data(True)
        self.model = model.to(device).eval()
        self.cutoff = torch.tensor(model.cutoff)

    def predict(self, systems: list[System], state: SimState) -> Predictions:
        import sevenn._keys as key
        from sevenn.atom_graph_data import AtomGraphData
        from torch_geometric.loader.dataloader import Collater
        from torch_sim.elastic import voigt_6_to_full_3x3_stress
        from torch_sim.neighbors import vesin_nl_ts

        graphs = []
        for positions, cell, numbers in systems:
            edge_index, shifts_index = vesin_nl_ts(
                positions=positions, cell=cell, pbc=state.pbc, cutoff=self.cutoff
            )
            edge_vectors = positions[edge_index[1]] - positions[edge_index[0]] + shifts_index @ cell
            graphs.append(
                AtomGraphData(
                    **{
                        key.NODE_FEATURE: numbers,
                        key.ATOMIC_NUMBERS: numbers.to(dtype=torch.int64),
                        key.POS: positions,
                        key.EDGE_IDX: edge_index,
                        key.EDGE_VEC: edge_vectors,
                        key.CELL: cell,
                        key.CELL_SHIFT: shifts_index,
                        key.CELL_VOLUME: torch.det(cell),
                        key.NUM_ATOMS: torch.tensor(len(numbers), device=self._device),
                        key.DATA_MODALITY: None,
                        key.INFO: {},
                    }
                )
            )
        batch = Collater([], follow_batch=None, exclude_keys=None)(graphs).to(self._device)
        prediction = self.model(batch)
        forces = prediction[key.PRED_FORCE].detach()
        # SevenNet's stress is -stress in (xx, yy, zz, xy, yz, zx) order.
        stress = -voigt_6_to_full_3x3_stress(
            prediction[key.PRED_STRESS].detach()[..., [0, 1, 2, 4, 5, 3]]
        )
        sizes = [len(numbers) for _, _, numbers in systems]
        return (
            prediction[key.PRED_TOTAL_ENERGY].detach(),
            list(torch.split(forces, sizes)),
            list(stress),
        )


class M3GNetModel(BatchedPotential):
    """The torch port of M3GNet MP-2021.2.8 (:mod:`pipeline.screen.m3gnet`) on a batch."""

    def __init__(self, model, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        # float32, as the TensorFlow original ran
        super().__init__(device, dtype, "n_atoms")
        self.model = model.to(device=device, dtype=dtype).eval()

    def predict(self, systems: list[System], state: SimState) -> Predictions:
        from pipeline.screen.m3gnet import energies_forces_stresses

        return energies_forces_stresses(self.model, systems)


def _split(state: SimState):
    """(positions, row-vector cell, atomic numbers) of each system of ``state``."""
    offsets = _atom_offsets(state)
    cells = state.row_vector_cell
    for system in range(state.n_systems):
        start, stop = offsets[system], offsets[system + 1]
        yield state.positions[start:stop], cells[system], state.atomic_numbers[start:stop]


def _atom_offsets(state: SimState) -> list[int]:
    counts = torch.bincount(state.system_idx, minlength=state.n_systems).tolist()
    offsets = [0]
    for count in counts:
        offsets.append(offsets[-1] + count)
    return offsets


def _is_finite(positions: torch.Tensor, cell: torch.Tensor) -> bool:
    return bool(
        torch.isfinite(positions).all()
        and torch.isfinite(cell).all()
        and abs(float(torch.det(cell))) > 1e-6
    )


def _nan_outputs(state: SimState) -> dict[str, torch.Tensor]:
    options = {"device": state.positions.device, "dtype": state.positions.dtype}
    return {
        "energy": torch.full((state.n_systems,), torch.nan, **options),
        "forces": torch.full((state.n_atoms, 3), torch.nan, **options),
        "stress": torch.full((state.n_systems, 3, 3), torch.nan, **options),
    }
