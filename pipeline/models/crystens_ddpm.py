"""A denoising diffusion model (DDPM) of CrysTens, after Alverson et al., Digital Discovery (2024).

The data are normalised CrysTens tensors ``(4, 64, 64)`` in [-1, 1]
(:mod:`pipeline.represent.crystens`). The denoiser is the UNet of 🤗 ``diffusers``
(:class:`diffusers.UNet2DModel`: residual blocks with a sinusoidal time embedding, optional
self-attention at the coarsest resolution), fed two extra channels with each pixel's
position (:class:`Denoiser`), and the noise schedule is its :class:`diffusers.DDPMScheduler`
(Ho et al. 2020: ``timesteps`` steps, linear or cosine betas). Training minimises the mean
squared error between the prediction and its target at a uniformly drawn step: the clean
tensor (``prediction: sample``, the default) or the added noise (``epsilon``, Ho et al. and
the paper's Imagen). At CPU scale x0-prediction is what makes samples decodable
(``bench/crystens_quality.py``, docs/results.md); with a GPU's budget ``epsilon`` is worth
trying. The paper used the Imagen UNet of ``imagen-pytorch``; this one is smaller by default (``channels``) so that it trains on a CPU.

Sampling runs the reverse process from Gaussian noise, either ancestrally (``ddpm``) or
deterministically with DDIM (``ddim``, Song et al. 2021, the default: fewer steps, and a
sample is reproduced from its ``latent_seed`` alone), clips to [-1, 1] and decodes; target
compositions are met by filtering (:mod:`pipeline.models.crystens_sampling`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import nn

from pipeline.errors import PipelineInputError
from pipeline.models.base import (
    GenerativeModel,
    SampleJob,
    SampleResult,
    TrainJob,
    options_from_mapping,
)
from pipeline.models.crystens_sampling import load_training_tensors, noise, sample_for_targets
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

BETA_SCHEDULES = ("linear", "squaredcos_cap_v2")
SAMPLERS = ("ddim", "ddpm")
PREDICTIONS = ("epsilon", "sample")


@dataclass(frozen=True)
@defaults_from_config("train.crystens_ddpm")
class TrainOptions:
    """``config["train"]["crystens_ddpm"]``; defaults are sized for a few CPU minutes."""

    steps: int  # optimiser steps
    batch_size: int
    lr: float  # AdamW
    grad_clip: float  # max gradient norm
    channels: tuple[int, ...]  # UNet widths per resolution (64, 32, 16)
    layers_per_block: int
    attention: bool  # self-attention at the coarsest resolution
    norm_groups: int  # GroupNorm groups; must divide every width
    timesteps: int
    beta_schedule: str  # linear (Ho et al.) | squaredcos_cap_v2
    prediction: str  # the network predicts: sample (x0) | epsilon
    amp: bool  # bfloat16 autocast on CUDA (never on CPU)
    num_workers: int  # DataLoader workers

    # Do not change the trained result, so a checkpoint stays valid when they change.
    not_in_fingerprint = ("steps", "num_workers")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.timesteps < 2:
            raise ValueError("steps and batch_size must be >= 1, timesteps >= 2")
        if not self.channels or any(c % self.norm_groups for c in self.channels):
            raise ValueError(
                f"every UNet width {self.channels} must divide by norm_groups {self.norm_groups}"
            )
        if 64 % 2 ** (len(self.channels) - 1):
            raise ValueError("too many UNet levels for a 64x64 tensor")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction {self.prediction!r}: use one of {PREDICTIONS}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule {self.beta_schedule!r}: use one of {BETA_SCHEDULES}")


@dataclass(frozen=True)
@defaults_from_config("sample.crystens_ddpm")
class SampleOptions:
    """``config["sample"]["crystens_ddpm"]``."""

    sampler: str  # ddim (deterministic given the noise) | ddpm (ancestral)
    sampling_steps: int  # reverse steps (at most the training timesteps)
    batch_size: int
    max_draws: int  # tensors drawn at most, over all targets

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r}: use one of {SAMPLERS}")
        if min(self.sampling_steps, self.batch_size, self.max_draws) < 1:
            raise ValueError("sampling_steps, batch_size and max_draws must be >= 1")


class Denoiser(nn.Module):
    """The UNet, given two extra input channels with each pixel's row and column in [-1, 1].

    CrysTens is a fixed layout (header, padding, sites), but convolutions do not know where
    they are; the coordinate channels ("CoordConv", Liu et al. 2018) tell them, which makes
    the position-dependent mean image quick to learn.
    """

    def __init__(self, opts: TrainOptions) -> None:
        super().__init__()
        levels = len(opts.channels)
        coarsest = ("AttnDownBlock2D",) if opts.attention else ("DownBlock2D",)
        down = ("DownBlock2D",) * (levels - 1) + coarsest
        self.unet = UNet2DModel(
            sample_size=crystens.SIZE,
            in_channels=crystens.CHANNELS + 2,
            out_channels=crystens.CHANNELS,
            block_out_channels=tuple(opts.channels),
            layers_per_block=opts.layers_per_block,
            down_block_types=down,
            up_block_types=tuple(b.replace("Down", "Up") for b in reversed(down)),
            norm_num_groups=opts.norm_groups,
            add_attention=opts.attention,
        )
        axis = torch.linspace(-1.0, 1.0, crystens.SIZE)
        rows, cols = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("grid", torch.stack([rows, cols])[None], persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        grid = self.grid.expand(len(x), -1, -1, -1).to(x.dtype)
        return self.unet(torch.cat([x, grid], dim=1), t).sample


def build_scheduler(opts: TrainOptions) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=opts.timesteps,
        beta_schedule=opts.beta_schedule,
        prediction_type=opts.prediction,
        clip_sample=True,
        clip_sample_range=1.0,
    )


def diffusion_loss(
    denoiser: Denoiser, scheduler: DDPMScheduler, x0: torch.Tensor, autocast=None
) -> torch.Tensor:
    """Mean squared error of the prediction at a uniformly drawn step ``t``.

    ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``; the target is ``eps`` (prediction
    ``epsilon``) or ``x0`` (``sample``).
    """
    eps = torch.randn_like(x0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), device=x0.device)
    with autocast or nullcontext():
        predicted = denoiser(scheduler.add_noise(x0, eps, t), t)
    target = eps if scheduler.config.prediction_type == "epsilon" else x0
    return F.mse_loss(predicted.float(), target)


@torch.no_grad()
def reverse_diffusion(
    denoiser: Denoiser,
    scheduler: DDPMScheduler | DDIMScheduler,
    x: torch.Tensor,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Denoise ``x`` (pure noise) in ``steps`` reverse steps; returns values in [-1, 1]."""
    scheduler.set_timesteps(steps, device=x.device)
    for t in scheduler.timesteps:
        x = scheduler.step(denoiser(x, t), t, x, generator=generator).prev_sample
    return x.clamp(-1.0, 1.0)


class CrysTensDDPM(GenerativeModel):
    name = "crystens_ddpm"
    representation = "crystens"

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, f"train.{self.name}")
        device = job.device
        seed_everything(job.seed)
        data = load_training_tensors(job.data)
        denoiser = Denoiser(opts).to(device)
        scheduler = build_scheduler(opts)
        optimiser = torch.optim.AdamW(denoiser.parameters(), lr=opts.lr)
        autocast = mixed_precision(device, opts.amp)

        loader = ResumableBatches(
            lambda start: batches(
                (data.x,),
                opts.batch_size,
                job.seed,
                start_step=start,
                device=device,
                num_workers=opts.num_workers,
            )
        )

        def step(i: int) -> dict[str, torch.Tensor]:
            (x0,) = loader.next(i)
            loss = diffusion_loss(denoiser, scheduler, x0, autocast)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(denoiser.parameters(), opts.grad_clip)
            optimiser.step()
            return {"denoising_mse": loss}

        denoiser.train()
        fit(job, opts, {"denoiser": denoiser, "optimiser": optimiser}, step, opts.steps, self.name)
        save_model(
            job.model_path,
            self,
            opts,
            {"denoiser": denoiser.state_dict()},
            elements=data.elements,
        )

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, f"sample.{self.name}")
        generate, elements = self.tensor_sampler(job.model_path, opts, job.device)
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
        self, model_path: Path, opts: SampleOptions, device: torch.device
    ) -> tuple[Callable[[list[int]], np.ndarray], tuple[str, ...]]:
        """``generate(latent_seeds)`` -> normalised CrysTens, and the model's elements."""
        saved = load_model(model_path, self.name, device)
        train_opts = options_from_mapping(TrainOptions, saved.options, str(model_path))
        if opts.sampling_steps > train_opts.timesteps:
            raise PipelineInputError(
                f"sample.{self.name}.sampling_steps {opts.sampling_steps}"
                f" exceeds the {train_opts.timesteps} training timesteps"
            )
        denoiser = Denoiser(train_opts).to(device)
        denoiser.load_state_dict(saved.tensors["denoiser"])
        denoiser.eval()
        training_schedule = build_scheduler(train_opts)
        scheduler = (
            DDIMScheduler.from_config(training_schedule.config)
            if opts.sampler == "ddim"
            else training_schedule
        )

        def generate(seeds: list[int]) -> np.ndarray:
            x = noise(seeds, crystens.SHAPE).to(device)
            # Ancestral steps draw fresh noise: seeded by the batch's first sample.
            generator = torch.Generator(device).manual_seed(seeds[0])
            return (
                reverse_diffusion(denoiser, scheduler, x, opts.sampling_steps, generator)
                .float()
                .cpu()
                .numpy()
            )

        return generate, tuple(saved.metadata["elements"])
