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
noised to every step, labelled with CGCNN's band gaps (the encode_graph stage), and
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch_geometric.data import Batch, Data

from pipeline.errors import PipelineInputError
from pipeline.formats import load_graph_dataset
from pipeline.models.base import (
    BatchGenerator,
    GenerativeModel,
    SampleJob,
    SampleResult,
    TargetBatch,
    TargetComposition,
    TrainJob,
    options_from_mapping,
)
from pipeline.models.graph_diffusion_process import CrystalDiffusion, LatticeScaler
from pipeline.models.graph_diffusion_sampling import (
    crystals_of,
    decoded,
    denoise_from,
    initial_noise,
    interpolate_states,
    interpolated_noise,
    target_species,
)
from pipeline.models.model_files import load_model, save_model
from pipeline.models.training import ResumableBatches, batches, fit, seed_everything
from pipeline.records import CrystalRecord
from pipeline.represent.graph import GraphEncoding
from pipeline.settings import defaults_from_config

# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
@defaults_from_config("train.graph_diffusion")
class TrainOptions:
    """``config["train"]["graph_diffusion"]``."""

    steps: int
    guide_steps: int  # then steps of the band-gap predictor alone
    batch_size: int
    lr: float  # Adam, denoiser and band-gap predictor
    hidden: int  # node feature width of both EGNNs
    layers: int  # EGNN layers of the denoiser
    predictor_layers: int  # EGNN layers of the band-gap predictor
    cutoff: float  # Å, edges of the crystal graph
    max_neighbours: int  # nearest neighbours kept per atom
    timesteps: int  # diffusion steps T
    sigma_min: float  # coordinate noise at t = 1 (fractional units)
    sigma_max: float  # at t = T: close to uniform on the torus
    lattice_weight: float  # weight of the lattice term in the denoiser loss
    grad_clip: float  # max gradient norm

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
@defaults_from_config("sample.graph_diffusion")
class SampleOptions:
    """``config["sample"]["graph_diffusion"]``."""

    sampler: str  # stochastic (reverse SDE / DDPM) | deterministic (ODE / DDIM)
    latent: str  # random | interpolate (between two random starts)
    batch_size: int
    target_band_gap: float | None  # eV; steer towards it with the band-gap predictor
    guidance_scale: float  # weight of the band-gap guidance

    def __post_init__(self) -> None:
        if self.sampler not in ("stochastic", "deterministic"):
            raise ValueError(f"sampler {self.sampler!r}: use stochastic or deterministic")
        if self.latent not in ("random", "interpolate"):
            raise ValueError(f"latent {self.latent!r}: use random or interpolate")
        if self.batch_size < 1 or self.guidance_scale < 0:
            raise ValueError("batch_size must be >= 1, guidance_scale >= 0")


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

        # Batches of crystal indices: batch k is the same whether or not the run was resumed.
        loader = ResumableBatches(
            lambda start: batches(
                (torch.arange(len(graphs)),),
                opts.batch_size,
                job.seed,
                start_step=start,
                device=torch.device("cpu"),
            )
        )

        def step(i: int) -> dict[str, torch.Tensor]:
            (indices,) = loader.next(i)
            batch = Batch.from_data_list([graphs[k] for k in indices.tolist()]).to(device)
            if i < opts.steps:
                networks = ("denoiser", "predictor")
                losses = model.losses(batch)
                loss = (
                    losses["coords"] + opts.lattice_weight * losses["lattice"] + losses["band_gap"]
                )  # the two networks share no parameters
            else:
                # The guide alone: a third of a joint step's cost, and what decides how well
                # steering works is how much of the gap's spread within a composition it
                # learns, which takes it longer than the denoiser's training.
                networks = ("predictor",)
                losses = {"band_gap": model.band_gap_loss(batch)}
                loss = losses["band_gap"]
            for name in networks:
                optimisers[name].zero_grad(set_to_none=True)
            loss.backward()
            for name in networks:
                nn.utils.clip_grad_norm_(getattr(model, name).parameters(), opts.grad_clip)
                optimisers[name].step()
            return losses

        model.train()
        fit(
            job,
            opts,
            {"model": model, **{f"opt_{name}": o for name, o in optimisers.items()}},
            step,
            opts.steps + opts.guide_steps,
            self.name,
            checkpoint_extra={"joint_steps": opts.steps},
            continues=lambda saved: continues(saved, opts),
        )
        save_model(
            job.model_path, self, opts, {"state": model.state_dict()}, elements=data.elements
        )

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.graph_diffusion")
        model, encoding = load_trained(job.model_path, job.device)

        def for_target(target: TargetComposition, target_index: int) -> BatchGenerator:
            species = target_species(target, encoding.elements)

            def generate(batch: TargetBatch) -> list[CrystalRecord | None]:
                if opts.latent == "interpolate":
                    last = job.per_composition - 1
                    x, properties = interpolated_noise(
                        model,
                        species,
                        batch.target_seeds[0],
                        batch.target_seeds[-1],
                        [i / max(last, 1) for i in batch.indices],
                        job.device,
                    )
                    generators = None
                else:
                    generators = [torch.Generator().manual_seed(seed) for seed in batch.seeds]
                    x = initial_noise(model, species, generators, job.device)
                    properties = [{"latent_seed": float(seed)} for seed in batch.seeds]
                x = denoise_from(model, x, model.schedule.timesteps, opts, generators)
                records = decoded(model, encoding, x, list(batch.ids))
                for record, extra in zip(records, properties):
                    if record is not None:
                        record.properties.update(extra)
                        if opts.target_band_gap is not None:
                            record.properties["target_band_gap"] = float(opts.target_band_gap)
                return records

            return generate

        return self.sample_by_target(job, opts.batch_size, for_target)


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


def load_trained(path: Path, device: torch.device) -> tuple[CrystalDiffusion, GraphEncoding]:
    """The networks of a trained ``model.pt`` (eval mode, on ``device``) and the graph
    encoding of its elements."""
    saved = load_model(path, GraphDiffusion.name, device)
    opts = options_from_mapping(TrainOptions, saved.options, str(path))
    elements = tuple(saved.metadata["elements"])
    model = CrystalDiffusion(len(elements), opts, LatticeScaler())
    model.load_state_dict(saved.tensors["state"])
    return model.to(device).eval(), GraphEncoding(elements, opts.cutoff)


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
    model, encoding = load_trained(model_path, device)
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
        x = crystals_of(graph.species.tolist(), 1, device)
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
    x = dataclasses.replace(
        crystals_of(ends[0].species.tolist(), n, device), frac=frac, lattice_z=z
    )
    x = denoise_from(model, x, t_start, SampleOptions(sampler="deterministic"), None)
    records = decoded(model, encoding, x, [f"{a.id}--{b.id}-{i:03d}" for i in range(n)])
    for record, p in zip(records, positions):
        if record is not None:
            record.source = GraphDiffusion.name
            record.properties["latent_t"] = float(p)
    return [r for r in records if r is not None]
