"""Property-conditioned variational autoencoder, as the Si-slab generator of Hwang et al. (KIAS 2022).

Works on the point cloud of :mod:`pipeline.represent.pointcloud` labelled with a property
per structure (:mod:`pipeline.represent.labelled`). Three networks, trained in two phases:

1. **autoencoders** (``autoencoder_steps``): the *cell* autoencoder compresses the two
   lattice rows (a, b, c / 30 Å, angles / 180°) into ``cell_latent_dim`` numbers, the
   *basis* autoencoder the per-element block of atom coordinates (``sum(caps) x 3``, zero
   rows are empty slots) into ``basis_latent_dim``; both decode with a sigmoid, as the
   point cloud lies in [0, 1). Loss: squared error per structure.
2. **conditional VAE** (``cvae_steps``): on the concatenated latent codes of the frozen
   autoencoders (standardised per dimension over the training set), conditioned on
   ``[property (standardised), per-element one-hot atom counts]``. The encoder gives
   ``q(z | code, condition)``, the decoder reconstructs the code from ``z`` and the
   condition. Loss: squared error + ``beta`` * KL(q || N(0, I)).

Sampling for a target composition and property value: ``z`` from N(0, I) (``random``), or
on the great circle between the posterior means of two training structures (``slerp``);
the decoder gives a code, the autoencoders' decoders a point cloud. A structure is kept
when it decodes to a crystal of the target composition.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.errors import PipelineInputError
from pipeline.models.base import (
    GenerativeModel,
    SampleJob,
    SampleResult,
    TargetReport,
    TrainJob,
    latent_seed,
    options_from_mapping,
)
from pipeline.models.ccgan import _target_counts
from pipeline.models.training import (
    Checkpoints,
    LossLog,
    batches,
    restore_rng_state,
    rng_state,
    seed_everything,
)
from pipeline.represent.labelled import CONDITION_PROPERTIES, load_labelled
from pipeline.represent.pointcloud import LATTICE_ROWS, DecodeError, PointCloudEncoding

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainOptions:
    """``config["train"]["cvae"]``."""

    property: str = "formation_energy_per_atom"  # the condition: a column of the labelled data
    autoencoder_steps: int = 3000  # phase 1: cell and basis autoencoders
    cvae_steps: int = 3000  # phase 2: the conditional VAE on their codes
    batch_size: int = 64
    lr: float = 1e-3  # Adam, both phases
    cell_latent_dim: int = 4
    basis_latent_dim: int = 64
    latent_dim: int = 16  # the CVAE's z
    hidden: int = 512  # width of every hidden layer
    beta: float = 1.0  # weight of the KL term
    num_workers: int = 0  # DataLoader workers

    # Does not change the trained result, so a checkpoint stays valid when it changes.
    not_in_fingerprint = ("num_workers",)

    def __post_init__(self) -> None:
        if self.property not in CONDITION_PROPERTIES:
            raise ValueError(f"property {self.property!r}: use one of {CONDITION_PROPERTIES}")
        if self.autoencoder_steps < 1 or self.cvae_steps < 1 or self.batch_size < 2:
            raise ValueError("autoencoder_steps, cvae_steps must be >= 1 and batch_size >= 2")
        if min(self.cell_latent_dim, self.basis_latent_dim, self.latent_dim, self.hidden) < 1:
            raise ValueError("latent sizes and hidden must be >= 1")
        if self.beta < 0:
            raise ValueError("beta must be >= 0")


@dataclass(frozen=True)
class SampleOptions:
    """``config["sample"]["cvae"]``."""

    mode: str = "random"  # random | slerp
    # The property value asked for, in the property's unit; None: the mean over the
    # training structures of the target composition (over all of them if it has none).
    target_property: float | None = None
    # Per target composition label, the ids of the two training structures a slerp path
    # joins (an id that several structures share means the first of them); a target not
    # listed takes the first two training structures of its composition.
    slerp_pairs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.mode not in ("random", "slerp"):
            raise ValueError(f"mode {self.mode!r}: use random or slerp")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        for label, pair in self.slerp_pairs.items():
            if len(pair) != 2:
                raise ValueError(f"slerp_pairs[{label!r}] must name two training structures")


# ----------------------------------------------------------------------------- networks


def mlp(*sizes: int) -> nn.Sequential:
    """Dense layers of the given sizes, ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


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

    def state(self) -> dict:
        return {
            "cell": self.cell.state_dict(),
            "basis": self.basis.state_dict(),
            "cvae": self.cvae.state_dict(),
            "code_mean": self.code_mean.cpu(),
            "code_std": self.code_std.cpu(),
            "property_mean": self.property_mean,
            "property_std": self.property_std,
        }

    def load_state(self, state: Mapping, device: torch.device) -> None:
        self.cell.load_state_dict(state["cell"])
        self.basis.load_state_dict(state["basis"])
        self.cvae.load_state_dict(state["cvae"])
        self.code_mean, self.code_std = state["code_mean"].to(device), state["code_std"].to(device)
        self.property_mean, self.property_std = state["property_mean"], state["property_std"]


# ----------------------------------------------------------------------------- the model


class CVAE(GenerativeModel):
    name = "cvae"
    representation = "pointcloud_properties"

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, "train.cvae")
        device = job.device
        seed_everything(job.seed)

        labelled = load_labelled(job.data)
        data = labelled.data
        clouds = torch.from_numpy(data.x).float()
        counts = torch.from_numpy(data.counts).long()
        property_values = torch.from_numpy(labelled.values(opts.property)).double()
        if not torch.isfinite(property_values).all():
            raise PipelineInputError(f"{job.data}: {opts.property} has missing values")

        nets = Networks.create(data.encoding, opts)
        nets.property_mean = float(property_values.mean())
        nets.property_std = float(property_values.std(correction=0).clamp(min=1e-6))
        nets.to(device)
        opt_ae = torch.optim.Adam([*nets.cell.parameters(), *nets.basis.parameters()], lr=opts.lr)
        opt_cvae = torch.optim.Adam(nets.cvae.parameters(), lr=opts.lr)
        # The reparameterisation noise has its own generator, saved in the checkpoints, so
        # that nothing else drawing from the global one can change it.
        noise = torch.Generator(device).manual_seed(job.seed)

        checkpoints = Checkpoints.for_job(job, opts)
        state = checkpoints.load_latest(device)
        log, start = LossLog(), 0
        if state is not None:
            nets.load_state(state["networks"], device)
            opt_ae.load_state_dict(state["opt_ae"])
            opt_cvae.load_state_dict(state["opt_cvae"])
            restore_rng_state(state["rng"])
            noise.set_state(state["noise"].cpu())
            log, start = LossLog(state["losses"]), state["step"]
            print(f"resuming from {checkpoints.paths()[-1]} at step {start}")

        def save_checkpoint(step: int) -> None:
            checkpoints.save(
                step,
                {
                    "networks": nets.state(),
                    "opt_ae": opt_ae.state_dict(),
                    "opt_cvae": opt_cvae.state_dict(),
                    "rng": rng_state(),
                    "noise": noise.get_state(),
                    "losses": log.rows,
                },
            )

        total_steps = opts.autoencoder_steps + opts.cvae_steps
        t0 = time.perf_counter()
        progress = tqdm(total=total_steps, initial=start, desc="cvae", mininterval=2.0)

        # Phase 1: the two autoencoders, on the same batches.
        if start < opts.autoencoder_steps:
            loader = batches(
                (clouds,),
                opts.batch_size,
                job.seed,
                start_step=start,
                device=device,
                num_workers=opts.num_workers,
            )
            nets.cell.train(), nets.basis.train()
            for step in range(start, opts.autoencoder_steps):
                (x,) = next(loader)
                cell, basis = x[:, :LATTICE_ROWS].flatten(1), x[:, LATTICE_ROWS:].flatten(1)
                loss_cell = squared_error(nets.cell(cell), cell)
                loss_basis = squared_error(nets.basis(basis), basis)
                opt_ae.zero_grad(set_to_none=True)
                (loss_cell + loss_basis).backward()
                opt_ae.step()
                log.append(
                    step,
                    cell_reconstruction=loss_cell.item(),
                    basis_reconstruction=loss_basis.item(),
                )
                # The codes of phase 2 derive from the weights at the end of phase 1: save them.
                if (step + 1) % job.checkpoint_every == 0 or step + 1 == opts.autoencoder_steps:
                    save_checkpoint(step + 1)
                progress.update()
            start = opts.autoencoder_steps

        # Phase 2: the CVAE on the frozen autoencoders' codes of every training structure.
        nets.cell.eval(), nets.basis.eval()
        with torch.no_grad():
            raw = torch.cat(
                [
                    nets.raw_code(clouds[i : i + 4096].to(device))
                    for i in range(0, len(clouds), 4096)
                ]
            )
        nets.code_mean = raw.mean(dim=0)
        nets.code_std = raw.std(dim=0, correction=0).clamp(min=1e-6)
        codes = ((raw - nets.code_mean) / nets.code_std).cpu()
        conditions = nets.condition(property_values.to(device), counts.to(device)).cpu()
        loader = batches(
            (codes, conditions),
            opts.batch_size,
            job.seed + 1,
            start_step=start - opts.autoencoder_steps,
            device=device,
            num_workers=opts.num_workers,
        )
        nets.cvae.train()
        for step in range(start, total_steps):
            code, condition = next(loader)
            reconstruction, mean, log_var = nets.cvae(code, condition, noise)
            loss_reconstruction = squared_error(reconstruction, code)
            loss_kl = kl_divergence(mean, log_var)
            opt_cvae.zero_grad(set_to_none=True)
            (loss_reconstruction + opts.beta * loss_kl).backward()
            opt_cvae.step()
            log.append(step, code_reconstruction=loss_reconstruction.item(), kl=loss_kl.item())
            if (step + 1) % job.checkpoint_every == 0 or step + 1 == total_steps:
                save_checkpoint(step + 1)
            progress.update()
        progress.close()

        done = total_steps - (state["step"] if state else 0)
        if done > 0:
            print(f"{done} steps in {time.perf_counter() - t0:.1f} s on {device}")
        job.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": self.name,
                "options": dataclasses.asdict(opts),
                "elements": data.encoding.elements,
                "caps": data.encoding.caps,
                "networks": nets.state(),
                # What sampling needs of the training set: slerp end points, default targets.
                "train_ids": data.ids,
                "train_counts": counts,
                "train_codes": codes,
                "train_property": property_values,
            },
            job.model_path,
        )
        log.write_csv(job.losses_path)

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.cvae")
        nets, training = load_trained(job.model_path, job.device)
        encoding, train_opts = nets.encoding, nets.options
        property_key = f"target_{train_opts.property}"

        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            counts = _target_counts(target, encoding)
            value = (
                opts.target_property
                if opts.target_property is not None
                else training.mean_property(counts)
            )
            seeds = [latent_seed(job.seed, target_index, i) for i in range(job.per_composition)]
            if opts.mode == "random":
                z = torch.stack(
                    [
                        torch.randn(
                            train_opts.latent_dim, generator=torch.Generator().manual_seed(s)
                        )
                        for s in seeds
                    ]
                )
                extra = [{} for _ in seeds]
            else:
                pair = opts.slerp_pairs.get(target.label) or training.first_two(
                    counts, target.label
                )
                z0, z1 = (
                    training.posterior_mean(nets, structure_id, job.device).cpu()
                    for structure_id in pair
                )
                t = np.linspace(0.0, 1.0, job.per_composition)
                z = torch.stack([slerp(z0, z1, float(ti)) for ti in t])
                extra = [{"latent_t": float(ti)} for ti in t]
                print(f"{target.label}: slerp from {pair[0]} to {pair[1]}")

            report = TargetReport(target.label, asked=job.per_composition)
            for start in range(0, job.per_composition, opts.batch_size):
                z_batch = z[start : start + opts.batch_size].to(job.device)
                n = len(z_batch)
                condition = nets.condition(
                    torch.full((n,), value, dtype=torch.float64, device=job.device),
                    torch.tensor(counts, device=job.device).expand(n, -1),
                )
                with torch.no_grad():
                    x = nets.clouds(nets.cvae.decode(z_batch, condition))
                for j, cloud in enumerate(x.cpu().numpy()):
                    i = start + j
                    try:
                        record = encoding.decode(cloud, id=f"{self.name}-{target.label}-{i:05d}")
                    except DecodeError:
                        continue
                    report.decoded += 1
                    if encoding.atom_counts(record.species).tolist() != list(counts):
                        continue
                    record.source = self.name
                    # latent_seed draws z in random mode; on a slerp path, z is fixed by the
                    # pair and latent_t, and the seed only names the sample.
                    record.properties.update(
                        {"latent_seed": float(seeds[i]), property_key: float(value), **extra[i]}
                    )
                    result.records.append(record)
                    report.kept += 1
            result.reports.append(report)
        return result


def load_trained(model_path: Path, device: torch.device) -> tuple[Networks, TrainingSet]:
    """The networks (in eval mode, on ``device``) and training set of a trained ``model.pt``."""
    saved = torch.load(model_path, map_location="cpu", weights_only=False)
    if saved.get("model") != CVAE.name:
        raise PipelineInputError(f"{model_path} is not a {CVAE.name} model")
    options = options_from_mapping(TrainOptions, saved["options"], str(model_path))
    encoding = PointCloudEncoding(tuple(saved["elements"]), tuple(saved["caps"]))
    nets = Networks.create(encoding, options)
    nets.load_state(saved["networks"], torch.device("cpu"))
    nets.to(device).eval()
    training = TrainingSet(
        saved["train_ids"], saved["train_counts"], saved["train_codes"], saved["train_property"]
    )
    return nets, training


@dataclass(frozen=True)
class TrainingSet:
    """What a trained model keeps of its training structures, for sampling."""

    ids: list[str]
    counts: torch.Tensor  # (N, n_elements)
    codes: torch.Tensor  # (N, code_dim), standardised
    property_values: torch.Tensor  # (N,)

    def rows_of(self, counts: tuple[int, ...]) -> torch.Tensor:
        return torch.nonzero((self.counts == torch.tensor(counts)).all(dim=1)).flatten()

    def mean_property(self, counts: tuple[int, ...]) -> float:
        """Mean property of the training structures of a composition (of all, if none)."""
        rows = self.rows_of(counts)
        values = self.property_values[rows] if len(rows) else self.property_values
        return float(values.mean())

    def first_two(self, counts: tuple[int, ...], label: str) -> tuple[str, str]:
        rows = self.rows_of(counts)
        if len(rows) < 2:
            raise PipelineInputError(
                f"slerp for {label}: the training set has {len(rows)} structure(s) of it;"
                " name two training structures in sample.cvae.slerp_pairs"
            )
        return self.ids[int(rows[0])], self.ids[int(rows[1])]

    def posterior_mean(
        self, nets: Networks, structure_id: str, device: torch.device
    ) -> torch.Tensor:
        """The mean of ``q(z | code, condition)`` of one training structure."""
        if structure_id not in self.ids:
            raise PipelineInputError(f"slerp: {structure_id!r} is not a training structure")
        i = self.ids.index(structure_id)
        condition = nets.condition(
            self.property_values[i : i + 1].to(device), self.counts[i : i + 1].to(device)
        )
        with torch.no_grad():
            mean, _ = nets.cvae.posterior(self.codes[i : i + 1].to(device), condition)
        return mean[0]
