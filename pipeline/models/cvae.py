"""Property-conditioned variational autoencoder, as the Si-slab generator of Hwang et al. (KIAS 2022).

Works on the point cloud of :mod:`pipeline.represent.pointcloud` labelled with a property
per structure (:func:`pipeline.formats.load_labelled`). Three networks, trained in two phases:

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pipeline.errors import PipelineInputError
from pipeline.formats import CONDITION_PROPERTIES, load_labelled
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
from pipeline.models.cvae_networks import Networks
from pipeline.models.layers import slerp
from pipeline.models.model_files import load_model, save_model
from pipeline.models.training import GeneratorState, ResumableBatches, batches, fit, seed_everything
from pipeline.represent.pointcloud import DecodeError, PointCloudEncoding
from pipeline.settings import defaults_from_config

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
@defaults_from_config("train.cvae")
class TrainOptions:
    """``config["train"]["cvae"]``."""

    property: str  # the condition: a column of the labelled data
    autoencoder_steps: int  # phase 1: cell and basis autoencoders
    cvae_steps: int  # phase 2: the conditional VAE on their codes
    batch_size: int
    lr: float  # Adam, both phases
    cell_latent_dim: int
    basis_latent_dim: int
    latent_dim: int  # the CVAE's z
    hidden: int  # width of every hidden layer
    beta: float  # weight of the KL term
    num_workers: int  # DataLoader workers

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
@defaults_from_config("sample.cvae")
class SampleOptions:
    """``config["sample"]["cvae"]``."""

    mode: str  # random | slerp
    # The property value asked for, in the property's unit; None: the mean over the
    # training structures of the target composition (over all of them if it has none).
    target_property: float | None
    # Per target composition label, the ids of the two training structures a slerp path
    # joins (an id that several structures share means the first of them); a target not
    # listed takes the first two training structures of its composition.
    slerp_pairs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    batch_size: int

    def __post_init__(self) -> None:
        if self.mode not in ("random", "slerp"):
            raise ValueError(f"mode {self.mode!r}: use random or slerp")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        for label, pair in self.slerp_pairs.items():
            if len(pair) != 2:
                raise ValueError(f"slerp_pairs[{label!r}] must name two training structures")


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

        autoencoder_batches = ResumableBatches(
            lambda start: batches(
                (clouds,),
                opts.batch_size,
                job.seed,
                start_step=start,
                device=device,
                num_workers=opts.num_workers,
            )
        )
        phase2: dict[str, Any] = {}

        def step(i: int) -> dict[str, torch.Tensor]:
            if i < opts.autoencoder_steps:  # phase 1: the two autoencoders, same batches
                (x,) = autoencoder_batches.next(i)
                nets.cell.train(), nets.basis.train()
                losses = nets.autoencoder_losses(x)
                opt_ae.zero_grad(set_to_none=True)
                (losses["cell_reconstruction"] + losses["basis_reconstruction"]).backward()
                opt_ae.step()
                return losses
            if not phase2:  # phase 2 begins (or resumes): the frozen autoencoders' codes
                codes, conditions = nets.freeze_codes(clouds, property_values, counts, device)
                phase2.update(codes=codes)
                phase2["batches"] = batches(
                    (codes, conditions),
                    opts.batch_size,
                    job.seed + 1,
                    start_step=i - opts.autoencoder_steps,
                    device=device,
                    num_workers=opts.num_workers,
                )
                nets.cvae.train()
            code, condition = next(phase2["batches"])
            losses = nets.cvae_losses(code, condition, noise)
            opt_cvae.zero_grad(set_to_none=True)
            (losses["code_reconstruction"] + opts.beta * losses["kl"]).backward()
            opt_cvae.step()
            return losses

        total_steps = opts.autoencoder_steps + opts.cvae_steps
        state = {
            "networks": nets,
            "opt_ae": opt_ae,
            "opt_cvae": opt_cvae,
            "noise": GeneratorState(noise),
        }
        # The codes of phase 2 derive from the weights at the end of phase 1: save them.
        fit(job, opts, state, step, total_steps, self.name, checkpoint_at={opts.autoencoder_steps})
        if not phase2:  # resumed from the last checkpoint: nothing left to train
            phase2["codes"], _ = nets.freeze_codes(clouds, property_values, counts, device)
        save_model(
            job.model_path,
            self,
            opts,
            {
                "networks": nets.state_dict(),
                # What sampling needs of the training set: slerp end points, default targets.
                "train_ids": [str(i) for i in data.ids],
                "train_counts": counts,
                "train_codes": phase2["codes"],
                "train_property": property_values,
            },
            elements=data.encoding.elements,
            caps=data.encoding.caps,
        )

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.cvae")
        nets, training = load_trained(job.model_path, job.device)
        encoding, train_opts = nets.encoding, nets.options
        property_key = f"target_{train_opts.property}"

        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            counts = target_counts(target, encoding.elements, encoding.caps)
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
    model_file = load_model(model_path, CVAE.name)
    saved, meta = model_file.tensors, model_file.metadata
    options = options_from_mapping(TrainOptions, model_file.options, str(model_path))
    encoding = PointCloudEncoding(tuple(meta["elements"]), tuple(meta["caps"]))
    nets = Networks.create(encoding, options)
    nets.load_state_dict(saved["networks"], torch.device("cpu"))
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
