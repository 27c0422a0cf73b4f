"""The networks of :mod:`pipeline.models.cvae` (Hwang et al. 2022): the cell and basis
autoencoders, the conditional VAE on their codes, and :class:`Networks`, which holds the three
with the standardisation of their inputs and gives the losses of a batch of each phase."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.models.layers import mlp
from pipeline.represent.pointcloud import LATTICE_ROWS, PointCloudEncoding

if TYPE_CHECKING:
    from pipeline.models.cvae import TrainOptions

# ----------------------------------------------------------------------------- networks


class Autoencoder(nn.Module):
    """Flattened rows of the point cloud <-> a latent code; the decoder ends in a sigmoid."""

    def __init__(self, n_in: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = mlp(n_in, hidden, hidden, latent_dim)
        self.decoder = nn.Sequential(mlp(latent_dim, hidden, hidden, n_in), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ConditionalVAE(nn.Module):
    """``q(z | code, c)`` and ``p(code | z, c)`` with Gaussian z of ``latent_dim``."""

    def __init__(self, code_dim: int, condition_dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = mlp(code_dim + condition_dim, hidden, hidden, 2 * latent_dim)
        self.decoder = mlp(latent_dim + condition_dim, hidden, hidden, code_dim)

    def posterior(
        self, code: torch.Tensor, condition: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | code, condition)``."""
        mean, log_var = self.encoder(torch.cat([code, condition], dim=1)).chunk(2, dim=1)
        return mean, log_var

    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, condition], dim=1))

    def forward(
        self, code: torch.Tensor, condition: torch.Tensor, noise: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, posterior mean and log-variance; ``z`` is drawn with ``noise``."""
        mean, log_var = self.posterior(code, condition)
        eps = torch.randn(mean.shape, generator=noise, device=mean.device)
        z = mean + eps * torch.exp(0.5 * log_var)  # reparameterisation
        return self.decode(z, condition), mean, log_var


def squared_error(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over features, averaged over the batch."""
    return (reconstruction - target).pow(2).flatten(1).sum(dim=1).mean()


def kl_divergence(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) summed over z, averaged over the batch."""
    return (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(dim=1)).mean()


# ----------------------------------------------------------------------------- the pieces together


@dataclass
class Networks:
    """The three networks and the statistics that turn data into their inputs."""

    encoding: PointCloudEncoding
    options: TrainOptions
    cell: Autoencoder
    basis: Autoencoder
    cvae: ConditionalVAE
    # Standardisation of the CVAE's inputs, set after phase 1 (code) and from the data (property).
    code_mean: torch.Tensor
    code_std: torch.Tensor
    property_mean: float
    property_std: float

    @classmethod
    def create(cls, encoding: PointCloudEncoding, options: TrainOptions) -> Networks:
        atom_values = 3 * sum(encoding.caps)
        code_dim = options.cell_latent_dim + options.basis_latent_dim
        return cls(
            encoding,
            options,
            cell=Autoencoder(3 * LATTICE_ROWS, options.cell_latent_dim, options.hidden),
            basis=Autoencoder(atom_values, options.basis_latent_dim, options.hidden),
            cvae=ConditionalVAE(
                code_dim, 1 + encoding.condition_size, options.latent_dim, options.hidden
            ),
            code_mean=torch.zeros(code_dim),
            code_std=torch.ones(code_dim),
            property_mean=0.0,
            property_std=1.0,
        )

    def to(self, device: torch.device) -> Networks:
        for net in (self.cell, self.basis, self.cvae):
            net.to(device)
        self.code_mean, self.code_std = self.code_mean.to(device), self.code_std.to(device)
        return self

    def eval(self) -> None:
        for net in (self.cell, self.basis, self.cvae):
            net.eval()

    def autoencode(self, clouds: torch.Tensor) -> torch.Tensor:
        """Point clouds through both autoencoders, ``decode(encode(x))``, without the CVAE."""
        return self.clouds(self.code(clouds))

    def raw_code(self, clouds: torch.Tensor) -> torch.Tensor:
        """The two autoencoders' latent codes of point clouds ``(B, R, 3)``, concatenated."""
        cell = self.cell.encode(clouds[:, :LATTICE_ROWS].flatten(1))
        basis = self.basis.encode(clouds[:, LATTICE_ROWS:].flatten(1))
        return torch.cat([cell, basis], dim=1)

    def code(self, clouds: torch.Tensor) -> torch.Tensor:
        """Standardised codes of point clouds: the CVAE's data."""
        return (self.raw_code(clouds) - self.code_mean) / self.code_std

    def clouds(self, code: torch.Tensor) -> torch.Tensor:
        """Point clouds ``(B, R, 3)`` of standardised codes (inverse of :meth:`code`)."""
        raw = code * self.code_std + self.code_mean
        cell_code, basis_code = raw.split(
            [self.options.cell_latent_dim, self.options.basis_latent_dim], dim=1
        )
        cell = self.cell.decode(cell_code).view(len(code), LATTICE_ROWS, 3)
        basis = self.basis.decode(basis_code).view(len(code), sum(self.encoding.caps), 3)
        return torch.cat([cell, basis], dim=1)

    def condition(self, property_values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """``[standardised property, per-element one-hot counts]``, the CVAE's condition."""
        scaled = (property_values - self.property_mean) / self.property_std
        onehot = torch.cat(
            [F.one_hot(counts[:, i], cap + 1).float() for i, cap in enumerate(self.encoding.caps)],
            dim=1,
        )
        return torch.cat([scaled.float().unsqueeze(1), onehot], dim=1)

    def autoencoder_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Phase 1: squared errors of the cell and basis autoencoders on point clouds ``x``."""
        cell, basis = x[:, :LATTICE_ROWS].flatten(1), x[:, LATTICE_ROWS:].flatten(1)
        return {
            "cell_reconstruction": squared_error(self.cell(cell), cell),
            "basis_reconstruction": squared_error(self.basis(basis), basis),
        }

    def cvae_losses(
        self, code: torch.Tensor, condition: torch.Tensor, noise: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Phase 2: the CVAE's reconstruction error of codes and its KL term."""
        reconstruction, mean, log_var = self.cvae(code, condition, noise)
        return {
            "code_reconstruction": squared_error(reconstruction, code),
            "kl": kl_divergence(mean, log_var),
        }

    def freeze_codes(
        self,
        clouds: torch.Tensor,
        property_values: torch.Tensor,
        counts: torch.Tensor,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fix the code standardisation from the trained autoencoders; the standardised codes
        and the conditions of the training structures (on the CPU), phase 2's data."""
        self.cell.eval(), self.basis.eval()
        with torch.no_grad():
            raw = torch.cat(
                [
                    self.raw_code(clouds[i : i + 4096].to(device))
                    for i in range(0, len(clouds), 4096)
                ]
            )
        self.code_mean = raw.mean(dim=0)
        self.code_std = raw.std(dim=0, correction=0).clamp(min=1e-6)
        codes = ((raw - self.code_mean) / self.code_std).cpu()
        conditions = self.condition(property_values.to(device), counts.to(device)).cpu()
        return codes, conditions

    def state_dict(self) -> dict:
        return {
            "cell": self.cell.state_dict(),
            "basis": self.basis.state_dict(),
            "cvae": self.cvae.state_dict(),
            "code_mean": self.code_mean.cpu(),
            "code_std": self.code_std.cpu(),
            "property_mean": self.property_mean,
            "property_std": self.property_std,
        }

    def load_state_dict(self, state: Mapping, device: torch.device | None = None) -> None:
        device = device or self.code_mean.device
        self.cell.load_state_dict(state["cell"])
        self.basis.load_state_dict(state["basis"])
        self.cvae.load_state_dict(state["cvae"])
        self.code_mean, self.code_std = state["code_mean"].to(device), state["code_std"].to(device)
        self.property_mean, self.property_std = state["property_mean"], state["property_std"]
