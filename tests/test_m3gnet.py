"""The torch port of M3GNet MP-2021.2.8 is the TensorFlow model: same energies, forces, stress.

``tests/data/m3gnet_tf_reference.json`` holds the original model's values on 28 structures
(``scripts/m3gnet_tf_reference.py``, run in the TensorFlow environment). Where TensorFlow
and the ``m3gnet`` 0.2.4 sdist are at hand (``M3GNET_SDIST``), they are recomputed live.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from pipeline.screen.m3gnet import (
    BUNDLED_CHECKPOINT,
    ENERGIES_INCLUDE_MP2020_CORRECTIONS,
    energies_forces_stresses,
    load_m3gnet,
)
from pipeline.screen.potentials import PotentialSpec, ase_calculator, batched_model, describe
from pipeline.screen.relaxation import RelaxSettings, relax_sequential
from pipeline.settings import default_settings

REFERENCE = Path(__file__).parent / "data" / "m3gnet_tf_reference.json"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# The tolerances for "the same model".
ENERGY_TOLERANCE = 1e-3  # eV/atom
FORCE_TOLERANCE = 1e-2  # eV/Å
STRESS_TOLERANCE = 1e-4  # eV/Å^3 (0.016 GPa)
# Experimental room-temperature lattice constants (Å) of the rock-salt oxides.
EXPERIMENT = {"MgO": 4.212, "MnO": 4.445}


@pytest.fixture(scope="module")
def model():
    return load_m3gnet()


@pytest.fixture(scope="module")
def recorded():
    return json.loads(REFERENCE.read_text())["structures"]


def _structure(entry: dict) -> Structure:
    return Structure(entry["lattice"], entry["species"], entry["frac_coords"])


def _torch_values(model, structures: list[Structure]):
    systems = [
        (
            torch.tensor(s.cart_coords, dtype=torch.float32),
            torch.tensor(s.lattice.matrix, dtype=torch.float32),
            torch.tensor(s.atomic_numbers),
        )
        for s in structures
    ]
    return energies_forces_stresses(model, systems)


def _assert_same(name, natoms, energy, forces, stress, expected) -> None:
    assert abs(energy - expected["energy"]) / natoms < ENERGY_TOLERANCE, name
    assert np.abs(np.asarray(forces) - np.asarray(expected["forces"])).max() < FORCE_TOLERANCE, name
    assert np.abs(np.asarray(stress) - np.asarray(expected["stress"])).max() < STRESS_TOLERANCE


def test_port_matches_the_tensorflow_model_on_recorded_structures(model, recorded):
    assert len(recorded) >= 20
    kinds = {entry["id"].split(":")[0] for entry in recorded}
    assert {"reference", "kim2020", "rattled", "strained", "random"} <= kinds
    structures = [_structure(entry) for entry in recorded]
    # One batch: the graphs of all structures side by side, as in a batched relaxation.
    energy, forces, stress = _torch_values(model, structures)
    for k, entry in enumerate(recorded):
        _assert_same(entry["id"], len(structures[k]), float(energy[k]), forces[k], stress[k], entry)


def test_the_weights_carry_their_provenance_and_energy_scale(model):
    metadata = model.metadata
    assert metadata["sdist_sha256"] == (
        "a7f82b06f48d8fb81f91fb88484177005066cdf708902bf749afaa7f8d117ce8"
    )
    assert "m3gnet-0.2.4.tar.gz" in metadata["source"]
    assert metadata["config"]["threebody_cutoff"] == 4.0
    assert (BUNDLED_CHECKPOINT.parent / "LICENSE-m3gnet").read_text().startswith("BSD 3-Clause")
    # Raw MP PBE(+U): the MP2020 corrections are not in its energies.
    assert ENERGIES_INCLUDE_MP2020_CORRECTIONS is False
    assert "without MP2020" in metadata["energy_scale"]
    assert describe(PotentialSpec("m3gnet")).startswith("m3gnet (torch port of m3gnet 0.2.4)")


def test_ase_calculator_and_torch_sim_model_agree(recorded):
    import torch_sim as ts

    entries = [e for e in recorded if e["id"] in ("rattled:MnO2", "strained:MgMn2O4")]
    structures = [_structure(e) for e in entries]
    spec = PotentialSpec("m3gnet")
    calculator = ase_calculator(spec)
    batched = batched_model(spec)
    output = batched(ts.initialize_state(structures, batched.device, batched.dtype))
    start = 0
    for k, (entry, structure) in enumerate(zip(entries, structures)):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator
        stop = start + len(structure)
        _assert_same(
            entry["id"],
            len(structure),
            atoms.get_potential_energy(),
            atoms.get_forces(),
            atoms.get_stress(voigt=False),
            entry,
        )
        _assert_same(
            entry["id"],
            len(structure),
            float(output["energy"][k]),
            output["forces"][start:stop].numpy(),
            output["stress"][k].numpy(),
            entry,
        )
        start = stop


def test_relaxed_rock_salt_lattice_constants_within_three_percent(reference_records):
    rock_salts = [r for r in reference_records if r.id in EXPERIMENT]
    results = relax_sequential(
        rock_salts,
        ase_calculator(PotentialSpec("m3gnet")),
        RelaxSettings.from_settings(default_settings().screen),
        progress=False,
    )
    for result in results:
        assert result.ok, result.reason
        # The primitive fcc cell's edge is a / sqrt(2).
        a = float(np.sqrt(2) * result.structure.lattice.abc[0])
        assert abs(a / EXPERIMENT[result.id] - 1) < 0.03, (result.id, a)
        if result.id == "MgO":
            # The TensorFlow model relaxes MgO to -5.9773 eV/atom, a = 4.2565 Å.
            assert abs(result.energy_per_atom + 5.9773) < 2e-3
            assert abs(a - 4.2565) < 0.01


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None or not os.environ.get("M3GNET_SDIST"),
    reason="needs TensorFlow and M3GNET_SDIST=<m3gnet-0.2.4.tar.gz> (envs/m3gnet-tf.yaml)",
)
def test_tensorflow_recomputed_live_matches_the_record_and_the_port(model, recorded):
    sys.path.insert(0, str(SCRIPTS))
    from m3gnet_tf import load_tf_potential, tf_energy_forces_stresses

    potential, _, _ = load_tf_potential(Path(os.environ["M3GNET_SDIST"]))
    structures = [_structure(entry) for entry in recorded]
    energy, forces, stress = _torch_values(model, structures)
    for k, (entry, structure) in enumerate(zip(recorded, structures)):
        live = tf_energy_forces_stresses(potential, structure)
        _assert_same(entry["id"], len(structure), *live, entry)
        _assert_same(
            entry["id"],
            len(structure),
            float(energy[k]),
            forces[k],
            stress[k],
            dict(zip(("energy", "forces", "stress"), live)),
        )
