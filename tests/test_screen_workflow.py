"""The properties, pourbaix, export and report rules through snakemake itself.

The upstream files (relaxed candidates, hull references and table, validation table) are
written in their pipeline formats from real CHGNet energies (tests/screen_data.py); snakemake
then runs the rules of this part of the DAG on them and builds the HTML report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO
from screen_data import write_screen_inputs

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

PLOTS = ["results/report/e_hull_histogram.png", "results/report/ternary_hull.png",
         "results/report/band_gap_vs_pourbaix.png", "results/report/lattice_parameters.png"]
TARGETS = ["results/candidates.csv", "results/data/composition_distribution.png", *PLOTS]
# Offline and deterministic: CGCNN gaps (the hub check is skipped).
OVERRIDES = {"screen": {"band_gap": {"predictor": "cgcnn"}}}


def snakemake(workdir: Path, *args: str, overrides: dict = OVERRIDES):
    configfile = workdir / "test.yaml"
    configfile.write_text(yaml.safe_dump(overrides))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
               str(workdir), "--configfile", str(REPO / "config.yaml"), str(configfile),
               "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("screen_wf")
    write_screen_inputs(workdir)
    result = snakemake(workdir, *TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_the_rules_write_their_outputs(finished_run):
    candidates = pd.read_csv(finished_run / "results/candidates.csv", dtype={"id": str})
    exported = {p.name for p in (finished_run / "results/dft_ready").iterdir() if p.is_dir()}
    assert exported == set(candidates.loc[candidates["passes"], "id"])
    for plot in PLOTS:
        assert (finished_run / plot).stat().st_size > 10_000
    assert "aqueous species from ase" in (finished_run / "logs/pourbaix.log").read_text()


def test_the_report_collects_the_plots(finished_run):
    result = snakemake(finished_run, *TARGETS, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (finished_run / "report.html").read_text(errors="replace")
    for plot in PLOTS:
        assert Path(plot).name in html


def test_a_pourbaix_threshold_change_reruns_export_and_plots_only(finished_run):
    changed = {**OVERRIDES, "screen": {**OVERRIDES["screen"], "pourbaix": {"max_delta_g": 0.3}}}
    result = snakemake(finished_run, "-n", *TARGETS, "--quiet", "rules", overrides=changed)
    assert result.returncode == 0, result.stderr
    planned = {line.split()[0] for line in (result.stdout + result.stderr).splitlines()
               if len(line.split()) == 2 and line.split()[1].isdigit()
               and line.split()[0] != "total"}
    assert planned == {"export", "report_plots"}
