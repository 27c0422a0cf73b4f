"""The CrysTens models (DDPM, GAN, WGAN-GP): training, resuming, sampling, configuration.

Training runs on CPU with tiny networks on one composition of the bundled data
(Mg2Mn2O4, its 16 first structures).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.chemsys import ChemicalSystem
from pipeline.formats import save_crystens
from pipeline.models import crystens_ddpm, crystens_gan, registry
from pipeline.models.base import (
    SampleJob,
    TargetComposition,
    TrainJob,
    latent_seed,
    options_from_mapping,
)
from pipeline.models.crystens_sampling import sample_for_targets
from pipeline.models.model_files import load_model
from pipeline.models.training import seed_everything
from pipeline.represent import crystens
from pipeline.represent.crystens import crystens_dataset

ELEMENTS = ("Mg", "Mn", "O")
CPU = torch.device("cpu")
TINY_DDPM = {
    "channels": [8, 16],
    "attention": False,
    "timesteps": 100,
    "batch_size": 4,
    "prediction": "epsilon",
}
TINY_GAN = {"width": 4, "latent_dim": 16, "batch_size": 4}
CRYSTENS_MODELS = ("crystens_ddpm", "crystens_gan", "crystens_wgan")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny convolutions on a shared machine: one thread is many times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_composition(bundled_records):
    return [r for r in bundled_records if Counter(r.species) == {"Mg": 2, "Mn": 2, "O": 4}][:16]


@pytest.fixture(scope="module")
def crystens_npz(tmp_path_factory, one_composition) -> Path:
    path = tmp_path_factory.mktemp("crystens") / "crystens.npz"
    save_crystens(crystens_dataset(one_composition, ChemicalSystem.parse("Mg-Mn-O")), path)
    return path


def train_job(data: Path, out_dir: Path, options: dict, checkpoint_every: int = 1000) -> TrainJob:
    return TrainJob(
        data=data,
        out_dir=out_dir,
        options=options,
        seed=3,
        device=CPU,
        checkpoint_every=checkpoint_every,
    )


def target(records) -> TargetComposition:
    return TargetComposition("Mg2Mn2O4", dict(Counter(records[0].species)))


# ----------------------------------------------------------------------------- configuration


def test_registry_and_config_agree_with_the_models(repo):
    config = yaml.safe_load((repo / "config.yaml").read_text())
    assert not set(CRYSTENS_MODELS) & set(config["train"]["models"])  # opt-in only
    train_options = {
        "crystens_ddpm": crystens_ddpm.TrainOptions,
        "crystens_gan": crystens_gan.GANOptions,
        "crystens_wgan": crystens_gan.WGANOptions,
    }
    sample_options = {
        "crystens_ddpm": crystens_ddpm.SampleOptions,
        "crystens_gan": crystens_gan.SampleOptions,
        "crystens_wgan": crystens_gan.SampleOptions,
    }
    for name in CRYSTENS_MODELS:
        cls = registry.model_class(name)
        assert cls.name == name and cls.representation == "crystens"
        # config.yaml sets every option of each model (its one home; the WGAN's section
        # leaves out what it shares with crystens_gan's), and no unknown one.
        for section, options in (("train", train_options), ("sample", sample_options)):
            values = config[section][name]
            if name == "crystens_wgan":
                values = {**config[section]["crystens_gan"], **values}
            assert set(values) == {f.name for f in dataclasses.fields(options[name])}, name
            built = dataclasses.asdict(options_from_mapping(options[name], values, name))
            assert built == {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def test_bad_options_are_input_errors(crystens_npz, tmp_path):
    with pytest.raises(crystens.PipelineInputError, match="norm_groups"):
        crystens_ddpm.CrysTensDDPM().train(
            train_job(crystens_npz, tmp_path, {"channels": [12], "norm_groups": 8})
        )
    with pytest.raises(crystens.PipelineInputError, match="unknown options"):
        crystens_gan.CrysTensWGAN().train(train_job(crystens_npz, tmp_path, {"depth": 3}))


# ----------------------------------------------------------------------------- training


def test_ddpm_training_reduces_the_denoising_loss(crystens_npz, tmp_path):
    options = {**TINY_DDPM, "steps": 12, "lr": 3e-3}
    job = train_job(crystens_npz, tmp_path, options)
    x0 = torch.from_numpy(np.load(crystens_npz)["x"][:8])
    opts = crystens_ddpm.TrainOptions(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    )
    scheduler = crystens_ddpm.build_scheduler(opts)

    def fixed_loss(denoiser) -> float:
        torch.manual_seed(0)  # the same noise and steps before and after training
        with torch.no_grad():
            return crystens_ddpm.diffusion_loss(denoiser, scheduler, x0).item()

    seed_everything(job.seed)  # train() starts from exactly this initialisation
    before = fixed_loss(crystens_ddpm.Denoiser(opts))
    crystens_ddpm.CrysTensDDPM().train(job)
    trained = crystens_ddpm.Denoiser(opts)
    trained.load_state_dict(torch.load(job.model_path, weights_only=False)["denoiser"])
    assert fixed_loss(trained) < 0.8 * before
    losses = pd.read_csv(job.losses_path)
    assert list(losses.columns) == ["step", "denoising_mse"] and len(losses) == 12


@pytest.mark.parametrize("model", [crystens_gan.CrysTensGAN, crystens_gan.CrysTensWGAN])
def test_gan_training_reduces_the_discriminator_loss(model, crystens_npz, tmp_path):
    job = train_job(crystens_npz, tmp_path, {**TINY_GAN, "steps": 6, "lr": 1e-3})
    model().train(job)
    losses = pd.read_csv(job.losses_path)
    assert list(losses.columns) == ["step", "discriminator", "gradient_penalty", "generator"]
    assert losses["discriminator"].iloc[-2:].mean() < losses["discriminator"].iloc[:2].mean()
    assert (losses["gradient_penalty"] > 0).all() == model.wasserstein
    assert load_model(job.model_path, model.name).metadata["elements"] == ["Mg", "Mn", "O"]


@pytest.mark.parametrize(
    "model, options",
    [
        (crystens_gan.CrysTensWGAN, {**TINY_GAN, "critic_steps": 2}),
        (crystens_ddpm.CrysTensDDPM, TINY_DDPM),
    ],
)
def test_interrupted_training_resumes_to_the_same_model(model, options, crystens_npz, tmp_path):
    whole = train_job(crystens_npz, tmp_path / "whole", {**options, "steps": 4})
    model().train(whole)
    first = train_job(crystens_npz, tmp_path / "parts", {**options, "steps": 2}, checkpoint_every=2)
    model().train(first)  # as if the job died after its checkpoint at step 2
    model().train(train_job(crystens_npz, tmp_path / "parts", {**options, "steps": 4}))
    a = torch.load(whole.model_path, weights_only=False)
    b = torch.load(first.model_path, weights_only=False)
    key = "denoiser" if model is crystens_ddpm.CrysTensDDPM else "generator"
    for name, tensor in a[key].items():
        assert torch.equal(tensor, b[key][name]), name
    assert pd.read_csv(whole.losses_path).equals(pd.read_csv(first.losses_path))


# ----------------------------------------------------------------------------- sampling


def test_sampling_keeps_exactly_the_target_compositions(bundled_records, one_composition):
    """The filter, fed real tensors: structures of the target are kept, others counted."""
    pool = (
        one_composition[:3]
        + [r for r in bundled_records[:40] if Counter(r.species) != {"Mg": 2, "Mn": 2, "O": 4}][:5]
    )
    tensors = np.stack([crystens.normalize(crystens.encode(r)) for r in pool])
    tensors[-1] = 0.0  # a tensor without atoms: not decodable
    calls = []

    def generate(seeds):
        calls.append(len(seeds))
        start = sum(calls[:-1])
        return tensors[[(start + i) % len(tensors) for i in range(len(seeds))]]

    result = sample_for_targets(
        generate,
        ELEMENTS,
        [target(one_composition)],
        per_composition=2,
        model_name="crystens_test",
        seed=5,
        batch_size=3,
        max_draws=100,
    )
    assert calls == [3]  # stopped as soon as the target had its 2 structures
    assert [r.source for r in result.records] == ["crystens_test"] * 2
    assert all(Counter(r.species) == {"Mg": 2, "Mn": 2, "O": 4} for r in result.records)
    report = result.reports[0]
    assert (report.asked, report.decoded, report.kept) == (2, 3, 2)
    props = result.records[0].properties
    assert props["latent_seed"] == latent_seed(5, 0)
    assert props["crystens_var_lattice_lengths"] < 1e-10 and props["crystens_n_atoms"] == 8

    other = TargetComposition("MgO", {"Mg": 1, "O": 1})  # never generated: gives up at max_draws
    result = sample_for_targets(
        generate,
        ELEMENTS,
        [other],
        per_composition=1,
        model_name="crystens_test",
        seed=5,
        batch_size=4,
        max_draws=10,
    )
    assert sum(calls[1:]) == 10 and result.records == [] and result.reports[0].kept == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, train_options, sample_options",
    [
        (
            crystens_ddpm.CrysTensDDPM,
            {**TINY_DDPM, "steps": 60, "lr": 3e-3, "prediction": "sample"},
            {"sampling_steps": 10, "batch_size": 8, "max_draws": 8},
        ),
        (
            crystens_gan.CrysTensGAN,
            {**TINY_GAN, "steps": 500, "lr": 1e-3},
            {"batch_size": 16, "max_draws": 16},
        ),
        (
            crystens_gan.CrysTensWGAN,
            {**TINY_GAN, "steps": 80, "lr": 1e-3, "critic_steps": 2},
            {"batch_size": 16, "max_draws": 16},
        ),
    ],
)
def test_trained_models_sample_decodable_structures(
    model, train_options, sample_options, crystens_npz, one_composition, tmp_path
):
    job = train_job(crystens_npz, tmp_path, train_options)
    model().train(job)
    sample = SampleJob(
        model_path=job.model_path,
        targets=[target(one_composition)],
        per_composition=2,
        options=sample_options,
        seed=0,
        device=CPU,
    )
    opts = options_from_mapping(
        crystens_ddpm.SampleOptions
        if model is crystens_ddpm.CrysTensDDPM
        else crystens_gan.SampleOptions,
        sample_options,
        "test",
    )
    sampler_args = (opts,) if model is crystens_ddpm.CrysTensDDPM else ()
    generate, elements = model().tensor_sampler(job.model_path, *sampler_args, device=CPU)
    seeds = [latent_seed(0, i) for i in range(opts.max_draws)]
    tensors = generate(seeds)
    assert tensors.shape == (opts.max_draws, *crystens.SHAPE) and elements == ELEMENTS
    decoded = []
    for tensor in tensors:
        try:
            decoded.append(crystens.reconstruct(tensor, elements))
        except crystens.DecodeError:
            pass
    assert decoded, "no generated tensor decodes"
    for result in decoded:
        result.record.to_structure()  # a valid pymatgen structure
        assert result.quality.n_atoms == result.record.natoms
    # reproducible from the seeds alone, whatever the batch (up to float round-off)
    assert np.allclose(generate(seeds[:3]), tensors[:3], atol=1e-5)

    result = model().sample(sample)  # the sample stage's path: filtered to the target
    report = result.reports[0]
    assert report.asked == 2 and report.kept == min(report.decoded, 2) == len(result.records)
