"""The diffusion process of :mod:`pipeline.models.graph_diffusion`: noise schedules, lattice
scaling, and :class:`CrystalDiffusion`, which holds the denoiser and the band-gap predictor,
gives the losses of a training batch and takes one reverse (or forward) sampling step.

Coordinates diffuse on the torus (variance exploding, wrapped normal scores); the lattice's
six standardised log-metric parameters follow a DDPM with the cosine schedule.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
from torch_geometric.data import Batch

from pipeline.models.egnn import Denoiser, PropertyPredictor
from pipeline.represent.graph import lattice_from_log_metric, lattice_log_metric

if TYPE_CHECKING:
    from pipeline.models.graph_diffusion import TrainOptions

# ----------------------------------------------------------------------------- noise schedules


class Schedule(nn.Module):
    """Noise levels of steps ``t = 0..T`` (step 0: no noise).

    ``sigmas``: coordinate noise, geometric in ``t = 1..T``; ``alpha_bars``: the lattice
    DDPM's signal fraction, the cosine schedule of Nichol and Dhariwal (2021).
    """

    def __init__(self, timesteps: int, sigma_min: float, sigma_max: float):
        super().__init__()
        self.timesteps = timesteps
        steps = torch.arange(timesteps + 1, dtype=torch.float64)
        sigmas = sigma_min * (sigma_max / sigma_min) ** ((steps - 1) / max(timesteps - 1, 1))
        sigmas[0] = 0.0
        f = torch.cos((steps / timesteps + 0.008) / 1.008 * math.pi / 2) ** 2
        alpha_bars = (f / f[0]).clamp(min=1e-5)
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("alpha_bars", alpha_bars.float())


def wrapped_normal_score(delta: torch.Tensor, sigma: torch.Tensor, wraps: int = 3) -> torch.Tensor:
    """``d/df log sum_k N(delta + k; 0, sigma^2)``: the score of a normal wrapped on [0, 1)."""
    k = torch.arange(-wraps, wraps + 1, device=delta.device, dtype=delta.dtype)
    x = delta[..., None] + k
    weights = torch.softmax(-(x**2) / (2 * sigma[..., None] ** 2), dim=-1)
    return -(weights * x).sum(dim=-1) / sigma**2


# ----------------------------------------------------------------------------- lattice scaling


class LatticeScaler(nn.Module):
    """Lattices <-> standardised parameters ``z``: the log-metric entries of
    :func:`~pipeline.represent.graph.lattice_log_metric`, with the cell scaled to one atom
    (``log n^(1/3)`` off the diagonal entries), minus the training set's mean, over its
    standard deviation."""

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(6) if mean is None else mean.float())
        self.register_buffer("std", torch.ones(6) if std is None else std.float())

    @staticmethod
    def raw(lattices: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        entries = lattice_log_metric(lattices)
        size = torch.log(num_atoms.to(entries.dtype))[:, None] / 3
        return entries - size * DIAGONAL.to(entries)

    @classmethod
    def fit(cls, lattices: torch.Tensor, num_atoms: torch.Tensor) -> LatticeScaler:
        raw = cls.raw(lattices.double(), num_atoms)
        # Cells without shear (off-diagonal entries all 0) have no spread: keep z finite.
        return cls(raw.mean(dim=0), raw.std(dim=0).clamp(min=0.05))

    def to_z(self, lattices: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        return (self.raw(lattices.double(), num_atoms).float() - self.mean) / self.std

    def to_lattice(self, z: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        size = torch.log(num_atoms.to(z.dtype))[:, None] / 3
        z = z.clamp(-2 * Z_CLIP, 2 * Z_CLIP)  # a wild noisy z still gives a finite cell
        return lattice_from_log_metric(z * self.std + self.mean + size * DIAGONAL.to(z))


DIAGONAL = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
Z_CLIP = 5.0  # standard deviations: estimates of a clean lattice stay within the data's range


# ----------------------------------------------------------------------------- the diffusion


@dataclass
class NoisyCrystals:
    """A batch of crystals at one diffusion step each (species fixed)."""

    species: torch.Tensor  # (N,)
    frac: torch.Tensor  # (N, 3) in [0, 1)
    lattice_z: torch.Tensor  # (B, 6)
    num_atoms: torch.Tensor  # (B,)
    batch: torch.Tensor  # (N,) crystal of each atom
    ptr: torch.Tensor  # (B + 1,) first atom of each crystal


class CrystalDiffusion(nn.Module):
    """Denoiser, band-gap predictor, noise schedules and lattice scaling of one model."""

    def __init__(
        self,
        n_species: int,
        opts: TrainOptions,
        scaler: LatticeScaler,
        band_gap_mean: float = 0.0,
        band_gap_std: float = 1.0,
    ):
        super().__init__()
        self.opts = opts
        self.schedule = Schedule(opts.timesteps, opts.sigma_min, opts.sigma_max)
        self.scaler = scaler
        self.denoiser = Denoiser(
            n_species, opts.hidden, opts.layers, opts.cutoff, opts.max_neighbours
        )
        self.predictor = PropertyPredictor(
            n_species, opts.hidden, opts.predictor_layers, opts.cutoff, opts.max_neighbours
        )
        self.register_buffer("band_gap_stats", torch.tensor([band_gap_mean, band_gap_std]))

    # -- networks on a noisy batch

    def lattices(self, x: NoisyCrystals) -> torch.Tensor:
        return self.scaler.to_lattice(x.lattice_z, x.num_atoms)

    def denoise(self, x: NoisyCrystals, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coordinate score, lattice noise) at integer steps ``t`` (B,)."""
        scaled_score, lattice_eps = self.denoiser(
            x.species,
            x.frac,
            self.lattices(x),
            x.lattice_z,
            t / self.schedule.timesteps,
            x.batch,
            x.ptr,
        )
        return scaled_score / self.schedule.sigmas[t][x.batch, None], lattice_eps

    def band_gap(self, x: NoisyCrystals, t: torch.Tensor) -> torch.Tensor:
        """Predicted band gap (eV) of each crystal at steps ``t``."""
        mean, std = self.band_gap_stats
        return (
            self.predictor(
                x.species,
                x.frac,
                self.lattices(x),
                x.lattice_z,
                t / self.schedule.timesteps,
                x.batch,
                x.ptr,
            )
            * std
            + mean
        )

    # -- training

    def noised(
        self, batch: Batch, t: torch.Tensor
    ) -> tuple[NoisyCrystals, torch.Tensor, torch.Tensor]:
        """Crystals of ``batch`` noised to steps ``t``, the coordinate noise ``f_t - f_0``
        (unwrapped) and the lattice noise."""
        num_atoms = torch.diff(batch.ptr)
        sigma = self.schedule.sigmas[t][batch.batch, None]
        coord_noise = sigma * torch.randn_like(batch.frac_coords)
        alpha_bar = self.schedule.alpha_bars[t][:, None]
        lattice_eps = torch.randn(len(num_atoms), 6, device=t.device)
        z0 = self.scaler.to_z(batch.lattice, num_atoms)
        x = NoisyCrystals(
            batch.species,
            (batch.frac_coords + coord_noise) % 1.0,
            alpha_bar.sqrt() * z0 + (1 - alpha_bar).sqrt() * lattice_eps,
            num_atoms,
            batch.batch,
            batch.ptr,
        )
        return x, coord_noise, lattice_eps

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Denoising losses (coordinates, lattice) and the band-gap predictor's MSE."""
        n_crystals = len(batch.ptr) - 1
        t = torch.randint(1, self.schedule.timesteps + 1, (n_crystals,), device=batch.ptr.device)
        x, coord_noise, lattice_eps = self.noised(batch, t)
        sigma = self.schedule.sigmas[t][x.batch, None]
        target = sigma * wrapped_normal_score(coord_noise, sigma)
        score, lattice_pred = self.denoise(x, t)
        coords = ((score * sigma - target) ** 2).mean()
        lattice = ((lattice_pred - lattice_eps) ** 2).mean()
        return {"coords": coords, "lattice": lattice, "band_gap": self.band_gap_loss(batch)}

    def band_gap_loss(self, batch: Batch) -> torch.Tensor:
        """The predictor's MSE (standardised gaps) on ``batch`` noised to random steps: it
        sees crystals at every noise level, the clean ones (t = 0) included."""
        t = torch.randint(
            0, self.schedule.timesteps + 1, (len(batch.ptr) - 1,), device=batch.ptr.device
        )
        x, _, _ = self.noised(batch, t)
        mean, std = self.band_gap_stats
        gap = (self.band_gap(x, t) - mean) / std
        return ((gap - (batch.band_gap - mean) / std) ** 2).mean()

    # -- sampling

    def guidance(
        self, x: NoisyCrystals, t: torch.Tensor, target: float, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``scale * grad log N(target; predicted gap, 1 eV^2)`` w.r.t. coordinates and ``z``."""
        with torch.enable_grad():
            frac = x.frac.detach().requires_grad_(True)
            z = x.lattice_z.detach().requires_grad_(True)
            leaf = dataclasses.replace(x, frac=frac, lattice_z=z)
            log_p = -0.5 * ((self.band_gap(leaf, t) - target) ** 2).sum()
            grad_frac, grad_z = torch.autograd.grad(log_p, (frac, z))
        return scale * grad_frac, scale * grad_z

    def reverse_step(
        self,
        x: NoisyCrystals,
        step: int,
        deterministic: bool,
        noise: tuple[torch.Tensor, torch.Tensor] | None,
        target_band_gap: float | None = None,
        guidance_scale: float = 0.0,
    ) -> NoisyCrystals:
        """From step ``step`` to ``step - 1``; ``noise`` (coordinates, lattice) when stochastic."""
        s = self.schedule
        t = torch.full((len(x.num_atoms),), step, device=x.frac.device)
        score, eps = self.denoise(x, t)
        alpha_bar, alpha_bar_prev = s.alpha_bars[step], s.alpha_bars[step - 1]
        if target_band_gap is not None and guidance_scale > 0:
            grad_frac, grad_z = self.guidance(x, t, target_band_gap, guidance_scale)
            score = score + grad_frac
            eps = eps - (1 - alpha_bar).sqrt() * grad_z
        # Coordinates: the reverse SDE of the variance-exploding diffusion, or its ODE.
        dsigma2 = s.sigmas[step] ** 2 - s.sigmas[step - 1] ** 2
        # Lattice: DDPM's ancestral step, or DDIM's deterministic one, through z_0's estimate
        # (clipped, as DDPM clips images: 1/sqrt(alpha_bar) is large near t = T).
        z0 = ((x.lattice_z - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()).clamp(
            -Z_CLIP, Z_CLIP
        )
        if deterministic:
            frac = x.frac + 0.5 * dsigma2 * score
            z = alpha_bar_prev.sqrt() * z0 + (1 - alpha_bar_prev).sqrt() * eps
        else:
            coord_noise, lattice_noise = noise
            frac = x.frac + dsigma2 * score + dsigma2.sqrt() * coord_noise
            beta = 1 - alpha_bar / alpha_bar_prev
            mean = (
                alpha_bar_prev.sqrt() * beta * z0
                + (1 - beta).sqrt() * (1 - alpha_bar_prev) * x.lattice_z
            ) / (1 - alpha_bar)
            variance = beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
            z = mean + variance.sqrt() * lattice_noise if step > 1 else mean
        return dataclasses.replace(x, frac=frac % 1.0, lattice_z=z)

    def forward_step(self, x: NoisyCrystals, step: int) -> NoisyCrystals:
        """The deterministic sampler run backwards, from step ``step - 1`` to ``step``."""
        s = self.schedule
        t = torch.full((len(x.num_atoms),), step, device=x.frac.device)
        score, eps = self.denoise(x, t)
        alpha_bar, alpha_bar_prev = s.alpha_bars[step], s.alpha_bars[step - 1]
        frac = x.frac - 0.5 * (s.sigmas[step] ** 2 - s.sigmas[step - 1] ** 2) * score
        z0 = ((x.lattice_z - (1 - alpha_bar_prev).sqrt() * eps) / alpha_bar_prev.sqrt()).clamp(
            -Z_CLIP, Z_CLIP
        )
        z = alpha_bar.sqrt() * z0 + (1 - alpha_bar).sqrt() * eps
        return dataclasses.replace(x, frac=frac % 1.0, lattice_z=z)
