"""A CrysTens model through Snakemake: encode_crystens -> train -> sample on a tiny config."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from pipeline.formats import load_crystens
from pipeline.records import read_records

pytestmark = [pytest.mark.slow, pytest.mark.workflow]


def test_opt_in_crystens_gan_trains_and_samples(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["augment"]["per_composition"] = 2
    config["train"].update({"models": ["crystens_gan"], "device": "cpu", "threads": 1})
    config["train"]["crystens_gan"].update(
        {"steps": 300, "lr": 1.0e-3, "width": 4, "latent_dim": 16, "batch_size": 4}
    )
    config["sample"].update({"target_set": "known", "max_targets": 2, "per_composition": 2})
    config["sample"]["crystens_gan"].update({"batch_size": 32, "max_draws": 64})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))

    run = subprocess.run(
        [
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "tiny.yaml"),
            "--cores",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    results = tmp_path / "results"
    tensors = load_crystens(results / "encoded" / "crystens.npz")
    augmented = read_records(results / "augment" / "augmented.json.gz")
    assert tensors.x.shape == (len(augmented), 4, 64, 64)
    assert np.abs(tensors.x).max() <= 1.0
    assert (results / "train" / "crystens_gan" / "loss_curve.png").is_file()
    report = pd.read_csv(results / "samples" / "crystens_gan" / "sample_report.csv")
    assert list(report.columns) == ["composition", "asked", "decoded", "kept"]
    assert len(report) == 2 and (report["asked"] == 2).all()
    samples = read_records(results / "samples" / "crystens_gan" / "samples.json.gz")
    assert len(samples) == report["kept"].sum()
    assert all(
        r.source == "crystens_gan" and "crystens_var_coordinates" in r.properties for r in samples
    )
    log = (tmp_path / "logs" / "sample" / "crystens_gan.log").read_text()
    assert '"drawn": 64' in log or all(report["kept"] == 2)
    # Something was kept, or the log says why nothing could be: no draw decoded to a crystal
    # of a target's composition (the draws' summary lists what they decoded to instead).
    draws = json.loads(next(line for line in log.splitlines() if line.startswith('{"model"')))
    assert report["kept"].sum() > 0 or (
        (report["decoded"] == 0).all()
        and not set(report["composition"]) & set(draws["top_compositions"])
        and "nothing kept:" in log
    ), log[-2000:]
