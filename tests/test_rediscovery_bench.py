"""bench/rediscovery.py on any system: its overlay, the held-out cells it samples and the
structure types it scores against."""

from __future__ import annotations

import importlib.util

import pytest
from pymatgen.core import Composition

from pipeline.chemsys import ChemicalSystem
from pipeline.records import CrystalRecord
from pipeline.symmetry import space_group


@pytest.fixture(scope="module")
def bench(repo):
    spec = importlib.util.spec_from_file_location("rediscovery", repo / "bench" / "rediscovery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_users_overlay_is_kept_and_the_bench_adds_its_hold_out(bench):
    user = {
        "chemsys": "Ba-Mn-O",
        "data": {"source": "cif_dir", "cif_dir": "/cifs"},
        "train": {"wyckoff_diffusion": {"hidden": 32}},
    }
    models = ["wyckoff_diffusion", "pyxtal_random", "substitution", "graph_diffusion"]
    overlay = bench.overlay_config(user, ["BaMnO3"], ["Ba2Mn2O6"], models, 8, 100)
    assert overlay["chemsys"] == "Ba-Mn-O"
    assert overlay["data"] == {
        "source": "cif_dir",
        "cif_dir": "/cifs",
        "exclude_formulas": ["BaMnO3"],
    }
    assert overlay["compositions"]["targets"] == ["Ba2Mn2O6"]
    assert overlay["sample"]["per_composition"] == 8
    train = overlay["train"]
    assert train["models"] == models
    assert train["wyckoff_diffusion"] == {"hidden": 32, "steps": 100}  # the user's kept
    assert train["graph_diffusion"] == {"steps": 100, "guide_steps": 0}
    assert "pyxtal_random" not in train and "substitution" not in train  # nothing to train
    assert user["data"] == {"source": "cif_dir", "cif_dir": "/cifs"}  # not changed in place


def test_held_out_cells_and_structure_types(bench, bundled_records):
    """The bundled MgMn2O4 structures: each cell size is sampled once (within the atom
    limit), and structures the matcher tells apart are distinct types, the same type once."""
    formula = "MgMn2O4"
    records = [r for r in bundled_records if Composition(r.formula).reduced_formula == formula]
    cells = bench.target_cells({formula: records}, ChemicalSystem.parse("Mg-Mn-O"), None)
    sizes = sorted({len(r.species) for r in records})
    assert [sum(Composition(c).values()) for c in cells] == sizes
    small = bench.target_cells({formula: records}, ChemicalSystem.parse("Mg-Mn-O"), sizes[0])
    assert small == cells[:1]

    chosen = records[:12]
    twin = CrystalRecord.from_structure(chosen[0].to_structure().copy(), id="twin")
    types = bench.structure_types([*chosen, twin])
    assert types["twin"] == types[chosen[0].id]
    assert 1 < len(set(types.values())) <= len(chosen)
    symbol, size = types["twin"].rsplit("/", 1)
    primitive = chosen[0].to_structure().get_primitive_structure()
    assert int(size) == len(primitive) and symbol == space_group(primitive).symbol
