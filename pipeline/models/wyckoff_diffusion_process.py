"""The diffusion process of :mod:`pipeline.models.wyckoff_diffusion`: :class:`WyckoffDiffusion`
holds the EGNN denoiser, the noise schedules and the lattice scaling, gives the losses of a
training batch and takes one reverse sampling step.

With ``site_symmetry`` (DiffCSP++'s Wyckoff conditioning), every atom's node features also
carry the site symmetry of its Wyckoff position (:attr:`Frame.site`), so the denoiser knows
which atoms sit on which special positions of the template, also in a template it never saw.

The free Wyckoff parameters diffuse on the torus (variance exploding, wrapped normal scores,
noise only where a parameter moves its orbit); the six lattice features follow a DDPM whose
noise and predictions are projected onto the crystal system's subspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from pipeline.models.egnn import Denoiser
from pipeline.models.graph_diffusion_process import Schedule, wrapped_normal_score
from pipeline.models.wyckoff_frames import V_CLIP, Frame, LatticeScaler
from pipeline.represent.wyckoff import SITE_FEATURES

if TYPE_CHECKING:
    from pipeline.models.wyckoff_diffusion import TrainOptions


class WyckoffDiffusion(nn.Module):
    """Denoiser, noise schedules and lattice scaling of one model."""

    def __init__(self, n_species: int, opts: TrainOptions, scaler: LatticeScaler):
        super().__init__()
        self.schedule = Schedule(opts.timesteps, opts.sigma_min, opts.sigma_max)
        self.scaler = scaler
        self.site_symmetry = opts.site_symmetry
        self.denoiser = Denoiser(
            n_species,
            opts.hidden,
            opts.layers,
            opts.cutoff,
            opts.max_neighbours,
            node_features=SITE_FEATURES if opts.site_symmetry else 0,
        )

    def denoise(
        self, frame: Frame, xyz: torch.Tensor, v: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(score of the orbit parameters x sigma_t, projected lattice noise) at steps ``t``."""
        scaled_score, eps = self.denoiser(
            frame.species,
            frame.positions(xyz),
            self.scaler.cells(v, frame),
            v,
            t / self.schedule.timesteps,
            frame.batch,
            frame.ptr,
            frame.site if self.site_symmetry else None,
        )
        return frame.orbit_vectors(scaled_score), frame.project(eps)

    def losses(self, frame: Frame, xyz0: torch.Tensor, v0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Denoising losses of the free parameters and of the free lattice features."""
        device = xyz0.device
        t = torch.randint(1, self.schedule.timesteps + 1, (len(v0),), device=device)
        sigma = self.schedule.sigmas[t][frame.orbit_batch, None]
        noise = sigma * torch.randn_like(xyz0) * frame.free
        target = sigma * wrapped_normal_score(noise, sigma) * frame.free
        alpha_bar = self.schedule.alpha_bars[t][:, None]
        eps = frame.project(torch.randn_like(v0))
        v_t = alpha_bar.sqrt() * v0 + (1 - alpha_bar).sqrt() * eps
        score, eps_pred = self.denoise(frame, (xyz0 + noise) % 1.0, v_t, t)
        coords = ((score - target) ** 2).sum() / frame.free.sum().clamp(min=1)
        rank = torch.diagonal(frame.projection, dim1=1, dim2=2).sum()
        lattice = ((eps_pred - eps) ** 2).sum() / rank
        return {"coords": coords, "lattice": lattice}

    def reverse_step(
        self,
        frame: Frame,
        xyz: torch.Tensor,
        v: torch.Tensor,
        step: int,
        noise: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """From step ``step`` to ``step - 1``; ``noise`` (parameters, lattice) when stochastic."""
        s = self.schedule
        t = torch.full((len(v),), step, device=v.device)
        scaled_score, eps = self.denoise(frame, xyz, v, t)
        score = scaled_score / s.sigmas[step]
        alpha_bar, alpha_bar_prev = s.alpha_bars[step], s.alpha_bars[step - 1]
        dsigma2 = s.sigmas[step] ** 2 - s.sigmas[step - 1] ** 2
        v0 = ((v - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()).clamp(-V_CLIP, V_CLIP)
        if noise is None:
            xyz = xyz + 0.5 * dsigma2 * score
            v = alpha_bar_prev.sqrt() * v0 + (1 - alpha_bar_prev).sqrt() * eps
        else:
            xyz_noise, v_noise = noise
            xyz = xyz + dsigma2 * score + dsigma2.sqrt() * xyz_noise * frame.free
            beta = 1 - alpha_bar / alpha_bar_prev
            mean = (
                alpha_bar_prev.sqrt() * beta * v0 + (1 - beta).sqrt() * (1 - alpha_bar_prev) * v
            ) / (1 - alpha_bar)
            variance = beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
            v = mean + variance.sqrt() * frame.project(v_noise) if step > 1 else mean
        return xyz % 1.0, frame.project(v)
