"""The GAN and WGAN-GP baselines on CrysTens of Alverson et al., Digital Discovery (2024).

Both use the same DCGAN-style pair of convolutional networks on normalised CrysTens
``(4, 64, 64)`` tensors (:mod:`pipeline.represent.crystens`):

* **generator**: ``z`` (``latent_dim``) -> dense -> ``(8w, 4, 4)`` -> four stride-2
  transposed convolutions (BatchNorm, ReLU) -> ``(4, 64, 64)``, ``tanh`` (the data's range);
* **discriminator / critic**: four stride-2 convolutions (LeakyReLU 0.2) ``64 -> 4`` ->
  dense -> one score; ``w`` = ``width``.

``crystens_gan`` is the vanilla GAN (Goodfellow et al. 2014; non-saturating generator loss,
binary cross-entropy on logits, BatchNorm in the discriminator, one discriminator step per
generator step). ``crystens_wgan`` is the Wasserstein GAN with gradient penalty (Gulrajani
et al. 2017): a linear critic with LayerNorm-like GroupNorm(1) instead of BatchNorm (the
penalty is per sample), ``critic_steps`` critic batches per generator step and penalty weight
``gp_lambda``. One "step" is one generator step.

Both are unconditional, as in the paper; target compositions are met by filtering decoded
samples (:mod:`pipeline.models.crystens_sampling`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.models.base import (
    GenerativeModel,
    SampleJob,
    SampleResult,
    TrainJob,
    options_from_mapping,
)
from pipeline.models.crystens_sampling import load_training_tensors, noise, sample_for_targets
from pipeline.models.layers import gradient_penalty
from pipeline.models.model_files import load_model, save_model
from pipeline.models.training import (
    ResumableBatches,
    batches,
    fit,
    mixed_precision,
    seed_everything,
)
from pipeline.represent import crystens
from pipeline.settings import defaults_from_config

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
@defaults_from_config("train.crystens_gan")
class GANOptions:
    """``config["train"]["crystens_gan"]``; defaults are sized for a few CPU minutes."""

    steps: int  # generator steps
    batch_size: int
    lr: float  # Adam, both networks (DCGAN)
    betas: tuple[float, float]
    critic_steps: int  # discriminator batches per generator step
    gp_lambda: float  # gradient penalty weight (WGAN-GP only)
    latent_dim: int
    width: int  # channels of the widest-resolution layer
    amp: bool  # bfloat16 autocast on CUDA (never on CPU)
    num_workers: int  # DataLoader workers

    # Do not change the trained result, so a checkpoint stays valid when they change.
    not_in_fingerprint = ("steps", "num_workers")

    def __post_init__(self) -> None:
        if min(self.steps, self.critic_steps, self.latent_dim, self.width) < 1:
            raise ValueError("steps, critic_steps, latent_dim and width must be >= 1")
        if self.batch_size < 2 or len(self.betas) != 2 or self.gp_lambda < 0:
            raise ValueError("batch_size must be >= 2, betas two values, gp_lambda >= 0")


@dataclass(frozen=True)
@defaults_from_config("train.crystens_wgan")
class WGANOptions(GANOptions):
    """``config["train"]["crystens_wgan"]``: Gulrajani et al.'s settings."""

    lr: float
    betas: tuple[float, float]
    critic_steps: int
    gp_lambda: float


@dataclass(frozen=True)
@defaults_from_config("sample.crystens_gan")
class SampleOptions:
    """``config["sample"]["crystens_gan"]`` and ``["crystens_wgan"]``."""

    batch_size: int
    max_draws: int  # tensors drawn at most, over all targets

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_draws) < 1:
            raise ValueError("batch_size and max_draws must be >= 1")


# ----------------------------------------------------------------------------- networks


class Generator(nn.Module):
    """``z`` -> normalised CrysTens ``(B, 4, 64, 64)`` in (-1, 1)."""

    def __init__(self, latent_dim: int, width: int) -> None:
        super().__init__()
        w = width
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, 8 * w * 16), nn.BatchNorm1d(8 * w * 16), nn.ReLU(True)
        )
        layers: list[nn.Module] = []
        for c_in, c_out in [(8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)]:  # 4 -> 8 -> 16 -> 32
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(w, crystens.CHANNELS, 4, 2, 1), nn.Tanh()]  # 32 -> 64
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.dense(z).view(len(z), -1, 4, 4))


class Discriminator(nn.Module):
    """CrysTens -> one unbounded score per sample (a logit, or a Wasserstein critic value)."""

    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [
            nn.Conv2d(crystens.CHANNELS, w, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
        ]  # 64 -> 32
        for c_in, c_out in [(w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)]:  # 32 -> 16 -> 8 -> 4
            normalisation = nn.BatchNorm2d(c_out) if norm == "batch" else nn.GroupNorm(1, c_out)
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                normalisation,
                nn.LeakyReLU(0.2, True),
            ]
        self.conv = nn.Sequential(*layers)
        self.score = nn.Linear(8 * w * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.conv(x).flatten(1)).squeeze(1)


def _dcgan_init(module: nn.Module) -> None:
    """Radford et al. (2016): N(0, 0.02) weights, N(1, 0.02) norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------- losses


def discriminator_loss(
    wasserstein: bool, real_score: torch.Tensor, fake_score: torch.Tensor
) -> torch.Tensor:
    """WGAN: ``E[D(fake)] - E[D(real)]``; GAN: BCE of real as 1 and generated as 0."""
    if wasserstein:
        return fake_score.mean() - real_score.mean()
    return F.binary_cross_entropy_with_logits(
        real_score, torch.ones_like(real_score)
    ) + F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score))


def generator_loss(wasserstein: bool, fake_score: torch.Tensor) -> torch.Tensor:
    """WGAN: ``-E[D(fake)]``; GAN: the non-saturating ``-log D(fake)``."""
    if wasserstein:
        return -fake_score.mean()
    return F.binary_cross_entropy_with_logits(fake_score, torch.ones_like(fake_score))


# ----------------------------------------------------------------------------- the models


class CrysTensGAN(GenerativeModel):
    """The vanilla GAN; :class:`CrysTensWGAN` changes only the loss and its settings."""

    name = "crystens_gan"
    representation = "crystens"
    options_class: ClassVar[type[GANOptions]] = GANOptions
    wasserstein: ClassVar[bool] = False

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(self.options_class, job.options, f"train.{self.name}")
        device = job.device
        seed_everything(job.seed)
        data = load_training_tensors(job.data)
        generator = Generator(opts.latent_dim, opts.width).to(device)
        critic = Discriminator(opts.width, "group" if self.wasserstein else "batch").to(device)
        generator.apply(_dcgan_init)
        critic.apply(_dcgan_init)
        opt_g = torch.optim.Adam(generator.parameters(), lr=opts.lr, betas=opts.betas)
        opt_d = torch.optim.Adam(critic.parameters(), lr=opts.lr, betas=opts.betas)
        autocast = mixed_precision(device, opts.amp)

        loader = ResumableBatches(
            lambda start: batches(
                (data.x,),
                opts.batch_size,
                job.seed,
                start_step=start * opts.critic_steps,
                device=device,
                num_workers=opts.num_workers,
            )
        )

        def step(i: int) -> dict[str, torch.Tensor]:
            for _ in range(opts.critic_steps):
                (real,) = loader.next(i)
                z = torch.randn(len(real), opts.latent_dim, device=device)
                with torch.no_grad(), autocast:
                    fake = generator(z)
                fake = fake.float()
                with autocast:
                    loss_d = discriminator_loss(
                        self.wasserstein, critic(real).float(), critic(fake).float()
                    )
                penalty = (
                    gradient_penalty(critic, real, fake)
                    if opts.gp_lambda > 0
                    else torch.zeros((), device=device)
                )  # fp32: double backward
                opt_d.zero_grad(set_to_none=True)
                (loss_d + opts.gp_lambda * penalty).backward()
                opt_d.step()

            z = torch.randn(opts.batch_size, opts.latent_dim, device=device)
            critic.requires_grad_(False)  # the critic only judges here
            with autocast:
                loss_g = generator_loss(self.wasserstein, critic(generator(z)).float())
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            critic.requires_grad_(True)
            opt_g.step()
            return {"discriminator": loss_d, "gradient_penalty": penalty, "generator": loss_g}

        generator.train(), critic.train()
        state = {"generator": generator, "critic": critic, "opt_g": opt_g, "opt_d": opt_d}
        fit(job, opts, state, step, opts.steps, self.name)
        save_model(
            job.model_path,
            self,
            opts,
            {"generator": generator.state_dict()},
            elements=data.elements,
        )

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, f"sample.{self.name}")
        generate, elements = self.tensor_sampler(job.model_path, job.device)
        return sample_for_targets(
            generate,
            elements,
            job.targets,
            job.per_composition,
            self.name,
            job.seed,
            opts.batch_size,
            opts.max_draws,
        )

    def tensor_sampler(
        self, model_path: Path, device: torch.device
    ) -> tuple[Callable[[list[int]], np.ndarray], tuple[str, ...]]:
        """``generate(latent_seeds)`` -> normalised CrysTens, and the model's elements."""
        saved = load_model(model_path, self.name, device)
        train_opts = options_from_mapping(self.options_class, saved.options, str(model_path))
        generator = Generator(train_opts.latent_dim, train_opts.width).to(device)
        generator.load_state_dict(saved.tensors["generator"])
        generator.eval()

        def generate(seeds: list[int]) -> np.ndarray:
            z = noise(seeds, (train_opts.latent_dim,)).to(device)
            with torch.no_grad():
                return generator(z).float().cpu().numpy()

        return generate, tuple(saved.metadata["elements"])


class CrysTensWGAN(CrysTensGAN):
    """Wasserstein GAN with gradient penalty on CrysTens."""

    name = "crystens_wgan"
    options_class = WGANOptions
    wasserstein = True
