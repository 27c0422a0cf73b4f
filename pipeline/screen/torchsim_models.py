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


class CHGNetModel(ModelInterface):
    """CHGNet on a batch of systems: one batched forward pass of CHGNet's graphs."""

    def __init__(self, model, device: torch.device, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.model = model.to(device).eval()
        self.model.graph_converter.set_isolated_atom_response("ignore")
        self._device = device
        self._dtype = dtype
        self._compute_stress = True
        self._compute_forces = True
        self._memory_scales_with = "n_atoms"

    def forward(self, state: SimState, **kwargs) -> dict[str, torch.Tensor]:
        outputs = _nan_outputs(state)
        graphs, systems = [], []
        for system, (positions, cell, numbers) in enumerate(_split(state)):
            if not _is_finite(positions, cell):
                continue
            structure = Structure(
                Lattice(cell.detach().cpu().numpy()),
                numbers.cpu().tolist(),
                positions.detach().cpu().numpy(),
                coords_are_cartesian=True,
            )
            graphs.append(self.model.graph_converter(structure))
            systems.append(system)
        if not graphs:
            return outputs
        energy, forces, stress = self._predict(graphs)
        offsets = _atom_offsets(state)
        for k, system in enumerate(systems):
            start, stop = offsets[system], offsets[system + 1]
            outputs["energy"][system] = energy[k]
            outputs["forces"][start:stop] = forces[k]
            outputs["stress"][system] = stress[k]
        return outputs

    def _predict(self, graphs: list) -> tuple[torch.Tensor, list, list]:
        """Energies (eV), forces (eV/Å) and stresses (eV/Å^3) of CHGNet graphs.

        CHGNet's own ``predict_graph`` takes forces and stress in two autograd passes
        that keep the graph for training (``create_graph=True``); one pass without it
        gives the same numbers in about half the time.
        """
        from chgnet.model.model import BatchedGraph

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


class SevenNetModel(ModelInterface):
    """SevenNet on a batch of systems (torch-sim 0.3.0's wrapper, fixed for sevenn 0.13)."""

    def __init__(self, model, device: torch.device) -> None:
        super().__init__()
        if not model.type_map or model.cutoff == 0.0:
            raise ValueError("SevenNet model lacks a type map or a cutoff")
        model.eval_type_map = torch.tensor(data=True)
        model.set_is_batch_data(True)
        self.model = model.to(device).eval()
        self.cutoff = torch.tensor(model.cutoff)
        self._device = device
        self._dtype = torch.float32  # SevenNet runs in float32 only
        self._compute_stress = True
        self._compute_forces = True
        self._memory_scales_with = "n_atoms_x_density"

    def forward(self, state: SimState, **kwargs) -> dict[str, torch.Tensor]:
        import sevenn._keys as key
        from sevenn.atom_graph_data import AtomGraphData
        from torch_geometric.loader.dataloader import Collater
        from torch_sim.elastic import voigt_6_to_full_3x3_stress
        from torch_sim.neighbors import vesin_nl_ts

        outputs = _nan_outputs(state)
        graphs, systems = [], []
        for system, (positions, cell, numbers) in enumerate(_split(state)):
            if not _is_finite(positions, cell):
                continue
            edge_index, shifts_index = vesin_nl_ts(
                positions=positions, cell=cell, pbc=state.pbc, cutoff=self.cutoff
            )
            edge_vectors = positions[edge_index[1]] - positions[edge_index[0]] + shifts_index @ cell
            data = AtomGraphData(
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
            graphs.append(data)
            systems.append(system)
        if not graphs:
            return outputs
        batch = Collater([], follow_batch=None, exclude_keys=None)(graphs).to(self._device)
        prediction = self.model(batch)
        offsets = _atom_offsets(state)
        forces = prediction[key.PRED_FORCE].detach()
        # SevenNet's stress is -stress in (xx, yy, zz, xy, yz, zx) order.
        stress = -voigt_6_to_full_3x3_stress(
            prediction[key.PRED_STRESS].detach()[..., [0, 1, 2, 4, 5, 3]]
        )
        energy = prediction[key.PRED_TOTAL_ENERGY].detach()
        first = 0
        for k, system in enumerate(systems):
            start, stop = offsets[system], offsets[system + 1]
            outputs["energy"][system] = energy[k]
            outputs["forces"][start:stop] = forces[first : first + stop - start]
            outputs["stress"][system] = stress[k]
            first += stop - start
        return outputs


class M3GNetModel(ModelInterface):
    """The torch port of M3GNet MP-2021.2.8 (:mod:`pipeline.screen.m3gnet`) on a batch."""

    def __init__(self, model, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model.to(device=device, dtype=dtype).eval()
        self._device = device
        self._dtype = dtype  # float32, as the TensorFlow original ran
        self._compute_stress = True
        self._compute_forces = True
        self._memory_scales_with = "n_atoms"

    def forward(self, state: SimState, **kwargs) -> dict[str, torch.Tensor]:
        from pipeline.screen.m3gnet import energies_forces_stresses

        outputs = _nan_outputs(state)
        inputs, systems = [], []
        for system, (positions, cell, numbers) in enumerate(_split(state)):
            if _is_finite(positions, cell):
                inputs.append((positions, cell, numbers))
                systems.append(system)
        if not inputs:
            return outputs
        energy, forces, stress = energies_forces_stresses(self.model, inputs)
        offsets = _atom_offsets(state)
        for k, system in enumerate(systems):
            start, stop = offsets[system], offsets[system + 1]
            outputs["energy"][system] = energy[k]
            outputs["forces"][start:stop] = forces[k]
            outputs["stress"][system] = stress[k]
        return outputs


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
