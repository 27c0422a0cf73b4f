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

Losses (the paper's, as its authors' code weighs them): WGAN-GP for critic and generator
(``gp_lambda`` = 10), and ``L_class = lambda_c * L_class-atom + L_class-comp``
(cross-entropies; ``lambda_c`` = 0.3 on the per-element atom-count term, the composition
class term unweighted)
on real samples (weight ``lambda_real``, trains the classifier) and on generated samples
(weight ``lambda_fake``, trains generator and classifier). The critic takes
``critic_steps`` batches per generator step; one "step" below is one generator step.

Sampling draws ``z`` (random, or on great circles between two random points: slerp),
decodes each point cloud and keeps it when the classifier predicts the target's atom
counts (and its composition class, when the target is one) and the decoded crystal has
the target composition.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.encode import load_encoded
from pipeline.errors import PipelineInputError
from pipeline.models.base import (
    GenerativeModel,
    SampleJob,
    SampleResult,
    TargetComposition,
    TargetReport,
    TrainJob,
    latent_seed,
    options_from_mapping,
)
from pipeline.models.training import (
    Checkpoints,
    LossLog,
    batches,
    restore_rng_state,
    rng_state,
    seed_everything,
)
from pipeline.represent.pointcloud import LATTICE_ROWS, DecodeError, PointCloudEncoding

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainOptions:
    """``config["train"]["ccgan"]``. The defaults are the paper's (about its 500 epochs on
    its data); ``config.yaml`` sizes them down for a few CPU minutes."""

    steps: int = 300_000  # generator steps
    batch_size: int = 32
    lr: float = 1e-4  # Adam, all three networks
    betas: tuple[float, float] = (0.5, 0.999)
    critic_steps: int = 5  # critic batches per generator step
    gp_lambda: float = 10.0  # gradient penalty weight
    lambda_c: float = 0.3  # weight of the atom-count term in L_class (Kim et al.'s code)
    lambda_real: float = 1.0  # L_class on real samples (classifier)
    lambda_fake: float = 1.0  # L_class on generated samples (generator, classifier)
    latent_dim: int = 512
    channels: tuple[int, int, int] = (256, 512, 256)
    random_condition_fraction: float = 0.5  # generated samples conditioned on random counts
    classifier_learns_fake: bool = False  # the paper: true; see the generator step
    amp: bool = True  # bfloat16 autocast on CUDA (never on CPU)
    num_workers: int = 0  # DataLoader workers

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
class SampleOptions:
    """``config["sample"]["ccgan"]``."""

    latent: str = "random"  # random | slerp (per target, between two points)
    batch_size: int = 256
    classifier_filter: bool = True  # keep only what the classifier calls the target

    def __post_init__(self) -> None:
        if self.latent not in ("random", "slerp"):
            raise ValueError(f"latent {self.latent!r}: use random or slerp")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


# ----------------------------------------------------------------------------- networks


class Generator(nn.Module):
    """(z, condition) -> point cloud ``(B, 1, R, 3)`` with values in (0, 1)."""

    def __init__(
        self, encoding: PointCloudEncoding, latent_dim: int, channels: tuple[int, int, int]
    ):
        super().__init__()
        self.atom_rows = sum(encoding.caps)
        c1, c2, c3 = channels
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + encoding.condition_size, c1 * self.atom_rows), nn.ReLU(True)
        )
        self.deconv = nn.Sequential(
            # (B, c1, rows, 1) -> (B, c2, rows, 3): the kernel spreads each row over x, y, z
            nn.ConvTranspose2d(c1, c2, (1, 3)),
            nn.BatchNorm2d(c2),
            nn.ReLU(True),
            nn.ConvTranspose2d(c2, c3, (1, 1)),
            nn.BatchNorm2d(c3),
            nn.ReLU(True),
            nn.ConvTranspose2d(c3, c2, (1, 1)),
            nn.BatchNorm2d(c2),
            nn.ReLU(True),
            nn.ConvTranspose2d(c2, 1, (1, 1)),
        )
        self.cell_head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(3 * self.atom_rows, 30),
            nn.BatchNorm1d(30),
            nn.ReLU(True),
            nn.Linear(30, 6),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.dense(torch.cat([z, condition], dim=1))
        h = self.deconv(h.view(len(h), -1, self.atom_rows, 1))  # (B, 1, rows, 3)
        cell = self.cell_head(h).view(len(h), 1, LATTICE_ROWS, 3)
        return torch.cat([cell, torch.sigmoid(h)], dim=2)


class Critic(nn.Module):
    """Point cloud -> one unbounded score per sample (higher: more like the data)."""

    def __init__(self, encoding: PointCloudEncoding, channels: tuple[int, int, int]):
        super().__init__()
        self.caps = encoding.caps
        c1, c2, c3 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, c2, (1, 3)),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(c2, c2, (1, 1)),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(c2, c1, (1, 1)),
            nn.LeakyReLU(0.2, True),
        )
        merged_rows = LATTICE_ROWS + len(encoding.caps)
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c1 * merged_rows, 4 * c3),
            nn.LeakyReLU(0.2, True),
            nn.Linear(4 * c3, c3),
            nn.LeakyReLU(0.2, True),
            nn.Linear(c3, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (B, c1, R, 1)
        cell, atoms = h[:, :, :LATTICE_ROWS], h[:, :, LATTICE_ROWS:]
        # Merge: the mean over each element's slots, so the score sees per-element summaries.
        merged = [block.mean(dim=2, keepdim=True) for block in atoms.split(self.caps, dim=2)]
        return self.dense(torch.cat([cell, *merged], dim=2)).squeeze(1)


class Classifier(nn.Module):
    """Point cloud -> (per-element atom-count logits, composition-class logits)."""

    def __init__(
        self, encoding: PointCloudEncoding, n_classes: int, channels: tuple[int, int, int]
    ):
        super().__init__()
        self.caps = encoding.caps
        c1, _, c3 = channels
        slot_features = 8
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, (1, 3)),
            nn.BatchNorm2d(c1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(c1, c1, (1, 1)),
            nn.BatchNorm2d(c1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(c1, slot_features, (1, 1)),
            nn.BatchNorm2d(slot_features),
            nn.LeakyReLU(0.2, True),
        )
        self.count_heads = nn.ModuleList(
            nn.Sequential(
                nn.Flatten(),
                nn.Linear(slot_features * cap, c3),
                nn.BatchNorm1d(c3),
                nn.LeakyReLU(0.2, True),
                nn.Linear(c3, cap + 1),  # 0..cap atoms
            )
            for cap in encoding.caps
        )
        self.class_head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(slot_features * encoding.n_rows, 2 * c3),
            nn.BatchNorm1d(2 * c3),
            nn.LeakyReLU(0.2, True),
            nn.Linear(2 * c3, n_classes),
        )

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        h = self.conv(x)  # (B, 8, R, 1)
        blocks = h[:, :, LATTICE_ROWS:].split(self.caps, dim=2)
        count_logits = [head(block) for head, block in zip(self.count_heads, blocks)]
        return count_logits, self.class_head(h)


# ----------------------------------------------------------------------------- losses


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``E[(|grad critic(x_hat)| - 1)^2]`` on random points between real and generated."""
    alpha = torch.rand(len(real), 1, 1, 1, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(x_hat)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def class_loss(
    classifier: Classifier,
    x: torch.Tensor,
    counts: torch.Tensor,
    classes: torch.Tensor,
    lambda_c: float,
) -> torch.Tensor:
    """``lambda_c * L_class-atom + L_class-comp``, weighted as in Kim et al.'s code.

    ``L_class-atom`` sums the cross-entropies of the per-element atom counts (mean over the
    batch), ``L_class-comp`` is the cross-entropy of the composition class, averaged over
    the samples whose composition is a training one (class -1 has no composition term).
    """
    count_logits, class_logits = classifier(x)
    atom = sum(F.cross_entropy(logits, counts[:, i]) for i, logits in enumerate(count_logits))
    known = classes >= 0
    comp = F.cross_entropy(
        class_logits[known], classes[known], reduction="sum"
    ) / known.sum().clamp(min=1)
    return lambda_c * atom + comp


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Compositions:
    """The training set's composition classes and per-element count ranges, on a device."""

    encoding: PointCloudEncoding
    class_counts: torch.Tensor  # (n_classes, n_elements)
    min_counts: torch.Tensor  # (n_elements,) smallest count of each element in the data

    def onehot(self, counts: torch.Tensor) -> torch.Tensor:
        """Per-element one-hot counts, the generator's condition (as ``count_onehot``)."""
        return torch.cat(
            [F.one_hot(counts[:, i], cap + 1).float() for i, cap in enumerate(self.encoding.caps)],
            dim=1,
        )

    def class_of(self, counts: torch.Tensor) -> torch.Tensor:
        """Composition class of each row of ``counts``, -1 where it is not a training class."""
        match = (counts[:, None, :] == self.class_counts[None]).all(dim=2)  # (B, n_classes)
        return torch.where(match.any(dim=1), match.int().argmax(dim=1), -1)

    def draw(self, n: int, random_fraction: float) -> torch.Tensor:
        """Counts for ``n`` generated samples: training classes, or with probability
        ``random_fraction`` uniform counts per element within the data's range and the caps."""
        device = self.class_counts.device
        counts = self.class_counts[torch.randint(len(self.class_counts), (n,), device=device)]
        caps = torch.tensor(self.encoding.caps, device=device)
        uniform = (
            self.min_counts
            + (torch.rand(n, len(caps), device=device) * (caps - self.min_counts + 1)).long()
        )
        use_random = torch.rand(n, 1, device=device) < random_fraction
        return torch.where(use_random, uniform, counts)


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
            net.apply(_xavier_init)
        adam = dict(lr=opts.lr, betas=opts.betas)
        opt_g = torch.optim.Adam(generator.parameters(), **adam)
        opt_d = torch.optim.Adam(critic.parameters(), **adam)
        opt_c = torch.optim.Adam(classifier.parameters(), **adam)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if opts.amp and device.type == "cuda"
            else nullcontext()
        )

        # Resume from the newest checkpoint of this very run, if there is one.
        checkpoints = Checkpoints.for_job(job, opts)
        state = checkpoints.load_latest(device)
        log = LossLog()
        start = 0
        if state is not None:
            for key, obj in [
                ("generator", generator),
                ("critic", critic),
                ("classifier", classifier),
                ("opt_g", opt_g),
                ("opt_d", opt_d),
                ("opt_c", opt_c),
            ]:
                obj.load_state_dict(state[key])
            restore_rng_state(state["rng"])
            log, start = LossLog(state["losses"]), state["step"]
            print(f"resuming from {checkpoints.paths()[-1]} at step {start}")

        def save_checkpoint(step: int) -> None:
            checkpoints.save(
                step,
                {
                    "generator": generator.state_dict(),
                    "critic": critic.state_dict(),
                    "classifier": classifier.state_dict(),
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(),
                    "opt_c": opt_c.state_dict(),
                    "rng": rng_state(),
                    "losses": log.rows,
                },
            )

        # Batch k of the run is the same whether or not the run was interrupted before it.
        loader = batches(
            (x_all, counts_all, classes_all),
            opts.batch_size,
            job.seed,
            start_step=start * opts.critic_steps,
            device=device,
            num_workers=opts.num_workers,
        )
        generator.train(), critic.train(), classifier.train()
        t0 = time.perf_counter()
        for step in tqdm(
            range(start, opts.steps), initial=start, total=opts.steps, desc="ccgan", mininterval=2.0
        ):
            # 1) Critic (Wasserstein distance with gradient penalty) and the classifier on
            #    real samples, critic_steps batches.
            for _ in range(opts.critic_steps):
                real, real_counts, real_classes = next(loader)
                fake_counts = compositions.draw(len(real), opts.random_condition_fraction)
                z = torch.randn(len(real), opts.latent_dim, device=device)
                with torch.no_grad(), autocast:
                    fake = generator(z, compositions.onehot(fake_counts))
                fake = fake.float()
                with autocast:
                    wasserstein = critic(real).mean() - critic(fake).mean()
                    loss_real_class = class_loss(
                        classifier, real, real_counts, real_classes, opts.lambda_c
                    )
                # fp32 for the double backward of the penalty, also under autocast.
                penalty = gradient_penalty(critic, real, fake)
                loss_d = -wasserstein + opts.gp_lambda * penalty
                opt_d.zero_grad(set_to_none=True)
                opt_c.zero_grad(set_to_none=True)
                (loss_d + opts.lambda_real * loss_real_class.float()).backward()
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
            fake_counts = compositions.draw(opts.batch_size, opts.random_condition_fraction)
            z = torch.randn(opts.batch_size, opts.latent_dim, device=device)
            with autocast:
                fake = generator(z, compositions.onehot(fake_counts))
                adversarial = -critic(fake).mean()
                loss_fake_class = class_loss(
                    classifier, fake, fake_counts, compositions.class_of(fake_counts), opts.lambda_c
                )
            opt_g.zero_grad(set_to_none=True)
            opt_c.zero_grad(set_to_none=True)
            (adversarial + opts.lambda_fake * loss_fake_class).float().backward()
            opt_g.step()
            if learn_fake:
                opt_c.step()
            critic.requires_grad_(True)
            classifier.requires_grad_(True)
            classifier.train()

            log.append(
                step,
                wasserstein=wasserstein.item(),
                gradient_penalty=penalty.item(),
                generator=adversarial.item(),
                class_real=loss_real_class.item(),
                class_fake=loss_fake_class.item(),
            )
            if (step + 1) % job.checkpoint_every == 0 or step + 1 == opts.steps:
                save_checkpoint(step + 1)

        elapsed = time.perf_counter() - t0
        done = opts.steps - start
        if done > 0:
            rate = done * opts.critic_steps * opts.batch_size / elapsed
            print(f"{done} steps in {elapsed:.1f} s: {rate:.0f} real samples/s on {device}")
        job.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": self.name,
                "options": dataclasses.asdict(opts),
                "elements": encoding.elements,
                "caps": encoding.caps,
                "compositions": data.compositions,
                "class_counts": class_counts,
                "min_counts": compositions.min_counts.cpu(),
                "generator": generator.state_dict(),
                "classifier": classifier.state_dict(),
            },
            job.model_path,
        )
        log.write_csv(job.losses_path)

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.ccgan")
        saved = torch.load(job.model_path, map_location=job.device, weights_only=False)
        if saved.get("model") != self.name:
            raise PipelineInputError(f"{job.model_path} is not a {self.name} model")
        train_opts = options_from_mapping(TrainOptions, saved["options"], str(job.model_path))
        encoding = PointCloudEncoding(tuple(saved["elements"]), tuple(saved["caps"]))
        compositions = Compositions(
            encoding, saved["class_counts"].to(job.device), saved["min_counts"].to(job.device)
        )
        generator = Generator(encoding, train_opts.latent_dim, train_opts.channels).to(job.device)
        classifier = Classifier(encoding, len(saved["compositions"]), train_opts.channels)
        generator.load_state_dict(saved["generator"])
        classifier.load_state_dict(saved["classifier"])
        generator.eval(), classifier.to(job.device).eval()

        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            counts = _target_counts(target, encoding)
            seeds = [latent_seed(job.seed, target_index, i) for i in range(job.per_composition)]
            z, latent_properties = _latents(seeds, train_opts.latent_dim, opts.latent)
            report = TargetReport(target.label, asked=job.per_composition)
            for start in range(0, job.per_composition, opts.batch_size):
                z_batch = z[start : start + opts.batch_size].to(job.device)
                n = len(z_batch)
                target_counts = torch.tensor(counts, device=job.device).expand(n, -1)
                with torch.no_grad():
                    x = generator(z_batch, compositions.onehot(target_counts))
                    count_logits, class_logits = classifier(x)
                predicted = torch.stack([logits.argmax(dim=1) for logits in count_logits], dim=1)
                agrees = (predicted == target_counts).all(dim=1)
                target_class = compositions.class_of(target_counts)
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


def _xavier_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def _target_counts(target: TargetComposition, encoding: PointCloudEncoding) -> tuple[int, ...]:
    foreign = sorted(set(target.counts) - set(encoding.elements))
    counts = tuple(int(target.counts.get(el, 0)) for el in encoding.elements)
    over = [el for el, n, cap in zip(encoding.elements, counts, encoding.caps) if n > cap]
    if foreign or over or sum(counts) == 0:
        raise PipelineInputError(
            f"target {target.label}: the model generates {dict(zip(encoding.elements, encoding.caps))}"
            f" at most (foreign elements {foreign}, over the cap {over})"
        )
    return counts


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
