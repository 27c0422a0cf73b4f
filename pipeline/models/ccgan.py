"""Composition-conditioned crystal GAN of Kim et al., ACS Cent. Sci. 6, 1412 (2020).

Three networks work on the point cloud of :mod:`pipeline.represent.pointcloud`, a
``(1, R, 3)`` image with ``R = 2 + sum(caps)`` rows (two cell rows, then one row per atom
slot of each element):

* the **generator** turns Gaussian noise ``z`` and the target composition (per-element
  one-hot atom counts) into a point cloud: a dense layer, transposed convolutions with
  BatchNorm and ReLU give the atom coordinate block (sigmoid), a flatten/dense/BatchNorm/
  dense/sigmoid head on the same features gives the six cell parameters;
* the **critic** (Wasserstein, linear output) sees point clouds only: LeakyReLU
  convolutions per row, then each element's slots are merged by averaging, and dense
  layers score the result;
* the **classifier** (LeakyReLU convolutions with BatchNorm) predicts the atoms of each
  element (one softmax head per element) and the composition class of the training set.

Losses (the paper's): WGAN-GP for critic and generator (``gp_lambda`` = 10), and
``L_class = lambda_c * L_class-atom + L_class-comp`` (Kim et al.'s code; ``lambda_c`` = 0.3)
on real samples (weight ``lambda_real``, trains the classifier) and on generated samples
(weight ``lambda_fake``, trains generator and classifier). The critic takes
``critic_steps`` batches per generator step; one "step" below is one generator step.

Sampling draws ``z`` (random, or on great circles between two random points: slerp),
decodes each point cloud and keeps it when the classifier predicts the target's atom
counts (and its composition class, when the target is one) and the decoded crystal has
the target composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.formats import load_encoded
from pipeline.models.base import (
    GenerativeModel,
    SampleJob,
    SampleResult,
    TargetReport,
    TrainJob,
    latent_seed,
    options_from_mapping,
    target_counts,
)
from pipeline.models.ccgan_networks import (
    CCGANLosses,
    Classifier,
    Compositions,
    Critic,
    Generator,
    xavier_init,
)
from pipeline.models.model_files import load_model, save_model
from pipeline.models.training import (
    ResumableBatches,
    batches,
    fit,
    mixed_precision,
    seed_everything,
)
from pipeline.represent.pointcloud import DecodeError, PointCloudEncoding
from pipeline.settings import defaults_from_config

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
@defaults_from_config("train.ccgan")
class TrainOptions:
    """``config["train"]["ccgan"]`` (defaults: ``config.yaml``, sized for a few CPU minutes;
    ``config/paper.yaml`` has the paper's)."""

    steps: int  # generator steps
    batch_size: int
    lr: float  # Adam, all three networks
    betas: tuple[float, float]
    critic_steps: int  # critic batches per generator step
    gp_lambda: float  # gradient penalty weight
    lambda_c: float  # weight of the atom-count term in L_class (Kim et al.'s code)
    lambda_real: float  # L_class on real samples (classifier)
    lambda_fake: float  # L_class on generated samples (generator, classifier)
    latent_dim: int
    channels: tuple[int, int, int]
    random_condition_fraction: float  # generated samples conditioned on random counts
    classifier_learns_fake: bool  # the paper: true; see the generator step
    amp: bool  # bfloat16 autocast on CUDA (never on CPU)
    num_workers: int  # DataLoader workers

    # Do not change the trained result, so a checkpoint stays valid when they change.
    not_in_fingerprint = ("steps", "num_workers")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.critic_steps < 1:
            raise ValueError("steps, critic_steps must be >= 1 and batch_size >= 2")
        if len(self.betas) != 2 or len(self.channels) != 3:
            raise ValueError("betas needs two values and channels three")
        if not 0.0 <= self.random_condition_fraction <= 1.0:
            raise ValueError("random_condition_fraction must lie in [0, 1]")


@dataclass(frozen=True)
@defaults_from_config("sample.ccgan")
class SampleOptions:
    """``config["sample"]["ccgan"]``."""

    latent: str  # random | slerp (per target, between two points)
    batch_size: int
    classifier_filter: bool  # keep only what the classifier calls the target

    def __post_init__(self) -> None:
        if self.latent not in ("random", "slerp"):
            raise ValueError(f"latent {self.latent!r}: use random or slerp")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


# ----------------------------------------------------------------------------- the model


class CCGAN(GenerativeModel):
    name = "ccgan"
    representation = "pointcloud"

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, "train.ccgan")
        device = job.device
        seed_everything(job.seed)

        # Data: point clouds as (N, 1, R, 3) images, atom counts and composition classes.
        data = load_encoded(job.data)
        encoding = data.encoding
        x_all = torch.from_numpy(data.x).float().unsqueeze(1)
        counts_all = torch.from_numpy(data.counts).long()
        classes_all = torch.from_numpy(data.composition_class).long()
        class_counts = torch.stack(
            [counts_all[classes_all == k][0] for k in range(len(data.compositions))]
        )
        compositions = Compositions(
            encoding, class_counts.to(device), counts_all.min(dim=0).values.to(device)
        )

        # Networks and optimisers.
        generator = Generator(encoding, opts.latent_dim, opts.channels).to(device)
        critic = Critic(encoding, opts.channels).to(device)
        classifier = Classifier(encoding, len(data.compositions), opts.channels).to(device)
        for net in (generator, critic, classifier):
            net.apply(xavier_init)
        adam = dict(lr=opts.lr, betas=opts.betas)
        opt_g = torch.optim.Adam(generator.parameters(), **adam)
        opt_d = torch.optim.Adam(critic.parameters(), **adam)
        opt_c = torch.optim.Adam(classifier.parameters(), **adam)
        autocast = mixed_precision(device, opts.amp)

        # Batch k of the run is the same whether or not the run was interrupted before it.
        loader = ResumableBatches(
            lambda start: batches(
                (x_all, counts_all, classes_all),
                opts.batch_size,
                job.seed,
                start_step=start * opts.critic_steps,
                device=device,
                num_workers=opts.num_workers,
            )
        )
        nets = {"generator": generator, "critic": critic, "classifier": classifier}
        optimisers = {"opt_g": opt_g, "opt_d": opt_d, "opt_c": opt_c}
        losses = CCGANLosses(generator, critic, classifier, compositions, opts, autocast)

        def step(i: int) -> dict[str, torch.Tensor]:
            # 1) Critic (Wasserstein distance with gradient penalty) and the classifier on
            #    real samples, critic_steps batches.
            for _ in range(opts.critic_steps):
                critic_losses = losses.critic(*loader.next(i))
                opt_d.zero_grad(set_to_none=True)
                opt_c.zero_grad(set_to_none=True)
                (
                    -critic_losses["wasserstein"]
                    + opts.gp_lambda * critic_losses["gradient_penalty"]
                    + opts.lambda_real * critic_losses["class_real"].float()
                ).backward()
                opt_d.step()
                opt_c.step()

            # 2) Generator: fool the critic and make the classifier see the asked composition.
            #    The paper's classifier also learnt from this term; then it learns to read
            #    the asked composition off the generator's output rather than off its atoms,
            #    and agrees with generated clouds whose decoded composition is wrong. By
            #    default it stays a judge of real data here (eval mode: BatchNorm uses and
            #    keeps the real data's statistics).
            learn_fake = opts.classifier_learns_fake
            classifier.train(learn_fake)
            classifier.requires_grad_(learn_fake)
            critic.requires_grad_(False)  # the critic only judges here
            generator_losses = losses.generator()
            opt_g.zero_grad(set_to_none=True)
            opt_c.zero_grad(set_to_none=True)
            (
                generator_losses["generator"] + opts.lambda_fake * generator_losses["class_fake"]
            ).float().backward()
            opt_g.step()
            if learn_fake:
                opt_c.step()
            critic.requires_grad_(True)
            classifier.requires_grad_(True)
            classifier.train()
            return {
                "wasserstein": critic_losses["wasserstein"],
                "gradient_penalty": critic_losses["gradient_penalty"],
                "generator": generator_losses["generator"],
                "class_real": critic_losses["class_real"],
                "class_fake": generator_losses["class_fake"],
            }

        generator.train(), critic.train(), classifier.train()
        fit(job, opts, {**nets, **optimisers}, step, opts.steps, self.name)
        save_model(
            job.model_path,
            self,
            opts,
            {
                "class_counts": class_counts,
                "min_counts": compositions.min_counts.cpu(),
                "generator": generator.state_dict(),
                "classifier": classifier.state_dict(),
            },
            elements=encoding.elements,
            caps=encoding.caps,
            compositions=data.compositions,
        )

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.ccgan")
        saved = load_model(job.model_path, self.name, job.device)
        train_opts = options_from_mapping(TrainOptions, saved.options, str(job.model_path))
        meta, tensors = saved.metadata, saved.tensors
        encoding = PointCloudEncoding(tuple(meta["elements"]), tuple(meta["caps"]))
        compositions = Compositions(encoding, tensors["class_counts"], tensors["min_counts"])
        generator = Generator(encoding, train_opts.latent_dim, train_opts.channels).to(job.device)
        classifier = Classifier(encoding, len(meta["compositions"]), train_opts.channels)
        generator.load_state_dict(tensors["generator"])
        classifier.load_state_dict(tensors["classifier"])
        generator.eval(), classifier.to(job.device).eval()

        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            counts = target_counts(target, encoding.elements, encoding.caps)
            seeds = [latent_seed(job.seed, target_index, i) for i in range(job.per_composition)]
            z, latent_properties = _latents(seeds, train_opts.latent_dim, opts.latent)
            report = TargetReport(target.label, asked=job.per_composition)
            for start in range(0, job.per_composition, opts.batch_size):
                z_batch = z[start : start + opts.batch_size].to(job.device)
                n = len(z_batch)
                asked_counts = torch.tensor(counts, device=job.device).expand(n, -1)
                with torch.no_grad():
                    x = generator(z_batch, compositions.onehot(asked_counts))
                    count_logits, class_logits = classifier(x)
                predicted = torch.stack([logits.argmax(dim=1) for logits in count_logits], dim=1)
                agrees = (predicted == asked_counts).all(dim=1)
                target_class = compositions.class_of(asked_counts)
                if target_class[0] >= 0:  # a training composition: the class must agree too
                    agrees &= class_logits.argmax(dim=1) == target_class
                if not opts.classifier_filter:
                    agrees[:] = True
                for j, (cloud, ok) in enumerate(
                    zip(x.squeeze(1).float().cpu().numpy(), agrees.tolist())
                ):
                    i = start + j
                    try:
                        record = encoding.decode(cloud, id=f"{self.name}-{target.label}-{i:05d}")
                    except DecodeError:
                        continue
                    report.decoded += 1
                    decoded_counts = encoding.atom_counts(record.species).tolist()
                    if not ok or decoded_counts != list(counts):
                        continue
                    record.source = self.name
                    record.properties.update(latent_properties[i])
                    result.records.append(record)
                    report.kept += 1
            result.reports.append(report)
        return result


# ----------------------------------------------------------------------------- helpers


def _latents(
    seeds: list[int], latent_dim: int, mode: str
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """``z`` for every sample and the properties that reproduce it.

    ``random``: sample ``i`` is drawn from ``seeds[i]`` (``latent_seed``). ``slerp``: the
    samples lie on the great circle from the point of ``seeds[0]`` to that of ``seeds[1]``
    (``latent_seed``, ``latent_seed_end``) at ``latent_t`` = 0..1.
    """

    def draw(seed: int) -> torch.Tensor:
        return torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed))

    if mode == "random" or len(seeds) < 2:
        return torch.stack([draw(s) for s in seeds]), [{"latent_seed": float(s)} for s in seeds]
    z0, z1 = draw(seeds[0]), draw(seeds[1])
    omega = float(torch.arccos(torch.clamp(F.cosine_similarity(z0, z1, dim=0), -1.0, 1.0)))
    t = np.linspace(0.0, 1.0, len(seeds))
    z = torch.stack(
        [
            (math.sin((1 - ti) * omega) * z0 + math.sin(ti * omega) * z1) / math.sin(omega)
            for ti in t
        ]
    )
    return z, [
        {"latent_seed": float(seeds[0]), "latent_seed_end": float(seeds[1]), "latent_t": float(ti)}
        for ti in t
    ]
