"""The per-target sampling loop every seed-per-structure model shares
(:meth:`pipeline.models.base.GenerativeModel.sample_by_target`): seeds, ids, batching,
the composition check and the per-target report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineInputError
from pipeline.models.base import (
    GenerativeModel,
    SampleJob,
    TargetBatch,
    TargetComposition,
    check_target_elements,
    latent_seed,
)
from pipeline.records import CrystalRecord

TARGETS = [
    TargetComposition("Mg1O1", {"Mg": 1, "O": 1}),
    TargetComposition("Mg2O2", {"Mg": 2, "O": 2, "Mn": 0}),
]


class SeededRockSalt(GenerativeModel):
    """Rock-salt cells whose lattice constant comes from each sample's seed; sample 1 of a
    target does not decode and sample 2 comes out with one oxygen too many."""

    name = "seeded_rocksalt"
    representation = "pointcloud"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.batches: list[range] = []

    def train(self, job) -> None:  # nothing to learn
        pass

    def sample(self, job: SampleJob):
        return self.sample_by_target(job, job.options["batch_size"], self.for_target)

    def for_target(self, target: TargetComposition, target_index: int):
        check_target_elements(target, ("Mg", "O"))
        self.started.append(target.label)

        def generate(batch: TargetBatch) -> list[CrystalRecord | None]:
            self.batches.append(batch.indices)
            return [self.crystal(target, i, seed) for i, seed in zip(batch.indices, batch.seeds)]

        return generate

    @staticmethod
    def crystal(target: TargetComposition, index: int, seed: int) -> CrystalRecord | None:
        if index == 1:
            return None
        n = target.counts["Mg"]
        extra = ["O"] if index == 2 else []
        a = 4.0 + np.random.default_rng(seed).random()
        species = ["Mg"] * n + ["O"] * n + extra
        coords = [[k / len(species), 0.0, 0.0] for k in range(len(species))]
        return CrystalRecord(
            id="", lattice=np.diag([a * n, a, a]).tolist(), species=species, frac_coords=coords
        )


def run(batch_size: int, per_composition: int = 5, targets=TARGETS, seed: int = 7):
    model = SeededRockSalt()
    job = SampleJob(
        model_path=None,
        targets=targets,
        per_composition=per_composition,
        options={"batch_size": batch_size},
        seed=seed,
        device=torch.device("cpu"),
    )
    return model, model.sample(job)


def test_a_sample_depends_on_its_target_and_index_only():
    _, one = run(batch_size=1)
    for batch_size in (2, 5, 64):
        model, other = run(batch_size)
        assert [r.id for r in other.records] == [r.id for r in one.records]
        assert [r.lattice for r in other.records] == [r.lattice for r in one.records]
    assert model.batches == [range(0, 5), range(0, 5)]  # one batch per target at 64
    assert [r.id for r in one.records] == [
        f"seeded_rocksalt-{t.label}-{i:05d}" for t in TARGETS for i in (0, 3, 4)
    ]
    # Sample i of target k is drawn from latent_seed(seed, k, i).
    expected = 4.0 + np.random.default_rng(latent_seed(7, 1, 3)).random()
    assert one.records[4].lattice[1][1] == pytest.approx(expected)
    assert {r.source for r in one.records} == {"seeded_rocksalt"}


def test_undecodable_and_wrong_composition_samples_are_not_decoded():
    model, result = run(batch_size=2)
    assert model.started == ["Mg1O1", "Mg2O2"]  # per-target work once, in order
    assert model.batches == [range(0, 2), range(2, 4), range(4, 5)] * 2
    assert [(r.label, r.asked, r.decoded, r.kept) for r in result.reports] == [
        ("Mg1O1", 5, 3, 3),
        ("Mg2O2", 5, 3, 3),
    ]
    assert [sorted(r.species) for r in result.records] == [["Mg", "O"]] * 3 + [
        ["Mg", "Mg", "O", "O"]
    ] * 3


def test_a_foreign_target_is_an_input_error():
    with pytest.raises(PipelineInputError, match="Fe"):
        run(batch_size=2, targets=[TargetComposition("Fe2O3", {"Fe": 2, "O": 3})])
