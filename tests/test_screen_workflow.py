"""The properties, pourbaix, export and report rules through snakemake itself.

The upstream files (relaxed candidates, hull references and table, known-structure index,
validation table) are written in their pipeline formats from real CHGNet energies
(tests/screen_data.py); snakemake then runs the rules of this part of the DAG on them and
builds the HTML report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from screen_data import write_screen_inputs
from workflow_helpers import deep_merge, nested, planned_jobs, run_snakemake, tiny_config

from pipeline.records import read_records, write_records
from pipeline.symmetry import CRYSTAL_SYSTEMS, STRICT_SYMPREC, space_group

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

PLOTS = [
    "results/report/e_hull_histogram.png",
    "results/report/ternary_hull.png",
    "results/report/band_gap_vs_pourbaix.png",
    "results/report/lattice_parameters.png",
]
TARGETS = ["results/candidates.csv", *PLOTS]
# The rules under test; the files of the others (relaxed candidates, hull, validation, known
# structures) are the ones written above, taken as they are.
RULES = ["--allowed-rules", "properties", "pourbaix", "export", "report"]
# The consensus test also places the consensus potential's relaxations on its hull.
ALLOWED = ["ehull", "properties", "pourbaix", "export"]
# Offline and deterministic: CGCNN gaps (no model-hub check); the small screen has no second
# potential's energies.
CGCNN_GAPS = deep_merge(
    nested("screen.band_gap.predictor", "cgcnn"), nested("screen.second_opinion", None)
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("screen_wf")
    write_screen_inputs(workdir)
    config = tiny_config(workdir / "tiny.yaml", **CGCNN_GAPS)
    run_snakemake(workdir, config, *TARGETS, *RULES)
    return workdir, config


def test_the_rules_write_their_outputs(finished_run):
    workdir, _ = finished_run
    candidates = pd.read_csv(workdir / "results/candidates.csv", dtype={"id": str})
    exported = {p.name for p in (workdir / "results/dft_ready").iterdir() if p.is_dir()}
    assert exported == set(candidates.loc[candidates["passes"], "id"])
    assert exported  # the small screen has candidates inside every window
    for folder in exported:
        assert (workdir / "results/dft_ready" / folder / "POSCAR").is_file()
        assert (workdir / "results/dft_ready" / folder / "relax/INCAR").is_file()
    # The space group of every relaxed (and exported) structure.
    relaxed = read_records(workdir / "results/screen/relax/chgnet/relaxed.json.gz")
    groups = candidates.set_index("id")
    for record in relaxed:
        assert (
            groups.loc[record.id, "space_group_number"] == space_group(record.to_structure()).number
        )
        assert (
            groups.loc[record.id, "space_group_number_strict"]
            == space_group(record.to_structure(), STRICT_SYMPREC).number
        )
    assert set(groups["crystal_system"]) <= set(CRYSTAL_SYSTEMS)
    for plot in PLOTS:
        assert (workdir / plot).stat().st_size > 10_000
    assert "aqueous species from ase" in (workdir / "logs/pourbaix.log").read_text()


def test_the_report_collects_the_plots(finished_run):
    workdir, config = finished_run
    run_snakemake(workdir, config, *TARGETS, *RULES, "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    for plot in PLOTS:
        assert Path(plot).name in html


def test_a_pourbaix_threshold_change_reruns_export_and_plots_only(finished_run):
    workdir, _ = finished_run
    changed = tiny_config(
        workdir / "changed.yaml",
        **deep_merge(CGCNN_GAPS, nested("screen.pourbaix.max_delta_g", 0.3)),
    )
    assert set(planned_jobs(workdir, changed, *TARGETS, *RULES)) == {"export", "report"}


def test_consensus_changes_what_passes_and_what_is_exported(finished_run):
    """screen.consensus through the workflow: a consensus potential whose own relaxations put
    every candidate above the threshold leaves nothing to pass and nothing in dft_ready/."""
    workdir, _ = finished_run
    before = pd.read_csv(workdir / "results/candidates.csv", dtype={"id": str})
    assert before["passes"].any()
    # m3gnet's own relaxations of the candidates and its hull, as if measured: everything
    # 1 eV/atom less stable than CHGNet has it
    for path in (
        "results/screen/relax/chgnet/relaxed.json.gz",
        "results/hull/chgnet/references_relaxed.json.gz",
    ):
        records = read_records(workdir / path)
        if "relax/" in path:
            for record in records:
                record.properties["energy_per_atom"] += 1.0
        write_records(records, workdir / path.replace("chgnet", "m3gnet"))
    consensus = tiny_config(
        workdir / "consensus.yaml",
        **deep_merge(CGCNN_GAPS, nested("screen.consensus", ["m3gnet"])),
    )
    run_snakemake(
        workdir,
        consensus,
        "results/candidates.csv",
        "--allowed-rules",
        *ALLOWED,
        "--forcerun",
        "ehull",
    )
    after = pd.read_csv(workdir / "results/candidates.csv", dtype={"id": str})
    assert not after["passes"].any()
    assert after["failed"].str.contains("consensus:m3gnet").all()
    assert not [p for p in (workdir / "results/dft_ready").iterdir() if p.is_dir()]
    assert (after["e_above_hull_m3gnet_relaxed"] - after["e_above_hull"]).min() > 0.9
