"""The graph equivariant diffusion model: equivariance, training, resuming, sampling,
interpolation and band-gap steering, on a small bundled set on CPU."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch

from pipeline.errors import PipelineInputError
from pipeline.formats import load_graph_dataset, save_graph_dataset
from pipeline.models import registry
from pipeline.models.base import SampleJob, TargetComposition, TrainJob, options_from_mapping
from pipeline.models.graph_diffusion import (
    CrystalDiffusion,
    LatticeScaler,
    SampleOptions,
    TrainOptions,
    continues,
    interpolate_crystals,
    load_trained,
    training_graphs,
)
from pipeline.represent.graph import graph_dataset
from pipeline.screen.validity import min_interatomic_distance

CPU = torch.device("cpu")
# Small enough for a few seconds of CPU training.
TINY = {
    "batch_size": 8,
    "hidden": 32,
    "layers": 2,
    "predictor_layers": 1,
    "timesteps": 10,
    "lr": 2e-3,
    "guide_steps": 0,
}
TRAINED_STEPS = 150
GUIDANCE = 20.0
MGMNO3 = TargetComposition("Mg1Mn1O3", {"Mg": 1, "Mn": 1, "O": 3})


@contextmanager
def one_thread():
    """Small graphs: one thread is fastest (several fight over the shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_thread_per_test():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def graph_data(bundled_records, mgmno, tmp_path_factory):
    """64 bundled crystals of at most 12 atoms. Their "band gap" labels are the volume per
    atom / 5 Å^3: a structural property that the predictor learns in a few steps and that
    guidance can steer, without running CGCNN here (the teacher is tested elsewhere)."""
    records = [r for r in bundled_records if r.natoms <= 12][:64]
    gaps = np.array([volume_per_atom(r) / 5.0 for r in records])
    path = tmp_path_factory.mktemp("graph") / "graph.npz"
    save_graph_dataset(graph_dataset(records, mgmno, gaps), path)
    return path


def volume_per_atom(record) -> float:
    return record.to_structure().volume / record.natoms


def train(path, out_dir, steps, checkpoint_every=1000, seed=0, **options):
    model = registry.create("graph_diffusion")
    with one_thread():  # also in session fixtures, which start before the autouse one
        model.train(
            TrainJob(
                data=path,
                out_dir=out_dir,
                options={**TINY, "steps": steps, **options},
                seed=seed,
                device=CPU,
                checkpoint_every=checkpoint_every,
            )
        )
    return out_dir / "model.pt"


@pytest.fixture(scope="session")
def trained(graph_data, tmp_path_factory):
    return train(graph_data, tmp_path_factory.mktemp("trained"), steps=TRAINED_STEPS)


def fixed_noise_losses(model_path, graph_data) -> dict[str, float]:
    """The loss terms on the first 32 crystals, averaged over 8 fixed draws of t and noise."""
    model, _ = load_trained(model_path, CPU)
    batch = Batch.from_data_list(training_graphs(load_graph_dataset(graph_data))[:32])
    torch.manual_seed(123)
    with torch.no_grad():
        draws = [model.losses(batch) for _ in range(8)]
    return {k: float(np.mean([d[k].item() for d in draws])) for k in draws[0]}


def rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(
        torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    )
    return q.float()


def test_registered_with_every_option_in_the_config(repo):
    """config.yaml sets every option of the model, and no other; the options check their
    values, and closeness is no sampling option (the screen judges it)."""
    import yaml

    assert registry.representation("graph_diffusion") == "graph"
    config = yaml.safe_load((repo / "config.yaml").read_text())
    for section, cls in (("train", TrainOptions), ("sample", SampleOptions)):
        values = config[section]["graph_diffusion"]
        assert set(values) == {f.name for f in dataclasses.fields(cls)}, section
        assert dataclasses.asdict(options_from_mapping(cls, values, section)) == values
    with pytest.raises(PipelineInputError, match="unknown options.*min_distance"):
        options_from_mapping(SampleOptions, {"min_distance": 0.5}, "sample.graph_diffusion")
    with pytest.raises(PipelineInputError, match="sigma_min < sigma_max"):
        options_from_mapping(TrainOptions, {"sigma_min": 0.6}, "train.graph_diffusion")
    with pytest.raises(PipelineInputError, match="latent"):
        options_from_mapping(SampleOptions, {"latent": "slerp"}, "sample.graph_diffusion")


def test_denoiser_is_equivariant(graph_data):
    """Rotating a crystal's Cartesian frame or translating its atoms changes neither the
    fractional-coordinate scores nor the lattice noise; swapping atoms swaps their scores."""
    batch = Batch.from_data_list(training_graphs(load_graph_dataset(graph_data))[:4])
    torch.manual_seed(0)
    model = CrystalDiffusion(
        3, TrainOptions(**TINY), LatticeScaler.fit(batch.lattice.double(), torch.diff(batch.ptr))
    )
    t, z = torch.tensor([0.3, 0.5, 0.7, 0.9]), torch.randn(4, 6)

    def outputs(frac=batch.frac_coords, lattices=batch.lattice, species=batch.species):
        with torch.no_grad():
            return model.denoiser(species, frac, lattices, z, t, batch.batch, batch.ptr)

    score, eps = outputs()
    assert score.abs().sum() > 0
    for other_score, other_eps in [
        outputs(lattices=batch.lattice @ rotation(1).T),
        outputs(frac=(batch.frac_coords + torch.tensor([0.31, -0.12, 0.57])) % 1.0),
    ]:
        assert torch.allclose(score, other_score, atol=1e-5)
        assert torch.allclose(eps, other_eps, atol=1e-5)
    order = torch.arange(len(batch.species))
    order[[0, 1]] = order[[1, 0]]
    swapped_score, swapped_eps = outputs(
        frac=batch.frac_coords[order], species=batch.species[order]
    )
    assert torch.allclose(score[order], swapped_score, atol=1e-5)
    assert torch.allclose(eps, swapped_eps, atol=1e-5)


@pytest.mark.slow
def test_training_reduces_the_loss(graph_data, trained, tmp_path):
    before = fixed_noise_losses(train(graph_data, tmp_path, steps=1), graph_data)
    after = fixed_noise_losses(trained, graph_data)
    losses = pd.read_csv(trained.parent / "losses.csv")
    assert list(losses.columns) == ["step", "coords", "lattice", "band_gap"]
    assert len(losses) == TRAINED_STEPS
    # The lattice noise and the band gap are learnt fast; the coordinate scores slowly (the
    # small-noise steps need the clean crystal recognised), but they improve too.
    for term in ("coords", "lattice", "band_gap"):
        assert after[term] < before[term], (term, before, after)
    assert sum(after.values()) < 0.85 * sum(before.values()), (before, after)


def test_resume_equals_an_uninterrupted_run(graph_data, tmp_path):
    whole = torch.load(train(graph_data, tmp_path / "whole", steps=6), weights_only=False)
    train(graph_data, tmp_path / "parts", steps=3, checkpoint_every=3)
    resumed = torch.load(
        train(graph_data, tmp_path / "parts", steps=6, checkpoint_every=3), weights_only=False
    )
    for key, value in whole["state"].items():
        assert torch.equal(value, resumed["state"][key]), key
    assert len(pd.read_csv(tmp_path / "parts" / "losses.csv")) == 6


def test_guide_steps_train_the_predictor_alone(graph_data, tmp_path):
    """After ``steps`` joint steps, ``guide_steps`` steps change the band-gap predictor and
    leave the denoiser as the joint steps left it."""
    joint = torch.load(train(graph_data, tmp_path / "joint", steps=2), weights_only=False)
    guided = train(graph_data, tmp_path / "guided", steps=2, guide_steps=3)
    state = torch.load(guided, weights_only=False)["state"]
    for key, value in joint["state"].items():
        if not key.startswith("predictor."):
            assert torch.equal(value, state[key]), key
    assert any(
        not torch.equal(value, state[key])
        for key, value in joint["state"].items()
        if key.startswith("predictor.")
    )
    losses = pd.read_csv(guided.parent / "losses.csv")
    assert len(losses) == 5
    assert losses["coords"].iloc[:2].notna().all() and losses["coords"].iloc[2:].isna().all()
    assert losses["band_gap"].notna().all()


def test_guide_steps_resume_and_restart(graph_data, tmp_path):
    """A joint-only run continued with guide steps, and a run stopped in its guide phase,
    end at the uninterrupted run's model; a change of ``steps`` after guide steps began
    starts afresh, to the model a fresh run trains."""

    def state(path):
        return torch.load(path, weights_only=False)["state"]

    def assert_same(a, b):
        for key, value in a.items():
            assert torch.equal(value, b[key]), key

    whole = state(train(graph_data, tmp_path / "whole", steps=2, guide_steps=3))
    train(graph_data, tmp_path / "parts", steps=2, guide_steps=0, checkpoint_every=1)
    train(graph_data, tmp_path / "parts", steps=2, guide_steps=1, checkpoint_every=1)
    assert_same(
        whole,
        state(train(graph_data, tmp_path / "parts", steps=2, guide_steps=3, checkpoint_every=1)),
    )
    assert len(pd.read_csv(tmp_path / "parts" / "losses.csv")) == 5
    fresh = state(train(graph_data, tmp_path / "fresh", steps=3, guide_steps=1))
    assert_same(fresh, state(train(graph_data, tmp_path / "parts", steps=3, guide_steps=1)))
    assert len(pd.read_csv(tmp_path / "parts" / "losses.csv")) == 4


@pytest.mark.parametrize(
    "step, joint_steps, steps, expected",
    [
        (8, 10, 20, True),  # stopped in the joint phase: more joint steps continue it
        (10, 10, 10, True),  # joint phase done: guide steps may follow
        (15, 10, 10, True),  # in the guide phase: same joint steps, any guide steps
        (15, 10, 20, False),  # guide steps taken where the new run wants joint ones
        (10, 10, 5, False),  # more joint steps taken than the new run has
    ],
)
def test_which_checkpoints_continue_a_run(step, joint_steps, steps, expected):
    opts = TrainOptions(**{**TINY, "steps": steps, "guide_steps": 5})
    assert continues({"step": step, "joint_steps": joint_steps}, opts) is expected


def sample(model_path, targets=(MGMNO3,), per_composition=6, seed=0, **options):
    model = registry.create("graph_diffusion")
    return model.sample(
        SampleJob(
            model_path=model_path,
            targets=list(targets),
            per_composition=per_composition,
            options=options,
            seed=seed,
            device=CPU,
        )
    )


def test_sampling_returns_decodable_structures_of_the_target(trained):
    target = TargetComposition("Mg2Mn2O6", {"Mg": 2, "Mn": 2, "O": 6})
    result = sample(trained, targets=(MGMNO3, target), per_composition=4)
    assert [(r.label, r.asked) for r in result.reports] == [("Mg1Mn1O3", 4), ("Mg2Mn2O6", 4)]
    assert all(r.decoded == r.kept == 4 for r in result.reports)
    assert sorted({r.formula for r in result.records}) == ["Mg1Mn1O3", "Mg2Mn2O6"]
    for record in result.records:
        structure = record.to_structure()  # a valid pymatgen structure
        assert structure.volume > len(structure)
        assert np.all((np.asarray(record.frac_coords) >= 0) & (np.asarray(record.frac_coords) < 1))
        assert record.source == "graph_diffusion"
        assert {"latent_seed", "predicted_band_gap"} <= set(record.properties)


def test_a_structure_depends_on_its_seed_only(trained):
    small = sample(trained, per_composition=2, batch_size=1).records
    large = sample(trained, per_composition=3, batch_size=3).records
    assert np.allclose(small[0].frac_coords, large[0].frac_coords, atol=1e-5)
    assert np.allclose(small[1].lattice, large[1].lattice, atol=1e-4)
    assert not np.allclose(small[0].frac_coords, small[1].frac_coords, atol=1e-3)


def test_close_contacts_are_handed_over(trained, graph_data, tmp_path):
    """A barely trained model places atoms too close; its samples are handed over all the
    same (the screen's validate stage rejects them, for every model alike)."""
    untrained = train(graph_data, tmp_path, steps=1)
    result = sample(untrained, per_composition=8)
    (report,) = result.reports
    assert report.asked == report.decoded == report.kept == len(result.records) == 8
    assert any(min_interatomic_distance(r.to_structure()) < 0.5 for r in result.records)


def test_interpolation_between_two_noise_draws(trained):
    records = sample(trained, per_composition=5, latent="interpolate").records
    assert [r.properties["latent_t"] for r in records] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len({r.properties["latent_seed_end"] for r in records}) == 1


def test_interpolation_between_two_crystals(trained, graph_data):
    records = load_graph_dataset(graph_data).records()
    by_formula: dict[str, list] = {}
    for record in records:
        by_formula.setdefault(record.formula, []).append(record)
    a, b = next(group[:2] for group in by_formula.values() if len(group) >= 2)
    path = interpolate_crystals(trained, a, b, n=4, t_start=5)
    assert len(path) == 4
    assert all(sorted(r.species) == sorted(a.species) for r in path)
    assert [r.properties["latent_t"] for r in path] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    other = next(r for r in records if sorted(r.species) != sorted(a.species))
    with pytest.raises(PipelineInputError, match="composition"):
        interpolate_crystals(trained, a, other, n=2, t_start=5)


def test_guidance_moves_the_guide_prediction_away_from_the_unguided_one(trained):
    """The same seeds with and without guidance: towards a high target the guide's own
    prediction for a sample rises above that of the unguided sample, towards a low one it
    falls below (a wrong sign or a guidance too weak to matter fails this)."""

    def predicted(**options):
        records = sample(trained, per_composition=8, **options).records
        assert len(records) == 8
        return (
            np.array([r.properties["predicted_band_gap"] for r in records]),
            np.array([volume_per_atom(r) for r in records]),
        )

    unguided_gap, unguided_volume = predicted()
    low_gap, low_volume = predicted(target_band_gap=0.0, guidance_scale=GUIDANCE)
    high_gap, high_volume = predicted(target_band_gap=6.0, guidance_scale=GUIDANCE)
    assert low_gap.mean() < unguided_gap.mean() - 0.1
    assert high_gap.mean() > unguided_gap.mean() + 0.1
    assert np.mean(low_gap < unguided_gap) >= 0.75 and np.mean(high_gap > unguided_gap) >= 0.75
    # The labels are volumes per atom: steering towards a larger "gap" makes larger cells.
    assert low_volume.mean() < unguided_volume.mean() < high_volume.mean()


def test_unknown_options_and_foreign_targets_are_input_errors(trained):
    with pytest.raises(PipelineInputError, match="unknown options"):
        sample(trained, temperature=2.0)
    with pytest.raises(PipelineInputError, match="Fe"):
        sample(trained, targets=(TargetComposition("Fe2O3", {"Fe": 2, "O": 3}),))
    with pytest.raises(PipelineInputError, match="sampler"):
        sample(trained, sampler="euler")
