"""Snakemake: the sharded relax rules, and a killed shard rerunning alone."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.records import read_records, write_records

TARGET = "results/screen/relax/chgnet/relaxed.json.gz"


def snakemake(repo, workdir, *extra):
    command = [
        sys.executable,
        "-m",
        "snakemake",
        TARGET,
        "-s",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--allowed-rules",
        "relax",
        "gather_relaxed",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@pytest.mark.workflow
def test_relax_shards_gather_and_a_killed_shard_reruns_alone(tmp_path, repo, reference_records):
    shutil.copy(repo / "config.yaml", tmp_path / "config.yaml")
    prescreened = [r for r in reference_records if r.id in ("MgO", "O2")]
    write_records(prescreened, tmp_path / "results/screen/prescreened.json.gz")
    snakemake(repo, tmp_path)

    relaxed = read_records(tmp_path / TARGET)
    assert [r.id for r in relaxed] == ["MgO", "O2"]
    assert all(r.provenance["potential"].startswith("chgnet") for r in relaxed)
    assert all("energy_per_atom" in r.properties for r in relaxed)
    status = pd.read_csv(tmp_path / "results/screen/relax/chgnet/relax_status.csv")
    assert status["status"].tolist() == ["ok", "ok"]

    # A shard killed before it wrote its output: it and the gather job run again,
    # the other shard does not.
    for path in (tmp_path / "results/screen/relax/chgnet").glob("shard_1.*"):
        path.unlink()
    (tmp_path / TARGET).unlink()
    plan = snakemake(repo, tmp_path, "--dry-run")
    jobs = plan[plan.index("Job stats") :].split("total")[0]
    assert "relax                 1" in jobs and "gather_relaxed        1" in jobs
    assert "shard_1.json.gz" in plan and "output: results/screen/relax/chgnet/shard_0" not in plan
