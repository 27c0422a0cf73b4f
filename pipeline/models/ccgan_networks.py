"""The networks and losses of :mod:`pipeline.models.ccgan` (Kim et al. 2020): generator, critic,
classifier, the composition conditions, and the losses of one batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.models.layers import gradient_penalty
from pipeline.represent.pointcloud import LATTICE_ROWS, PointCloudEncoding

if TYPE_CHECKING:
    from pipeline.models.ccgan import TrainOptions

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


class CCGANLosses:
    """The losses of one batch: the critic's and real classification, then the generator's."""

    def __init__(
        self,
        generator: Generator,
        critic: Critic,
        classifier: Classifier,
        compositions: Compositions,
        opts: TrainOptions,
        autocast: Any,
    ) -> None:
        self.generator_net, self.critic_net, self.classifier = generator, critic, classifier
        self.compositions, self.opts, self.autocast = compositions, opts, autocast

    def critic(
        self, real: torch.Tensor, real_counts: torch.Tensor, real_classes: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Wasserstein estimate, gradient penalty and ``L_class`` on the real batch."""
        opts = self.opts
        fake_counts = self.compositions.draw(len(real), opts.random_condition_fraction)
        z = torch.randn(len(real), opts.latent_dim, device=real.device)
        with torch.no_grad(), self.autocast:
            fake = self.generator_net(z, self.compositions.onehot(fake_counts))
        fake = fake.float()
        with self.autocast:
            wasserstein = self.critic_net(real).mean() - self.critic_net(fake).mean()
            class_real = class_loss(self.classifier, real, real_counts, real_classes, opts.lambda_c)
        # fp32 for the double backward of the penalty, also under autocast.
        penalty = gradient_penalty(self.critic_net, real, fake)
        return {"wasserstein": wasserstein, "gradient_penalty": penalty, "class_real": class_real}

    def generator(self) -> dict[str, torch.Tensor]:
        """The generator's adversarial loss and ``L_class`` of a generated batch."""
        opts, compositions = self.opts, self.compositions
        device = compositions.class_counts.device
        fake_counts = compositions.draw(opts.batch_size, opts.random_condition_fraction)
        z = torch.randn(opts.batch_size, opts.latent_dim, device=device)
        with self.autocast:
            fake = self.generator_net(z, compositions.onehot(fake_counts))
            adversarial = -self.critic_net(fake).mean()
            class_fake = class_loss(
                self.classifier,
                fake,
                fake_counts,
                compositions.class_of(fake_counts),
                opts.lambda_c,
            )
        return {"generator": adversarial, "class_fake": class_fake}


def xavier_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
