"""A discovery round's fine-tune: the learned model continues from its previous round's weights
on the training set with the confirmed structures; a round that confirmed nothing, or a model
that learns nothing, keeps its model."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from pipeline.models import registry
from pipeline.models.base import TrainJob
from pipeline.models.model_files import load_model
from pipeline.models.wyckoff_diffusion import load_trained
from pipeline.records import write_records
from pipeline.stages import encode_wyckoff
from pipeline.stages.finetune import main as finetune_main

CPU = torch.device("cpu")
TINY = {"batch_size": 8, "hidden": 16, "layers": 1, "timesteps": 10, "lr": 1e-3}


def encode(records, folder):
    folder.mkdir(parents=True, exist_ok=True)
    write_records(records, folder / "dataset.json.gz")
    argv = ["--dataset", str(folder / "dataset.json.gz"), "--chemsys", "Mg-Mn-O"]
    assert encode_wyckoff.main([*argv, "--symprec", "0.1", "--out", str(folder / "w.npz")]) == 0
    return folder / "w.npz"


@pytest.fixture(scope="module")
def parent(bundled_records, tmp_path_factory):
    """A tiny wyckoff_diffusion trained 20 steps on 24 small bundled structures; 3 others
    stand for what a round confirmed."""
    root = tmp_path_factory.mktemp("finetune")
    small = [r for r in bundled_records if r.natoms <= 12]
    training, confirmed = small[:24], small[100:103]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    job = TrainJob(
        encode(training, root / "round_1"), root / "train", {**TINY, "steps": 20}, 0, CPU, 100
    )
    registry.create("wyckoff_diffusion").train(job)
    torch.set_num_threads(threads)
    write_records(confirmed, root / "confirmed.json.gz")
    write_records([], root / "nothing.json.gz")
    data = encode([*training, *confirmed], root / "round_2")
    return {"root": root, "model": job.model_path, "data": data, "confirmed": confirmed}


def run(parent, out, confirmed="confirmed.json.gz", model="wyckoff_diffusion", steps=5):
    argv = ["--model", model, "--parent", str(parent["model"]), "--data", str(parent["data"])]
    argv += ["--confirmed", str(parent["root"] / confirmed), "--steps", str(steps)]
    argv += ["--seed", "3", "--device", "cpu", "--threads", "1", "--out-dir", str(out)]
    assert finetune_main(argv) == 0
    return out / "model.pt"


def distance(a: dict, b: dict) -> float:
    return sum(float((a[k].float() - b[k].float()).norm()) for k in a if "denoiser" in k)


def test_a_learned_model_continues_from_its_previous_round(parent, tmp_path):
    tuned = run(parent, tmp_path / "tuned")
    saved = load_model(tuned, "wyckoff_diffusion")
    assert saved.options["steps"] == 5
    assert len(pd.read_csv(tmp_path / "tuned/losses.csv")) == 5
    # the confirmed structures are the new model's training crystals too (templates, parents)
    crystals = {c.id for c in load_trained(tuned, CPU).parents}
    assert {r.id for r in parent["confirmed"]} <= crystals
    # started from the previous round's weights: 5 small steps away from them, far from a
    # fresh start on the same data
    previous = load_model(parent["model"], "wyckoff_diffusion").tensors["state"]
    fresh_job = TrainJob(parent["data"], tmp_path / "fresh", {**TINY, "steps": 5}, 3, CPU, 100)
    registry.create("wyckoff_diffusion").train(fresh_job)
    fresh = load_model(fresh_job.model_path, "wyckoff_diffusion").tensors["state"]
    tuned_state = saved.tensors["state"]
    assert 0 < distance(tuned_state, previous) < 0.2 * distance(fresh, previous)
    # the same lattice scaling as before (a buffer of the state)
    assert torch.equal(tuned_state["scaler.stats"], previous["scaler.stats"])


def test_nothing_confirmed_or_nothing_to_learn_keeps_the_model(parent, tmp_path):
    kept = run(parent, tmp_path / "kept", confirmed="nothing.json.gz")
    assert kept.read_bytes() == parent["model"].read_bytes()
    assert len(pd.read_csv(tmp_path / "kept/losses.csv")) == 0
    zero = run(parent, tmp_path / "zero", steps=0)
    assert zero.read_bytes() == parent["model"].read_bytes()
