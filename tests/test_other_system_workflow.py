"""The whole DAG on a chemical system other than Mg-Mn-O: a CIF folder and an overlay config."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from prototypes import LI_CO_O, SR_TI_O, write_cif_folder
from workflow_helpers import run_snakemake, tiny_config

from pipeline.records import read_records

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("srtio")
    cifs = write_cif_folder(workdir / "cifs", SR_TI_O)
    # Only what a user writes to switch system (plus the tiny budgets): no caps, no
    # oxidation states; the defaults' Mg and Mn entries must not get in the way.
    config = tiny_config(
        workdir / "overlay.yaml",
        chemsys="Sr-Ti-O",
        data={"source": "cif_dir", "cif_dir": str(cifs)},
        augment={"per_composition": 8},
        train={
            "models": ["graph_diffusion"],
            "graph_diffusion": {
                "steps": 60,
                "guide_steps": 0,
                "batch_size": 8,
                "hidden": 16,
                "layers": 2,
                "predictor_layers": 1,
                "timesteps": 20,
            },
        },
        sample={"max_targets": 2, "per_composition": 8},
        screen={
            "max_candidates": 4,
            "max_steps": 200,  # the tiny model's structures are far from a minimum
            "band_gap": {"predictor": "cgcnn", "min": 0.0, "max": 20.0},
            # windows wide open: every new relaxed candidate passes, so the export is tested
            "e_hull": {"metastable": 10.0, "synthesizable": 10.0},
            "pourbaix": {"max_delta_g": 10.0},
            "second_opinion": None,
        },
    )
    result = run_snakemake(workdir, config, timeout=1800)
    return workdir, result


def test_the_run_ends_in_candidates_and_dft_inputs(finished_run):
    workdir, result = finished_run
    assert "ignoring Mg, Mn (not in chemsys Sr-Ti-O)" in result.stderr
    candidates = pd.read_csv(workdir / "results/candidates.csv", dtype={"id": str})
    assert len(candidates) > 0
    assert {f for f in candidates["formula"]} <= {"SrTiO3", "Sr2TiO4"}
    exported = {p.name for p in (workdir / "results/dft_ready").iterdir() if p.is_dir()}
    assert exported == set(candidates.loc[candidates["passes"], "id"])
    # With the windows wide open, a relaxed candidate fails only by being no new structure.
    fails = candidates["failed"].fillna("")
    assert (fails.isin(["", "new"])).all(), candidates[["id", "failed"]]
    assert (candidates["passes"] == candidates["new"]).all()
    not_new = candidates[fails == "new"]
    assert (not_new["known_as"].notna() | not_new["duplicate_of"].notna()).all()
    for folder in exported:
        assert (workdir / "results/dft_ready" / folder / "POSCAR").is_file()
    compositions_log = (workdir / "logs/compositions.log").read_text()
    assert "oxidation states of Ti not configured: 4..4 from pymatgen" in compositions_log


def test_the_logs_name_the_references_built_and_taken_from_the_cifs(finished_run):
    workdir, _ = finished_run
    data_log = (workdir / "logs/fetch_data.log").read_text()
    assert "hull references from ase: Sr-ase-bulk-fcc, Ti-ase-bulk-hcp" in data_log
    assert "Sr2TiO4, SrO, SrTiO3, Ti2O3, TiO2" in data_log
    relaxed = read_records(workdir / "results/hull/chgnet/references_relaxed.json.gz")
    by_source = {}
    for record in relaxed:
        by_source.setdefault(record.source, set()).add(record.formula)
    assert by_source["ase"] == {"Sr1", "Ti2"}
    assert {"Sr1Ti1O3", "Sr1O1", "Ti2O4"} <= by_source["cif"]
    hull_log = (workdir / "logs/hull/chgnet/hull_references.log").read_text()
    assert '"ase": ["Sr1", "Ti2"]' in hull_log


def test_pourbaix_is_computed_or_explained_for_every_candidate(finished_run):
    workdir, _ = finished_run
    table = pd.read_csv(workdir / "results/screen/pourbaix.csv", keep_default_na=False)
    assert len(table) > 0
    for value, note in zip(table["delta_g_pbx"], table["pourbaix_note"]):
        assert (value != "" and math.isfinite(float(value))) or note.startswith("not computed")
    # Sr and Ti have ions in ASE's table and oxides in the free-energy table: computed, with
    # the caveat that no cited source has confirmed those oxides' rows yet.
    notes = set(table["pourbaix_note"])
    assert notes and all(n.startswith("computed with unverified free energies of") for n in notes)


def test_a_system_switch_on_the_command_line_alone_plans_the_whole_run(tmp_path):
    cifs = write_cif_folder(tmp_path / "cifs", LI_CO_O)
    result = run_snakemake(
        tmp_path,
        tiny_config(tmp_path / "tiny.yaml"),
        "--dry-run",
        # Snakemake's --config takes top-level keys only: a section is given as YAML.
        "--config",
        "chemsys=Li-Co-O",
        f"data={{source: cif_dir, cif_dir: {cifs}}}",
    )
    assert "encoding.max_atoms" not in result.stderr  # the default sets no caps
    assert "compositions.oxidation_states: ignoring Mg, Mn" in result.stderr
    assert "results/candidates.csv" in result.stdout + result.stderr
