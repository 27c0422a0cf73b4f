"""Graph equivariant diffusion over crystal structures, as DiffCSP (Jiao et al., NeurIPS 2023)
with an EGNN denoiser, in the spirit of the GenerativeModels project of Lopez et al.

A crystal is a periodic graph (:mod:`pipeline.represent.graph`). Its species, and so the
number of atoms, are fixed by the target composition; diffusion runs over

* the **fractional coordinates**, on the torus: ``f_t = (f_0 + sigma_t * eps) mod 1`` with
  ``sigma_t`` geometric from ``sigma_min`` to ``sigma_max`` (variance exploding). The
  denoiser predicts ``sigma_t`` times the score of the wrapped normal ``p(f_t | f_0)``;
  sampling starts from uniform coordinates and follows the reverse SDE (``stochastic``)
  or its probability-flow ODE (``deterministic``);
* the **lattice**, as six standardised parameters ``z`` (the entries of the symmetric
  matrix log of its metric, for a cell scaled to one atom): a DDPM with the cosine schedule
  that predicts the noise ``eps`` (ancestral sampling, or DDIM's deterministic update).

The denoiser is an E(n)-equivariant GNN (:class:`pipeline.models.egnn.Denoiser`) on the
noisy crystal's cutoff graph, rebuilt at every step. A second EGNN, the band-gap
predictor, is trained alongside (on the same batches, with its own optimiser) on crystals
noised to every step, labelled with CGCNN's band gaps (:mod:`pipeline.encode_graph`), and
then alone for ``guide_steps`` steps: a noise-aware regressor, as the noisy classifier of
classifier guidance. Sampling with ``target_band_gap`` set adds
``guidance_scale * grad log p(gap = target | x_t)``, a Gaussian likelihood around the
predictor's output, to both scores (classifier guidance, Dhariwal and Nichol 2021).

Sampling modes (``config["sample"]["graph_diffusion"]``): ``latent: random`` draws every
structure from its own seed; ``latent: interpolate`` runs the deterministic sampler from
noise on the path between two random starting points (a great circle for the lattice
noise, the shortest path on the torus for the coordinates). :func:`interpolate_crystals`
interpolates between two given crystals of the same composition: both are taken back to
noise level ``t_start`` with the deterministic sampler run forwards, the noises are
interpolated, and each point is denoised again.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch_geometric.data import Batch, Data
from tqdm import tqdm

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
from pipeline.models.egnn import Denoiser, PropertyPredictor
from pipeline.models.training import (
    Checkpoints,
    LossLog,
    batches,
    restore_rng_state,
    rng_state,
    seed_everything,
)
from pipeline.records import CrystalRecord
from pipeline.represent.graph import (
    DecodeError,
    GraphEncoding,
    lattice_from_log_metric,
    lattice_log_metric,
    load_graph_dataset,
)

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainOptions:
    """``config["train"]["graph_diffusion"]``."""

    steps: int = 2000
    guide_steps: int = 2000  # then steps of the band-gap predictor alone
    batch_size: int = 16
    lr: float = 1e-3  # Adam, denoiser and band-gap predictor
    hidden: int = 64  # node feature width of both EGNNs
    layers: int = 3  # EGNN layers of the denoiser
    predictor_layers: int = 3  # EGNN layers of the band-gap predictor
    cutoff: float = 5.0  # Å, edges of the crystal graph
    max_neighbours: int = 16  # nearest neighbours kept per atom
    timesteps: int = 100  # diffusion steps T
    sigma_min: float = 0.005  # coordinate noise at t = 1 (fractional units)
    sigma_max: float = 0.5  # at t = T: close to uniform on the torus
    lattice_weight: float = 1.0  # weight of the lattice term in the denoiser loss
    grad_clip: float = 1.0  # max gradient norm

    # A checkpoint continues a run whose schedule begins like its own: see ``continues``.
    not_in_fingerprint = ("steps", "guide_steps")

    def __post_init__(self) -> None:
        if self.guide_steps < 0:
            raise ValueError("guide_steps must be >= 0")
        if (
            min(
                self.steps,
                self.batch_size,
                self.hidden,
                self.layers,
                self.predictor_layers,
                self.max_neighbours,
                self.timesteps,
            )
            < 1
        ):
            raise ValueError(
                "steps, batch_size, hidden, layers, predictor_layers,"
                " max_neighbours and timesteps must be >= 1"
            )
        if not 0 < self.sigma_min < self.sigma_max or self.cutoff <= 0:
            raise ValueError("need 0 < sigma_min < sigma_max and cutoff > 0")


@dataclass(frozen=True)
class SampleOptions:
    """``config["sample"]["graph_diffusion"]``."""

    sampler: str = "stochastic"  # stochastic (reverse SDE / DDPM) | deterministic (ODE / DDIM)
    latent: str = "random"  # random | interpolate (between two random starts)
    batch_size: int = 64
    target_band_gap: float | None = None  # eV; steer towards it with the band-gap predictor
    guidance_scale: float = 30.0  # weight of the band-gap guidance
    min_distance: float = 0.5  # Å; structures with atoms closer are dropped

    def __post_init__(self) -> None:
        if self.sampler not in ("stochastic", "deterministic"):
            raise ValueError(f"sampler {self.sampler!r}: use stochastic or deterministic")
        if self.latent not in ("random", "interpolate"):
            raise ValueError(f"latent {self.latent!r}: use random or interpolate")
        if self.batch_size < 1 or self.guidance_scale < 0 or self.min_distance < 0:
            raise ValueError("batch_size must be >= 1, guidance_scale and min_distance >= 0")


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


# ----------------------------------------------------------------------------- the model


class GraphDiffusion(GenerativeModel):
    name = "graph_diffusion"
    representation = "graph"

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, "train.graph_diffusion")
        device = job.device
        seed_everything(job.seed)

        data = load_graph_dataset(job.data)
        graphs = training_graphs(data)
        if len(graphs) < opts.batch_size:
            raise PipelineInputError(
                f"{job.data}: {len(graphs)} crystals are fewer than one batch of {opts.batch_size}"
            )
        lattices = torch.from_numpy(data.lattice)
        scaler = LatticeScaler.fit(lattices, torch.from_numpy(data.num_atoms))
        model = CrystalDiffusion(
            len(data.elements),
            opts,
            scaler,
            float(data.band_gap.mean()),
            float(data.band_gap.std() or 1.0),
        )
        model.to(device)
        # The band-gap predictor is a separate classifier on noisy crystals (Dhariwal and
        # Nichol train theirs apart from the diffusion model): its own optimiser and gradient
        # clipping, so neither network's gradient norm scales the other's updates.
        optimisers = {
            "denoiser": torch.optim.Adam(model.denoiser.parameters(), lr=opts.lr),
            "predictor": torch.optim.Adam(model.predictor.parameters(), lr=opts.lr),
        }

        checkpoints = Checkpoints.for_job(job, opts)
        state = checkpoints.load_latest(device)
        if state is not None and not continues(state, opts):
            print(
                f"{checkpoints.paths()[-1]} (step {state['step']}) does not begin a run of"
                f" {opts.steps} joint steps, then guide steps: starting afresh"
            )
            checkpoints.clear()
            state = None
        start = state["step"] if state is not None else 0
        # Batches of crystal indices: batch k is the same whether or not the run was resumed.
        loader = batches(
            (torch.arange(len(graphs)),),
            opts.batch_size,
            job.seed,
            start_step=start,
            device=torch.device("cpu"),
        )
        log = LossLog()
        if state is not None:
            model.load_state_dict(state["model"])
            for name, optimiser in optimisers.items():
                optimiser.load_state_dict(state["optimisers"][name])
            restore_rng_state(state["rng"])
            log = LossLog(state["losses"])
            print(f"resuming from {checkpoints.paths()[-1]} at step {start}")

        model.train()
        t0 = time.perf_counter()
        total = opts.steps + opts.guide_steps
        for step in tqdm(
            range(start, total), initial=start, total=total, desc=self.name, mininterval=2.0
        ):
            (indices,) = next(loader)
            batch = Batch.from_data_list([graphs[i] for i in indices.tolist()]).to(device)
            if step < opts.steps:
                networks = ("denoiser", "predictor")
                losses = model.losses(batch)
                loss = (
                    losses["coords"] + opts.lattice_weight * losses["lattice"] + losses["band_gap"]
                )  # the two networks share no parameters
            else:
                # The guide alone: a third of a joint step's cost, and what decides how well
                # steering works is how much of the gap's spread within a composition it
                # learns (README), which takes it longer than the denoiser's training.
                networks = ("predictor",)
                losses = {"band_gap": model.band_gap_loss(batch)}
                loss = losses["band_gap"]
            for name in networks:
                optimisers[name].zero_grad(set_to_none=True)
            loss.backward()
            for name in networks:
                nn.utils.clip_grad_norm_(getattr(model, name).parameters(), opts.grad_clip)
                optimisers[name].step()
            log.append(step, **{k: v.item() for k, v in losses.items()})
            if (step + 1) % job.checkpoint_every == 0 or step + 1 == total:
                checkpoints.save(
                    step + 1,
                    {
                        "model": model.state_dict(),
                        "optimisers": {name: o.state_dict() for name, o in optimisers.items()},
                        "rng": rng_state(),
                        "losses": log.rows,
                        "joint_steps": opts.steps,
                    },
                )
        done = total - start
        if done > 0:
            elapsed = time.perf_counter() - t0
            print(
                f"{done} steps in {elapsed:.1f} s: {done * opts.batch_size / elapsed:.0f}"
                f" crystals/s on {device}"
            )
        job.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": self.name,
                "options": dataclasses.asdict(opts),
                "elements": data.elements,
                "state": model.state_dict(),
            },
            job.model_path,
        )
        log.write_csv(job.losses_path)

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.graph_diffusion")
        model, encoding = load_model(job.model_path, job.device)
        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            species = target_species(target, encoding.elements)
            seeds = [latent_seed(job.seed, target_index, i) for i in range(job.per_composition)]
            report = TargetReport(target.label, asked=job.per_composition)
            for start in range(0, job.per_composition, opts.batch_size):
                chunk = range(start, min(start + opts.batch_size, job.per_composition))
                if opts.latent == "interpolate":
                    positions = [i / max(job.per_composition - 1, 1) for i in chunk]
                    x, properties = interpolated_noise(
                        model, species, seeds[0], seeds[-1], positions, job.device
                    )
                    generators = None
                else:
                    generators = [torch.Generator().manual_seed(seeds[i]) for i in chunk]
                    x = initial_noise(model, species, generators, job.device)
                    properties = [{"latent_seed": float(seeds[i])} for i in chunk]
                x = denoise_from(model, x, model.schedule.timesteps, opts, generators)
                records = decoded(
                    model, encoding, x, [f"{self.name}-{target.label}-{i:05d}" for i in chunk]
                )
                for record, extra in zip(records, properties):
                    if record is None:
                        continue
                    report.decoded += 1
                    if not far_enough_apart(record, opts.min_distance):
                        continue
                    record.source = self.name
                    record.properties.update(extra)
                    if opts.target_band_gap is not None:
                        record.properties["target_band_gap"] = float(opts.target_band_gap)
                    result.records.append(record)
                    report.kept += 1
            result.reports.append(report)
        return result


# ----------------------------------------------------------------------------- helpers


def continues(state: dict, opts: TrainOptions) -> bool:
    """Whether a checkpoint ``state`` is a point on the schedule of ``opts``: ``steps`` joint
    steps, then ``guide_steps`` steps of the guide alone.

    A checkpoint of joint steps only continues any run with at least as many joint steps; one
    with guide steps, a run with the same number of joint steps before them (as with
    ``steps`` of the other models, a run asking for fewer steps than a checkpoint has taken
    ends at that checkpoint's model).
    """
    # Checkpoints from before guide steps existed hold joint steps only.
    joint_steps = state.get("joint_steps", state["step"])
    joint_only = state["step"] <= joint_steps
    return (joint_only and state["step"] <= opts.steps) or joint_steps == opts.steps


def training_graphs(data) -> list[Data]:
    """Node-only graphs (edges are built on the noisy crystals) with their labels."""
    starts = np.concatenate([[0], np.cumsum(data.num_atoms)])
    return [
        Data(
            species=torch.from_numpy(data.species[starts[k] : starts[k + 1]]),
            frac_coords=torch.from_numpy(data.frac_coords[starts[k] : starts[k + 1]] % 1.0).float(),
            lattice=torch.from_numpy(data.lattice[k]).float().unsqueeze(0),
            band_gap=torch.tensor([float(data.band_gap[k])]),
            num_nodes=int(data.num_atoms[k]),
        )
        for k in range(len(data.num_atoms))
    ]


def load_model(path: Path, device: torch.device) -> tuple[CrystalDiffusion, GraphEncoding]:
    """A trained model (eval mode) and the graph encoding of its elements."""
    saved = torch.load(path, map_location=device, weights_only=False)
    if saved.get("model") != GraphDiffusion.name:
        raise PipelineInputError(f"{path} is not a {GraphDiffusion.name} model")
    opts = options_from_mapping(TrainOptions, saved["options"], str(path))
    model = CrystalDiffusion(len(saved["elements"]), opts, LatticeScaler())
    model.load_state_dict(saved["state"])
    return model.to(device).eval(), GraphEncoding(tuple(saved["elements"]), opts.cutoff)


def target_species(target: TargetComposition, elements: Sequence[str]) -> list[int]:
    """Species indices of a target's atoms, grouped by element in the system's order."""
    foreign = sorted(set(el for el, n in target.counts.items() if n) - set(elements))
    if foreign or sum(target.counts.values()) == 0:
        raise PipelineInputError(
            f"target {target.label}: the model knows {list(elements)} (foreign elements {foreign})"
        )
    return [k for k, el in enumerate(elements) for _ in range(int(target.counts.get(el, 0)))]


def _crystals(species: list[int], n: int, device: torch.device) -> NoisyCrystals:
    """``n`` crystals of the same species, with zero coordinates and lattice noise."""
    n_atoms = len(species)
    return NoisyCrystals(
        species=torch.tensor(species, device=device).repeat(n),
        frac=torch.zeros(n * n_atoms, 3, device=device),
        lattice_z=torch.zeros(n, 6, device=device),
        num_atoms=torch.full((n,), n_atoms, device=device),
        batch=torch.arange(n, device=device).repeat_interleave(n_atoms),
        ptr=torch.arange(n + 1, device=device) * n_atoms,
    )


def initial_noise(
    model: CrystalDiffusion,
    species: list[int],
    generators: list[torch.Generator],
    device: torch.device,
) -> NoisyCrystals:
    """Uniform coordinates and Gaussian lattice noise, each crystal from its own generator."""
    x = _crystals(species, len(generators), device)
    frac = torch.cat([torch.rand(len(species), 3, generator=g) for g in generators])
    z = torch.stack([torch.randn(6, generator=g) for g in generators])
    return dataclasses.replace(x, frac=frac.to(device), lattice_z=z.to(device))


def interpolated_noise(
    model: CrystalDiffusion,
    species: list[int],
    seed_start: int,
    seed_end: int,
    positions: list[float],
    device: torch.device,
) -> tuple[NoisyCrystals, list[dict[str, float]]]:
    """Starting points between the noise of two seeds, at ``positions`` in [0, 1]."""
    ends = initial_noise(
        model,
        species,
        [torch.Generator().manual_seed(seed_start), torch.Generator().manual_seed(seed_end)],
        device,
    )
    n_atoms = len(species)
    frac0, frac1 = ends.frac[:n_atoms], ends.frac[n_atoms:]
    frac, z = interpolate_states(frac0, frac1, ends.lattice_z[0], ends.lattice_z[1], positions)
    x = dataclasses.replace(_crystals(species, len(positions), device), frac=frac, lattice_z=z)
    return x, [
        {"latent_seed": float(seed_start), "latent_seed_end": float(seed_end), "latent_t": float(p)}
        for p in positions
    ]


def interpolate_states(
    frac0: torch.Tensor,
    frac1: torch.Tensor,
    z0: torch.Tensor,
    z1: torch.Tensor,
    positions: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates along the shortest path on the torus, lattice noise on a great circle."""
    step = frac1 - frac0
    step = step - torch.round(step)
    frac = torch.cat([(frac0 + p * step) % 1.0 for p in positions])
    omega = torch.arccos((z0 @ z1 / (z0.norm() * z1.norm())).clamp(-1.0, 1.0))
    if float(omega) < 1e-6:
        z = torch.stack([z0 + p * (z1 - z0) for p in positions])
    else:
        z = torch.stack(
            [
                (torch.sin((1 - p) * omega) * z0 + torch.sin(p * omega) * z1) / torch.sin(omega)
                for p in positions
            ]
        )
    return frac, z


@torch.no_grad()
def denoise_from(
    model: CrystalDiffusion,
    x: NoisyCrystals,
    start_step: int,
    opts: SampleOptions,
    generators: list[torch.Generator] | None,
) -> NoisyCrystals:
    """Run the reverse diffusion from ``start_step`` to 0; stochastic noise of crystal ``k``
    comes from ``generators[k]`` (deterministic sampling, and interpolation, need none)."""
    deterministic = opts.sampler == "deterministic" or generators is None
    n_atoms = int(x.num_atoms[0])
    for step in range(start_step, 0, -1):
        noise = None
        if not deterministic:
            noise = (
                torch.cat([torch.randn(n_atoms, 3, generator=g) for g in generators]).to(
                    x.frac.device
                ),
                torch.stack([torch.randn(6, generator=g) for g in generators]).to(x.frac.device),
            )
        x = model.reverse_step(
            x, step, deterministic, noise, opts.target_band_gap, opts.guidance_scale
        )
    return x


def decoded(
    model: CrystalDiffusion, encoding: GraphEncoding, x: NoisyCrystals, ids: list[str]
) -> list[CrystalRecord | None]:
    """Records of denoised crystals (``predicted_band_gap`` set); None where one does not decode."""
    lattices = model.lattices(x)
    with torch.no_grad():
        gaps = model.band_gap(x, torch.zeros(len(ids), dtype=torch.long, device=x.frac.device))
    records: list[CrystalRecord | None] = []
    for k, id in enumerate(ids):
        nodes = slice(int(x.ptr[k]), int(x.ptr[k + 1]))
        graph = Data(
            species=x.species[nodes], frac_coords=x.frac[nodes], lattice=lattices[k : k + 1]
        )
        try:
            record = encoding.decode(graph, id=id)
        except DecodeError:
            records.append(None)
            continue
        record.properties["predicted_band_gap"] = float(gaps[k])
        records.append(record)
    return records


def far_enough_apart(record: CrystalRecord, min_distance: float) -> bool:
    """No two atoms (periodic images included) closer than ``min_distance`` Å."""
    if min_distance <= 0:
        return True
    centres, _, _, _ = record.to_structure().get_neighbor_list(min_distance)
    return len(centres) == 0


@torch.no_grad()
def interpolate_crystals(
    model_path: Path,
    a: CrystalRecord,
    b: CrystalRecord,
    n: int,
    t_start: int,
    device: torch.device | str = "cpu",
) -> list[CrystalRecord]:
    """``n`` crystals between ``a`` and ``b`` (same composition), through noise level ``t_start``.

    Both crystals go forward to ``t_start`` with the deterministic sampler run backwards;
    the ``n`` interpolated noisy crystals (``latent_t`` = 0..1) are denoised
    deterministically. Atom ``k`` of ``a`` pairs with atom ``k`` of ``b`` after sorting
    both by element; ``t_start`` near T forgets more of the two ends.
    """
    device = torch.device(device)
    model, encoding = load_model(model_path, device)
    if sorted(a.species) != sorted(b.species):
        raise PipelineInputError(
            f"{a.id} ({a.formula}) and {b.id} ({b.formula}) differ in composition"
        )
    if not 1 <= t_start <= model.schedule.timesteps:
        raise PipelineInputError(f"t_start must lie in 1..{model.schedule.timesteps}")
    ends = []
    for record in (a, b):
        order = sorted(
            range(record.natoms), key=lambda i: encoding.elements.index(record.species[i])
        )
        graph = encoding.encode(
            CrystalRecord(
                id=record.id,
                lattice=record.lattice,
                species=[record.species[i] for i in order],
                frac_coords=[record.frac_coords[i] for i in order],
            )
        )
        x = _crystals(graph.species.tolist(), 1, device)
        x = dataclasses.replace(
            x,
            frac=(graph.frac_coords.float() % 1.0).to(device),
            lattice_z=model.scaler.to_z(graph.lattice.float().to(device), x.num_atoms),
        )
        for step in range(1, t_start + 1):
            x = model.forward_step(x, step)
        ends.append(x)
    positions = [i / max(n - 1, 1) for i in range(n)]
    frac, z = interpolate_states(
        ends[0].frac, ends[1].frac, ends[0].lattice_z[0], ends[1].lattice_z[0], positions
    )
    x = dataclasses.replace(_crystals(ends[0].species.tolist(), n, device), frac=frac, lattice_z=z)
    x = denoise_from(model, x, t_start, SampleOptions(sampler="deterministic"), None)
    records = decoded(model, encoding, x, [f"{a.id}--{b.id}-{i:03d}" for i in range(n)])
    for record, p in zip(records, positions):
        if record is not None:
            record.source = GraphDiffusion.name
            record.properties["latent_t"] = float(p)
    return [r for r in records if r is not None]
