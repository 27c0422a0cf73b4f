"""data -> augment -> encode_graph -> train -> sample for graph_diffusion through Snakemake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import run_snakemake, tiny_config

from pipeline.formats import load_graph_dataset
from pipeline.records import read_records

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

SAMPLES = "results/samples/graph_diffusion/samples.json.gz"


def test_graph_diffusion_runs_in_the_workflow(tmp_path):
    config = tiny_config(
        tmp_path,
        train={
            "models": ["graph_diffusion"],
            "device": "cpu",
            "threads": 1,
            "checkpoint_every": 5,
            "graph_diffusion": {
                "steps": 10,
                "batch_size": 8,
                "hidden": 16,
                "layers": 1,
                "predictor_layers": 1,
                "timesteps": 5,
                "guide_steps": 4,
            },
        },
        sample={
            "target_set": "known",
            "max_targets": 2,
            "per_composition": 3,
        },
    )
    workdir = tmp_path / "run"
    run_snakemake(workdir, config, SAMPLES)

    graphs = load_graph_dataset(workdir / "results/encoded/graph.npz")
    augmented = read_records(workdir / "results/augment/augmented.json.gz")
    assert len(graphs) == len(augmented)
    assert np.all(graphs.band_gap >= 0) and graphs.band_gap.std() > 0  # CGCNN's labels
    losses = pd.read_csv(workdir / "results/train/graph_diffusion/losses.csv")
    assert len(losses) == 14 and losses["coords"].iloc[10:].isna().all()  # 4 guide-only steps
    assert (workdir / "results/train/graph_diffusion/loss_curve.png").stat().st_size > 0

    report = pd.read_csv(workdir / "results/samples/graph_diffusion/sample_report.csv")
    samples = read_records(workdir / SAMPLES)
    assert list(report["asked"]) == [3, 3]
    assert len(samples) == report["kept"].sum() > 0
    assert {r.source for r in samples} == {"graph_diffusion"}
    assert {r.formula for r in samples} <= set(report["composition"])
