"""Space groups, symmetry summaries and Wyckoff templates (pipeline.symmetry)."""

from __future__ import annotations

import math

import numpy as np
from pymatgen.core import Lattice, Structure

from pipeline.symmetry import (
    CRYSTAL_SYSTEMS,
    WyckoffSite,
    crystal_system_of,
    space_group,
    summarize_symmetry,
    symmetry_table,
    wyckoff_template,
)


def rocksalt_mgo() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def distorted(structure: Structure, amplitude: float, seed: int = 0) -> Structure:
    """Every atom moved by ``amplitude`` Å in a random direction."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(structure), 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    cart = structure.cart_coords + amplitude * directions
    return Structure(structure.lattice, structure.species, cart, coords_are_cartesian=True)


def test_space_group_of_rocksalt_and_of_a_distorted_cell():
    mgo = rocksalt_mgo()
    assert space_group(mgo).number == 225
    assert space_group(mgo).crystal_system == "cubic"
    shaken = distorted(mgo, 0.03)
    # 0.03 Å displacements: still rocksalt at 0.1 Å, no symmetry at 0.01 Å.
    assert space_group(shaken, 0.1).number == 225
    assert space_group(shaken, 0.01).is_p1


def test_crystal_system_boundaries():
    assert [
        crystal_system_of(n) for n in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230)
    ] == [
        "triclinic",
        "triclinic",
        "monoclinic",
        "monoclinic",
        "orthorhombic",
        "orthorhombic",
        "tetragonal",
        "tetragonal",
        "trigonal",
        "trigonal",
        "hexagonal",
        "hexagonal",
        "cubic",
        "cubic",
    ]


def test_summary_counts_p1_at_both_tolerances(bundled_records):
    mgo = rocksalt_mgo()
    structures = [mgo, distorted(mgo, 0.03), distorted(mgo, 0.3, seed=1)]
    table = symmetry_table(structures)
    assert list(table["space_group_number_strict"])[:1] == [225]
    summary = summarize_symmetry(structures)
    assert summary.n_structures == 3
    assert math.isclose(summary.non_p1_fraction, 2 / 3)
    assert math.isclose(summary.non_p1_fraction_strict, 1 / 3)
    assert set(summary.crystal_systems) == set(CRYSTAL_SYSTEMS)
    assert math.isclose(sum(summary.crystal_systems.values()), 1.0)


def test_wyckoff_template_of_rocksalt_in_its_conventional_cell():
    template = wyckoff_template(rocksalt_mgo().get_primitive_structure())
    assert template.space_group_number == 225
    assert set(template.sites) == {WyckoffSite("Mg", "4a"), WyckoffSite("O", "4b")}
    assert template.composition == {"Mg": 4, "O": 4}
