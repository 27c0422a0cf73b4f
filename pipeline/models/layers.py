"""Building blocks several generative models share: dense stacks, the WGAN gradient penalty,
the spherical interpolation of latent vectors."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn


def mlp(*sizes: int, activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Dense layers of the given sizes, ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """``E[(|grad critic(x_hat)| - 1)^2]`` on random points between real and generated
    samples (Gulrajani et al. 2017); in fp32, for the double backward."""
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """The point at fraction ``t`` of the great-circle arc from ``z0`` to ``z1``.

    The norm is interpolated linearly along the arc; parallel vectors fall back to the
    straight line.
    """
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.clamp(torch.dot(z0 / n0, z1 / n1), -1.0, 1.0)
    omega = float(torch.arccos(cos))
    if omega < 1e-6:
        return (1 - t) * z0 + t * z1
    direction = (math.sin((1 - t) * omega) * z0 / n0 + math.sin(t * omega) * z1 / n1) / math.sin(
        omega
    )
    return direction * ((1 - t) * n0 + t * n1)
