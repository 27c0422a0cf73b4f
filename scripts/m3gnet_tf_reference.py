"""Energies, forces and stresses of the TensorFlow M3GNet MP-2021.2.8 on a fixed structure set.

Run in the TensorFlow environment (``envs/m3gnet-tf.yaml``) from the repository root::

    PYTHONPATH=$PWD python scripts/m3gnet_tf_reference.py /tmp/m3gnet/m3gnet-0.2.4.tar.gz

It writes ``tests/data/m3gnet_tf_reference.json``: the structures (bundled reference
phases, Kim et al.'s set, rattled, strained and random ones) with the original model's
values, which ``tests/test_m3gnet.py`` checks the torch port against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from m3gnet_tf import load_tf_potential, tf_energy_forces_stresses
from pymatgen.core import Structure

from pipeline.records import CrystalRecord, read_records

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPOSITORY / "tests" / "data" / "m3gnet_tf_reference.json"


def reference_structures(seed: int = 0) -> list[tuple[str, Structure]]:
    """(name, structure) of the comparison set; the same set for the same seed."""
    rng = np.random.default_rng(seed)
    datasets = REPOSITORY / "resources" / "datasets"
    phases = [
        CrystalRecord.from_dict(d)
        for d in json.loads((datasets / "mgmno_reference_phases.json").read_text())
    ]
    structures = [(f"reference:{r.id}", r.to_structure()) for r in phases]
    kim = [r for r in read_records(datasets / "mgmno_kim2020.json.gz") if r.natoms <= 24]
    for index in rng.choice(len(kim), size=9, replace=False):
        structures.append((f"kim2020:{kim[index].id}", kim[index].to_structure()))
    by_name = dict(structures)
    for name, amplitude in [("MgO", 0.1), ("MnO2", 0.15), ("Mn3O4", 0.1)]:
        rattled = by_name[f"reference:{name}"].copy()
        if len(rattled) < 4:
            rattled.make_supercell([2, 2, 2])
        _rattle(rattled, amplitude, rng)
        structures.append((f"rattled:{name}", rattled))
    for name, strain in [("MgO", -0.06), ("MnO", 0.05), ("MgMn2O4", [0.04, -0.03, 0.02])]:
        strained = by_name[f"reference:{name}"].copy()
        strained.apply_strain(strain)
        structures.append((f"strained:{name}", strained))
    kim_rattled = structures[len(phases)][1].copy()
    _rattle(kim_rattled, 0.2, rng)
    structures.append(("rattled:" + structures[len(phases)][0], kim_rattled))
    structures.extend(_random_crystals(seed))
    return structures


def _rattle(structure: Structure, amplitude: float, rng: np.random.Generator) -> None:
    """Move every atom by a normal random vector of ``amplitude`` Å per component."""
    shifts = rng.normal(0.0, amplitude, size=(len(structure), 3))
    for index, shift in enumerate(shifts):
        structure.translate_sites([index], shift, frac_coords=False, to_unit_cell=True)


def _random_crystals(seed: int) -> list[tuple[str, Structure]]:
    """Random symmetric Mg-Mn-O crystals (pyxtal), as a generator would propose them."""
    from pyxtal import pyxtal

    crystals = []
    for group, counts in [(12, [2, 2, 6]), (62, [4, 4, 12]), (166, [3, 3, 9])]:
        crystal = pyxtal()
        crystal.from_random(3, group, ["Mg", "Mn", "O"], counts, seed=seed + group)
        crystals.append((f"random:{crystal.formula}-sg{group}", crystal.to_pymatgen()))
    return crystals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="m3gnet-0.2.4.tar.gz from PyPI")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    potential, _, _ = load_tf_potential(args.sdist)
    entries = []
    for name, structure in reference_structures():
        energy, forces, stress = tf_energy_forces_stresses(potential, structure)
        record = CrystalRecord.from_structure(structure, id=name, source="m3gnet-reference")
        entries.append(
            {
                "id": name,
                "lattice": record.lattice,
                "species": record.species,
                "frac_coords": record.frac_coords,
                "energy": round(energy, 6),
                "forces": np.round(forces, 6).tolist(),
                "stress": np.round(stress, 8).tolist(),
            }
        )
        print(f"{name:45s} {len(structure):3d} atoms {energy / len(structure):9.5f} eV/atom")
    document = {
        "model": "M3GNet MP-2021.2.8-EFS, TensorFlow m3gnet 0.2.4 (float32)",
        "units": {"energy": "eV", "forces": "eV/A", "stress": "eV/A^3 (ASE sign)"},
        "command": "python scripts/m3gnet_tf_reference.py m3gnet-0.2.4.tar.gz",
        "structures": entries,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {args.output} ({len(entries)} structures)")


if __name__ == "__main__":
    main()
