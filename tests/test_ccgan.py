"""The composition-conditioned GAN: training, checkpoint/resume and sampling on tiny data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import DEFAULT_CAPS, REPO

from pipeline.chemsys import composition_label
from pipeline.formats import save_encoded
from pipeline.models import registry
from pipeline.models.base import SampleJob, TargetComposition, TrainJob
from pipeline.represent.pointcloud import PointCloudEncoding
from pipeline.represent.pointcloud_dataset import pointcloud_dataset

TINY = {"latent_dim": 8, "channels": [8, 16, 8], "batch_size": 8, "critic_steps": 2, "lr": 1e-3}
CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is fastest, and does not fight other jobs for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def encoded_file(records, mgmno, path: Path) -> Path:
    save_encoded(
        pointcloud_dataset(records, PointCloudEncoding.for_system(mgmno, DEFAULT_CAPS)), path
    )
    return path


@pytest.fixture(scope="module")
def tiny_data(bundled_records, mgmno, tmp_path_factory) -> Path:
    """48 structures of the four most common cell compositions."""
    common = [f for f, _ in Counter(r.formula for r in bundled_records).most_common(4)]
    records = [r for f in common for r in [x for x in bundled_records if x.formula == f][:12]]
    return encoded_file(records, mgmno, tmp_path_factory.mktemp("tiny") / "pointcloud.npz")


def train(data: Path, out_dir: Path, steps: int, checkpoint_every: int = 1000, **options):
    job = TrainJob(
        data=data,
        out_dir=out_dir,
        options={**TINY, **options, "steps": steps},
        seed=3,
        device=CPU,
        checkpoint_every=checkpoint_every,
    )
    registry.create("ccgan").train(job)
    return job


def test_training_reduces_the_classifier_loss(tiny_data, tmp_path):
    job = train(tiny_data, tmp_path, steps=40)
    losses = pd.read_csv(job.losses_path)
    assert list(losses["step"]) == list(range(40))
    assert np.isfinite(losses.drop(columns="step").to_numpy()).all()
    assert losses["class_real"].tail(5).mean() < 0.7 * losses["class_real"].head(5).mean()


def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(tiny_data, tmp_path):
    whole = train(tiny_data, tmp_path / "whole", steps=6, checkpoint_every=3)
    # The same run stopped after step 3, then started again with the full length.
    parts = train(tiny_data, tmp_path / "parts", steps=3, checkpoint_every=3)
    assert checkpoint_names(parts.checkpoint_dir) == ["step_3.pt"]
    train(tiny_data, tmp_path / "parts", steps=6, checkpoint_every=3)

    a = torch.load(whole.model_path, weights_only=False)
    b = torch.load(parts.model_path, weights_only=False)
    for net in ("generator", "classifier"):
        for key, tensor in a[net].items():
            assert torch.equal(tensor, b[net][key]), f"{net}.{key} differs after resuming"
    pd.testing.assert_frame_equal(pd.read_csv(whole.losses_path), pd.read_csv(parts.losses_path))


def test_changed_options_do_not_resume_another_run(tiny_data, tmp_path):
    train(tiny_data, tmp_path, steps=2, checkpoint_every=2)
    job = train(tiny_data, tmp_path, steps=3, checkpoint_every=3, lr=5e-4)
    assert len(pd.read_csv(job.losses_path)) == 3  # started again at step 0
    assert checkpoint_names(job.checkpoint_dir) == ["step_3.pt"]


def checkpoint_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("step_*.pt"))


@pytest.mark.slow
def test_sampling_returns_the_requested_composition(bundled_records, mgmno, tmp_path):
    label = "Mg2Mn2O4"
    records = [
        r
        for r in bundled_records
        if composition_label(mgmno.elements, [r.species.count(e) for e in mgmno.elements]) == label
    ][:40]
    data = encoded_file(records, mgmno, tmp_path / "one.npz")
    # One composition, small networks: ~600 steps put the atoms in the right slots for
    # about half of the draws.
    job = train(
        data,
        tmp_path / "train",
        steps=600,
        critic_steps=1,
        batch_size=16,
        channels=[16, 32, 16],
        random_condition_fraction=0.0,
    )
    target = TargetComposition(label, {"Mg": 2, "Mn": 2, "O": 4})
    sample = SampleJob(
        model_path=job.model_path,
        targets=[target],
        per_composition=64,
        options={},
        seed=0,
        device=CPU,
    )
    result = registry.create("ccgan").sample(sample)

    (report,) = result.reports
    assert (report.label, report.asked) == (label, 64)
    assert 0 < report.kept == len(result.records) <= report.decoded <= 64
    for record in result.records:
        assert Counter(record.species) == {"Mg": 2, "Mn": 2, "O": 4}
        assert record.source == "ccgan"
        assert record.to_structure().volume > 1.0
    # The latent seed reproduces the structure.
    again = registry.create("ccgan").sample(sample)
    assert [r.properties["latent_seed"] for r in again.records] == [
        r.properties["latent_seed"] for r in result.records
    ]
    assert np.allclose(again.records[0].frac_coords, result.records[0].frac_coords)


def test_undecodable_output_is_dropped_and_counted(tiny_data, tmp_path):
    job = train(tiny_data, tmp_path, steps=1)
    saved = torch.load(job.model_path, weights_only=False)
    for tensor in saved["generator"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    torch.save(saved, job.model_path)
    targets = [TargetComposition("Mg2Mn2O4", {"Mg": 2, "Mn": 2, "O": 4})]
    result = registry.create("ccgan").sample(
        SampleJob(job.model_path, targets, per_composition=5, options={}, seed=0, device=CPU)
    )
    assert result.records == []
    assert [(r.asked, r.decoded, r.kept) for r in result.reports] == [(5, 0, 0)]


def test_target_beyond_the_caps_is_an_input_error(tiny_data, tmp_path):
    job = train(tiny_data, tmp_path, steps=1)
    cli = [
        sys.executable,
        "-m",
        "pipeline.stages.sample",
        "--model",
        "ccgan",
        "--model-path",
        str(job.model_path),
        "--per-composition",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "s.json.gz"),
        "--out-report",
        str(tmp_path / "r.csv"),
    ]
    targets = tmp_path / "targets.csv"
    pd.DataFrame(
        [{"composition": "Mg9Mn1O10", "n_Mg": 9, "n_Mn": 1, "n_O": 10, "selected": True}]
    ).to_csv(targets, index=False)
    run = subprocess.run(
        cli + ["--targets", str(targets)], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: target Mg9Mn1O10")


@pytest.mark.slow
def test_killed_training_resumes_where_it_stopped(tiny_data, tmp_path):
    """SIGKILL the training CLI after its first checkpoints; the rerun continues from them."""
    out = tmp_path / "run"

    def cli(steps: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pipeline.stages.train",
            "--model",
            "ccgan",
            "--data",
            str(tiny_data),
            "--out-dir",
            str(out),
            "--options",
            json.dumps({**TINY, "steps": steps}),
            "--seed",
            "3",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--checkpoint-every",
            "5",
        ]

    process = subprocess.Popen(
        cli(100_000), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not (out / "checkpoints" / "step_10.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    steps_done = max(int(p.stem.split("_")[1]) for p in (out / "checkpoints").glob("step_*.pt"))
    assert steps_done >= 10 and not (out / "model.pt").exists()

    # Rerun, a little longer (the length is not part of the run's identity).
    rerun = subprocess.run(cli(steps_done + 3), cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"at step {steps_done}" in rerun.stdout
    losses = pd.read_csv(out / "losses.csv")
    assert list(losses["step"]) == list(range(steps_done + 3))
