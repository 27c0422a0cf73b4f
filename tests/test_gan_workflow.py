"""compositions -> train -> sample through Snakemake on a tiny config, with a killed
training job that resumes from its checkpoints on the rerun."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

TINY = {
    "augment": {"per_composition": 2},
    "train": {
        "models": ["ccgan"],
        "device": "cpu",
        "threads": 1,
        "checkpoint_every": 5,
        "ccgan": {"latent_dim": 8, "channels": [8, 16, 8], "batch_size": 8, "critic_steps": 1},
    },
    "sample": {"target_set": "known", "max_targets": 2, "per_composition": 4},
}


def tiny_config(path: Path, steps: int) -> Path:
    """The repository's config.yaml with TINY merged over it (``-d`` elsewhere does not read
    the repository's own config.yaml)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, values in TINY.items():
        config[section].update(values)
    config["train"]["ccgan"] = {**TINY["train"]["ccgan"], "steps": steps}
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, config: Path, *targets: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
            "--configfile",
            str(config),
            "--cores",
            "2",
            *targets,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def training_pid(workdir: Path) -> int:
    """The ``python -m pipeline.stages.train`` process running in ``workdir`` (this test's job)."""
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and b"pipeline.stages.train" in (proc / "cmdline").read_bytes().split(b"\0")
                and os.path.realpath(proc / "cwd") == str(workdir.resolve())
            ):
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError("the training job is not running")


def test_killed_training_resumes_and_samples_are_written(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml", steps=100_000)
    checkpoints = tmp_path / "results" / "train" / "ccgan" / "checkpoints"

    # 1) Train "forever"; kill the training job once it has checkpointed twice.
    first = snakemake(tmp_path, config, "results/train/ccgan/model.pt")
    deadline = time.time() + 240
    while not (checkpoints / "step_10.pt").exists() and time.time() < deadline:
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.5)
    os.kill(training_pid(tmp_path), signal.SIGKILL)
    assert first.wait(timeout=60) != 0
    done = max(int(p.stem.split("_")[1]) for p in checkpoints.glob("step_*.pt"))
    assert done >= 10

    # 2) Rerun to a finite length: the job continues from the checkpoint, then sampling.
    tiny_config(config, steps=done + 5)
    second = snakemake(tmp_path, config)
    output = second.communicate(timeout=300)[0]
    assert second.returncode == 0, output
    log = (tmp_path / "logs" / "train" / "ccgan.log").read_text()
    assert f"at step {done}" in log
    losses = pd.read_csv(tmp_path / "results" / "train" / "ccgan" / "losses.csv")
    assert list(losses["step"]) == list(range(done + 5))
    assert (tmp_path / "results" / "train" / "ccgan" / "loss_curve.png").stat().st_size > 0

    targets = pd.read_csv(tmp_path / "results" / "compositions" / "targets.csv")
    report = pd.read_csv(tmp_path / "results" / "samples" / "ccgan" / "sample_report.csv")
    assert (
        report["composition"].tolist() == targets.loc[targets["selected"], "composition"].tolist()
    )
    assert (report["asked"] == 4).all() and (report["kept"] <= report["decoded"]).all()
    with gzip.open(tmp_path / "results" / "samples" / "ccgan" / "samples.json.gz", "rt") as f:
        samples = json.load(f)
    assert len(samples) == report["kept"].sum()
    # Something was kept, or the log says why nothing could be.
    sample_log = (tmp_path / "logs" / "sample" / "ccgan.log").read_text()
    assert report["kept"].sum() > 0 or "nothing kept:" in sample_log, sample_log[-2000:]
