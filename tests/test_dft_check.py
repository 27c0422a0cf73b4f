"""The DFT check's parts that need no GPAW: MP's parameters, the cache key, MP2020, the hull."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure

from pipeline.dft.cache import DftCache, calculation_key, ship
from pipeline.dft.check import Calculation, top_exported, verdict, write_dft_check
from pipeline.dft.corrections import mp2020_entry
from pipeline.dft.gpaw_calc import DftEnergy, DftSettings, gpaw_cell, kpoint_mesh
from pipeline.dft.hull import Phase, e_above_hull, reference_ids
from pipeline.dft.mp_inputs import mp_parameters
from pipeline.dft.verdicts import join_verdicts, read_verdicts
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, read_records
from pipeline.screen.criteria import Criteria

SHIPPED_HULL = Path(__file__).resolve().parent.parent / "resources/hull"

# The verdict thresholds the assertions are written for.
CRITERIA = dataclasses.replace(Criteria.default(), synthesizable=0.08, metastable=0.2)


def rocksalt(a: float, cation: str) -> Structure:
    return Structure(Lattice.cubic(a), [cation, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def chgnet_hull() -> list[CrystalRecord]:
    """The shipped CHGNet hull of the bundled Mg-Mn-O set (references and polymorphs)."""
    return read_records(SHIPPED_HULL / "mgmno_kim2020_chgnet-0.3.0.json.gz")


def result(energy: float, natoms: int, converged: bool = True) -> DftEnergy:
    return DftEnergy(energy, natoms, 0.0, 10, converged, (2, 2, 2), 1.0, 1.0)


# --- the Materials Project's parameters -----------------------------------------------------


def test_mp_parameters_put_u_on_manganese_of_an_oxide_only():
    oxide = mp_parameters(rocksalt(4.44, "Mn"))
    assert oxide.hubbards == {"Mn": 3.9} and oxide.hubbard[0].shell == "d"
    assert oxide.run_type == "GGA+U" and oxide.magmoms == (5.0, 0.6)
    magnesia = mp_parameters(rocksalt(4.21, "Mg"))
    assert magnesia.hubbards == {} and magnesia.run_type == "GGA"
    metal = mp_parameters(Structure(Lattice.cubic(2.9), ["Mn", "Mn"], [[0, 0, 0], [0.5] * 3]))
    assert metal.hubbards == {} and metal.magmoms == (5.0, 5.0)


def test_kpoint_density_gives_more_points_along_shorter_cell_vectors():
    structure = Structure(Lattice.orthorhombic(3.0, 6.0, 12.0), ["Mg", "O"], [[0] * 3, [0.5] * 3])
    settings = dataclasses.replace(DftSettings(), kpoint_density=2.0)
    mesh = kpoint_mesh(structure, mp_parameters(structure), settings)
    assert mesh == (5, 3, 2)  # ceil(2.0 * 2π / a) per axis
    mp_mesh = dataclasses.replace(settings, kpoint_density=None)
    assert kpoint_mesh(structure, mp_parameters(structure), mp_mesh) == (
        mp_parameters(structure).kpoint_mesh
    )


# --- the cache ------------------------------------------------------------------------------


def test_a_skewed_cell_is_reduced_for_gpaw_and_a_reasonable_one_is_left_alone():
    rock_salt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0] * 3, [0.5] * 3]
    )
    primitive = rock_salt.get_primitive_structure()  # 60° angles: GPAW takes them
    assert gpaw_cell(primitive) is primitive
    skewed = primitive.copy()
    skewed.make_supercell([[1, 0, 0], [3, 1, 0], [0, 0, 1]])  # unimodular: the same crystal
    assert not all(40 < a < 140 for a in skewed.lattice.angles)
    reduced = gpaw_cell(skewed)
    assert all(40 < a < 140 for a in reduced.lattice.angles)
    assert [s.specie.symbol for s in reduced] == [s.specie.symbol for s in skewed]
    assert reduced.volume == pytest.approx(skewed.volume)
    assert StructureMatcher().fit(reduced, primitive)


def test_cache_key_follows_structure_and_settings_not_the_cell_image():
    structure = rocksalt(4.21, "Mg")
    parameters = mp_parameters(structure)
    settings = DftSettings()
    key = calculation_key(structure, parameters, settings)
    shifted = structure.copy()
    shifted.translate_sites([1], [1.0, 0.0, -1.0])  # the same crystal, another image
    assert calculation_key(shifted, parameters, settings) == key
    moved = structure.copy()
    moved.translate_sites([1], [0.01, 0.0, 0.0])
    assert calculation_key(moved, parameters, settings) != key
    assert calculation_key(structure, parameters, dataclasses.replace(settings, ecut=400)) != key
    # the basis is an LCAO setting: it does not change a plane-wave calculation
    assert calculation_key(structure, parameters, dataclasses.replace(settings, basis="sz")) == key
    assert calculation_key(structure, parameters, settings, {"gpaw": "0"}) != key


def test_cache_reads_its_own_folder_then_shipped_ones_and_recomputes_failures(tmp_path):
    structure = rocksalt(4.21, "Mg")
    parameters = mp_parameters(structure)
    settings = DftSettings()
    shipped = DftCache(tmp_path / "shipped")
    shipped.put("k1", "MgO", structure, parameters, settings, result(-12.0, 2))
    shipped.put("k2", "MgO", structure, parameters, settings, result(math.nan, 2, False))
    cache = DftCache(tmp_path / "run", shipped=[tmp_path / "shipped"])
    assert cache.get("k1").energy == -12.0 and cache.get("k1").kpoint_mesh == (2, 2, 2)
    assert cache.get("k2") is None  # a failed SCF is tried again
    assert cache.get("k3") is None
    cache.put("k1", "MgO", structure, parameters, settings, result(-12.5, 2))
    assert cache.get("k1").energy == -12.5  # the own folder first
    assert not (tmp_path / "run" / "k2.json").exists()


def test_ship_copies_converged_calculations_of_the_named_phases_only(tmp_path):
    structure = rocksalt(4.21, "Mg")
    parameters, settings = mp_parameters(structure), DftSettings()
    cache = DftCache(tmp_path / "run")
    cache.put("a", "MgO", structure, parameters, settings, result(-12.0, 2))
    cache.put("b", "candidate", structure, parameters, settings, result(-11.0, 2))
    cache.put("c", "MnO", structure, parameters, settings, result(math.nan, 2, False))
    source = tmp_path / "phases.json.gz"
    source.write_bytes(b"structures")
    copied = ship(tmp_path / "run", {"MgO", "MnO"}, tmp_path / "shipped", source, "cmd")
    assert [p.name for p in copied] == ["a.json"]
    provenance = json.loads((tmp_path / "shipped" / "provenance.json").read_text())
    assert [e["name"] for e in provenance["entries"]] == ["MgO"]
    assert provenance["command"] == "cmd" and len(provenance["structures_sha256"]) == 64
    assert DftCache(tmp_path / "empty", [tmp_path / "shipped"]).get("a").energy == -12.0


# --- MP2020 ----------------------------------------------------------------------------------


def test_mp2020_corrects_the_oxide_and_the_u_metal_but_not_a_gga_metal():
    mno = rocksalt(4.44, "Mn")
    entry = mp2020_entry(mno, -17.0, mp_parameters(mno), "MnO")
    names = {a.name for a in entry.energy_adjustments}
    assert any("oxide" in n for n in names) and any("Mn" in n for n in names)
    assert entry.correction < 0
    mgo = rocksalt(4.21, "Mg")
    names = {a.name for a in mp2020_entry(mgo, -12.0, mp_parameters(mgo), "MgO").energy_adjustments}
    assert any("oxide" in n for n in names) and not any("mixing" in n for n in names)
    metal = Structure(Lattice.cubic(2.9), ["Mn", "Mn"], [[0, 0, 0], [0.5] * 3])
    assert mp2020_entry(metal, -18.0, mp_parameters(metal), "Mn").correction == 0


# --- the hull --------------------------------------------------------------------------------


def test_e_above_hull_matches_pymatgen_on_the_shipped_hull(chgnet_hull):
    phases = [
        Phase(r.id, Composition(r.formula), r.properties["energy_per_atom"]) for r in chgnet_hull
    ]
    diagram = PhaseDiagram(
        [
            PDEntry(p.composition, p.energy_per_atom * p.composition.num_atoms, p.name)
            for p in phases
        ]
    )
    for phase in [p for p, r in zip(phases, chgnet_hull) if r.source != "reference"][:30]:
        expected = diagram.get_e_above_hull(
            PDEntry(phase.composition, phase.energy_per_atom * phase.composition.num_atoms),
            allow_negative=True,
        )
        # leaving the phase itself out, the stable ones lie below (or on) the others' hull
        got = e_above_hull(phase, phases)
        assert got.e_above_hull == pytest.approx(expected, abs=1e-6) or (
            expected == pytest.approx(0, abs=1e-9) and got.e_above_hull <= 1e-9
        )
        assert sum(got.decomposition.values()) == pytest.approx(1.0)


def test_e_above_hull_needs_references_that_make_the_composition():
    mgo = Phase("MgO", Composition("MgO"), -6.0)
    with pytest.raises(PipelineInputError, match="cannot make"):
        e_above_hull(Phase("x", Composition("MgMn2O4"), -7.0), [mgo])


def test_the_chosen_references_reproduce_each_ml_e_hull(chgnet_hull):
    """What the check computes suffices: on the ML energies, E_hull among the chosen
    references equals E_hull on the complete ML hull, for every training polymorph."""
    full = PhaseDiagram(
        [
            PDEntry(Composition(r.formula), r.properties["energy_per_atom"] * r.natoms, r.id)
            for r in chgnet_hull
        ]
    )
    candidates = [r for r in chgnet_hull if r.source != "reference"][:30]
    needed = reference_ids(candidates, chgnet_hull)
    by_id = {r.id: r for r in chgnet_hull}
    for candidate in candidates:
        assert 1 <= len(needed[candidate.id]) <= 4
        refs = [
            Phase(i + "#ref", Composition(by_id[i].formula), by_id[i].properties["energy_per_atom"])
            for i in needed[candidate.id]
        ]
        phase = Phase(candidate.id, Composition(candidate.formula), 0.0)
        phase = dataclasses.replace(phase, energy_per_atom=candidate.properties["energy_per_atom"])
        expected = full.get_e_above_hull(
            PDEntry(phase.composition, phase.energy_per_atom * candidate.natoms),
            allow_negative=True,
        )
        assert e_above_hull(phase, refs).e_above_hull == pytest.approx(expected, abs=1e-6)


def test_the_lowest_polymorph_and_the_competing_phases_are_references(chgnet_hull):
    spinels = [r for r in chgnet_hull if Composition(r.formula).reduced_formula == "MgMn2O4"]
    lowest = min(spinels, key=lambda r: r.properties["energy_per_atom"])
    highest = max(spinels, key=lambda r: r.properties["energy_per_atom"])
    needed = reference_ids([highest, lowest], chgnet_hull)
    assert lowest.id in needed[highest.id]
    # the lowest spinel is on the ML hull: its competing phases are of other compositions
    by_id = {r.id: r for r in chgnet_hull}
    formulas = {Composition(by_id[i].formula).reduced_formula for i in needed[lowest.id]}
    assert "MgMn2O4" in formulas and len(formulas) >= 3


# --- the verdict ----------------------------------------------------------------------------


def calculation(name: str, formula_structure: Structure, energy_per_atom: float) -> Calculation:
    n = len(formula_structure)
    return Calculation(
        name, formula_structure, result(energy_per_atom * n, n), energy_per_atom, cached=True
    )


def test_verdict_compares_ml_and_dft_at_both_thresholds():
    structure = rocksalt(4.21, "Mg")
    reference = Phase("ref", Composition("MgO"), -6.0)
    thresholds = CRITERIA
    row = verdict(
        CrystalRecord.from_structure(structure, "c1"),
        0.05,
        calculation("c1", structure, -5.9),  # 0.1 eV/atom above the reference
        [reference],
        ["ref"],
        {},
        thresholds,
    )
    assert row.e_above_hull_dft == pytest.approx(0.1)
    assert not row.passes_dft and not row.dft_agrees and row.dft_agrees_metastable
    assert row.dft_decomposition == "1 ref" and row.dft_error == ""


def test_a_failed_reference_leaves_no_dft_verdict():
    structure = rocksalt(4.21, "Mg")
    row = verdict(
        CrystalRecord.from_structure(structure, "c1"),
        0.05,
        calculation("c1", structure, -5.9),
        [],
        ["ref"],
        {"ref": "SCF not converged"},
        CRITERIA,
    )
    assert math.isnan(row.e_above_hull_dft) and "ref: SCF not converged" in row.dft_error
    assert not row.passes_dft and not row.dft_agrees and not row.dft_agrees_metastable


def test_the_verdict_table_reads_back_as_written_and_joins_by_id(tmp_path):
    import pandas as pd

    structure = rocksalt(4.21, "Mg")
    reference = Phase("ref", Composition("MgO"), -6.0)
    rows = [
        verdict(
            CrystalRecord.from_structure(structure, name),
            ml,
            calculation(name, structure, energy),
            [reference],
            ["ref"],
            {},
            CRITERIA,
        )
        for name, ml, energy in (("007", 0.05, -5.95), ("c2", 0.05, -5.8))
    ]
    table = read_verdicts(write_dft_check(rows, tmp_path / "dft_check.csv"))
    assert table["id"].tolist() == ["007", "c2"]  # ids stay strings
    assert table["dft_agrees"].tolist() == [True, False]
    assert table["e_above_hull_dft"].tolist() == pytest.approx([0.05, 0.2])
    candidates = pd.DataFrame({"id": ["c2", "other", "007"], "e_above_hull": [0.05, 0.5, 0.05]})
    joined = join_verdicts(candidates, table)
    assert joined["id"].tolist() == ["c2", "other", "007"]  # the candidates' rows and order
    assert joined["dft_agrees"].tolist()[::2] == [False, True]
    assert pd.isna(joined.loc[1, "dft_agrees"]) and pd.isna(joined.loc[1, "e_above_hull_dft"])
    empty = read_verdicts(write_dft_check([], tmp_path / "empty.csv"))
    assert empty.empty and join_verdicts(candidates, empty)["e_above_hull_dft"].isna().all()


def test_check_cli_writes_an_empty_table_when_nothing_was_exported(tmp_path):
    import pandas as pd

    from pipeline.stages.dft_check import main

    candidates = tmp_path / "candidates.csv"
    pd.DataFrame({"id": ["a"], "e_above_hull": [0.3], "passes": [False]}).to_csv(candidates)
    out = tmp_path / "dft_check.csv"
    argv = ["check", "--candidates", str(candidates), "--relaxed", "none.json.gz"]
    argv += ["--hull-phases", "none.json.gz", "--cache", str(tmp_path / "c"), "--out", str(out)]
    argv += ["--criteria", "none.json"]  # read only when a candidate is checked
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert table.empty and {"id", "e_above_hull_dft", "dft_agrees"} <= set(table.columns)
    assert main([*argv, "--options", '{"mode": "planewave"}']) == 2  # one-line error


def test_top_exported_takes_the_first_passing_rows_in_rank_order():
    import pandas as pd

    table = pd.DataFrame({"id": ["a", "b", "c", "d"], "passes": [False, True, True, True]})
    assert top_exported(table, 2) == ["b", "c"]
    with pytest.raises(PipelineInputError):
        top_exported(table, 0)


# --- packaging ------------------------------------------------------------------------------


def test_gpaw_and_atomate2_are_extras_that_the_default_path_never_imports(repo):
    import subprocess
    import sys

    import tomllib

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    default = " ".join(project["dependencies"]).lower()
    assert not any(name in default for name in ("gpaw", "atomate2", "jobflow"))
    extras = project["optional-dependencies"]
    assert any(d.startswith("gpaw") for d in extras["dft"])
    assert any(d.startswith("atomate2") for d in extras["flows"])
    # the stage CLI and the library load without them: they are imported when used (ASE's
    # plugin mechanism imports the small gpaw.ase_plugin where GPAW is installed, not _gpaw)
    code = (
        "import sys, pipeline.stages.dft_check, pipeline.dft.check;"
        "print(sorted(m for m in ('_gpaw', 'atomate2', 'jobflow_remote') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
