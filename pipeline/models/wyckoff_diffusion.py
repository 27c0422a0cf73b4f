"""Space-group constrained diffusion over Wyckoff parameters, as DiffCSP++ (Jiao et al., ICLR 2024).

A crystal is a template (space group, Wyckoff position of each orbit) with free parameters
(:mod:`pipeline.represent.wyckoff`). The template is fixed; diffusion moves only

* each orbit's free parameters ``xyz`` on the torus (variance exploding, wrapped normal,
  as :mod:`pipeline.models.graph_diffusion` moves every atom), with noise only on the
  parameters that move the orbit;
* the lattice as six standardised features, log lengths and angle deviations
  (:class:`~pipeline.models.wyckoff_frames.LatticeScaler`), a DDPM whose noise and
  predictions are projected onto the crystal system's subspace (tied lengths, fixed angles).

The denoiser is the EGNN of graph_diffusion on the full conventional cell, every atom
placed by its orbit's operations; its per-atom score is pulled back to the orbit's
parameters (:meth:`~pipeline.models.wyckoff_frames.Frame.orbit_vectors`). So every sample
keeps its template's space group by construction. With ``site_symmetry`` (as DiffCSP++
conditions on the Wyckoff positions), each atom's input features also say the site symmetry
of its Wyckoff position (:func:`pipeline.represent.wyckoff.site_symmetry_features`: its
operations by rotation type and its free parameters), which carries over to templates no
training crystal has.

Sampling a target cell composition draws each structure's template, in this order of
preference:

1. the training templates whose conventional or primitive cell has exactly that composition,
   weighted by how many training structures have it (P1 templates: ``p1_weight`` of that);
   the sample diffuses from noise;
2. if none has weight (a composition the training data lack: new, or held out), the
   training crystals with their cations (and anions) redistributed over the same orbits
   until the cell has the composition (:mod:`pipeline.represent.substitution`), nearest
   first: sample ``i`` takes the ``i``-th substitution in order of fewest changed atoms
   (ties in a random order from the seed). The sample starts from that crystal's
   parameters and lattice, noised to step ``parent_step`` of the diffusion, and is
   denoised from there: the known structure type, relaxed by the model to the new
   composition (SDEdit, Meng et al., ICLR 2022, on DiffCSP++'s template);
3. if none fits, the same with whole orbits left empty, up to ``max_vacancy_fraction`` of
   a role's sites (ordered-vacancy derivatives of the training structure types);
4. if none fits, PyXtal's random space group and Wyckoff assignment
   (:func:`~pipeline.represent.wyckoff.random_template`), diffused from noise.

This module holds the options, training, sampling and loading; the networks and the
diffusion steps are in :mod:`~pipeline.models.wyckoff_diffusion_process`, the choice of
templates and the reverse diffusion of a batch in
:mod:`~pipeline.models.wyckoff_diffusion_sampling`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from pipeline.errors import PipelineInputError
from pipeline.models.base import (
    BatchGenerator,
    GenerativeModel,
    SampleJob,
    SampleResult,
    TargetBatch,
    TargetComposition,
    TrainJob,
    check_target_elements,
    options_from_mapping,
)
from pipeline.models.model_files import load_model, save_model
from pipeline.models.training import ResumableBatches, batches, fit, seed_everything
from pipeline.models.wyckoff_diffusion_process import WyckoffDiffusion
from pipeline.models.wyckoff_diffusion_sampling import draw_template, generate, template_choices
from pipeline.models.wyckoff_frames import LatticeScaler, lattice_features, make_frame, orbit_xyz
from pipeline.records import CrystalRecord
from pipeline.represent.wyckoff import (
    Template,
    WyckoffCrystal,
    crystals_from_arrays,
    crystals_to_arrays,
    lattice_projection,
    load_wyckoff_dataset,
)
from pipeline.settings import defaults_from_config


@dataclass(frozen=True)
@defaults_from_config("train.wyckoff_diffusion")
class TrainOptions:
    """``config["train"]["wyckoff_diffusion"]``."""

    steps: int
    batch_size: int
    lr: float  # Adam
    hidden: int  # node feature width of the EGNN
    layers: int  # EGNN layers
    cutoff: float  # Å, edges of the crystal graph
    max_neighbours: int  # nearest neighbours kept per atom
    timesteps: int  # diffusion steps T
    sigma_min: float  # parameter noise at t = 1 (fractional units)
    sigma_max: float  # at t = T: close to uniform on the torus
    lattice_weight: float  # weight of the lattice term of the loss
    grad_clip: float  # max gradient norm
    site_symmetry: bool  # condition the denoiser on each atom's Wyckoff site symmetry

    not_in_fingerprint = ("steps",)

    def __post_init__(self) -> None:
        sizes = (self.steps, self.batch_size, self.hidden, self.layers, self.max_neighbours)
        if min(*sizes, self.timesteps) < 1:
            raise ValueError("steps, batch_size, hidden, layers, max_neighbours, timesteps >= 1")
        if not 0 < self.sigma_min < self.sigma_max or self.cutoff <= 0:
            raise ValueError("need 0 < sigma_min < sigma_max and cutoff > 0")


@dataclass(frozen=True)
@defaults_from_config("sample.wyckoff_diffusion")
class SampleOptions:
    """``config["sample"]["wyckoff_diffusion"]``."""

    sampler: str  # stochastic (reverse SDE / DDPM) | deterministic (ODE / DDIM)
    batch_size: int
    p1_weight: float  # weight of a P1 training template relative to a symmetric one
    max_vacancy_fraction: float  # of a role's sites a substituted crystal may leave empty
    parent_step: int  # diffusion step a substituted crystal is noised to (0: kept as is)

    def __post_init__(self) -> None:
        if self.sampler not in ("stochastic", "deterministic"):
            raise ValueError(f"sampler {self.sampler!r}: use stochastic or deterministic")
        if not 0 <= self.max_vacancy_fraction < 1:
            raise ValueError("max_vacancy_fraction: from 0 to below 1")
        if self.parent_step < 0:
            raise ValueError("parent_step must be >= 0")
        if self.batch_size < 1 or self.p1_weight < 0:
            raise ValueError("batch_size must be >= 1, p1_weight >= 0")


class WyckoffDiffusionModel(GenerativeModel):
    name = "wyckoff_diffusion"
    representation = "wyckoff"
    finetunes = True

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, "train.wyckoff_diffusion")
        device = job.device
        seed_everything(job.seed)
        crystals, elements = load_wyckoff_dataset(job.data)
        if len(crystals) < opts.batch_size:
            raise PipelineInputError(
                f"{job.data}: {len(crystals)} crystals are fewer than one batch of {opts.batch_size}"
            )
        features = np.stack([lattice_features(c) for c in crystals])
        projections = np.stack([lattice_projection(c.crystal_system) for c in crystals])
        model = WyckoffDiffusion(len(elements), opts, LatticeScaler.fit(features, projections))
        if job.init_from is not None:  # fine-tune: its weights and lattice scaling
            model.load_state_dict(load_model(job.init_from, self.name).tensors["state"])
        model.to(device)
        features_t = torch.from_numpy(features).float()
        optimiser = torch.optim.Adam(model.denoiser.parameters(), lr=opts.lr)

        loader = ResumableBatches(
            lambda start: batches(
                (torch.arange(len(crystals)),),
                opts.batch_size,
                job.seed,
                start,
                torch.device("cpu"),
            )
        )

        def step(i: int) -> dict[str, torch.Tensor]:
            (indices,) = loader.next(i)
            chosen = [crystals[k] for k in indices.tolist()]
            frame = make_frame(chosen, elements).to(device)
            v0 = frame.project(model.scaler.to_v(features_t[indices].to(device)))
            losses = model.losses(frame, orbit_xyz(chosen).to(device), v0)
            loss = losses["coords"] + opts.lattice_weight * losses["lattice"]
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.denoiser.parameters(), opts.grad_clip)
            optimiser.step()
            return losses

        model.train()
        fit(job, opts, {"model": model, "optimiser": optimiser}, step, opts.steps, self.name)
        templates = Counter(c.template for c in crystals)
        save_model(
            job.model_path,
            self,
            opts,
            {
                "state": model.state_dict(),
                "parents": {
                    name: torch.from_numpy(array)
                    for name, array in crystals_to_arrays(crystals, elements).items()
                },
                "parent_ids": [c.id for c in crystals],
            },
            elements=list(elements),
            templates=[(t.space_group, t.sites, n) for t, n in templates.items()],
        )

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.wyckoff_diffusion")
        trained = load_trained(job.model_path, job.device)

        def for_target(target: TargetComposition, target_index: int) -> BatchGenerator:
            check_target_elements(target, trained.elements)
            choices = template_choices(
                trained.templates,
                trained.parents,
                target,
                opts.p1_weight,
                opts.max_vacancy_fraction,
                np.random.default_rng([job.seed, target_index]),
            )

            def generate_batch(batch: TargetBatch) -> list[CrystalRecord | None]:
                drawn = [
                    draw_template(choices, target, seed, i)
                    for i, seed in zip(batch.indices, batch.seeds)
                ]
                return generate(
                    trained.model, trained.elements, drawn, list(batch.seeds), opts, job.device
                )

            return generate_batch

        return self.sample_by_target(job, opts.batch_size, for_target)


@dataclass(frozen=True)
class TrainedWyckoffDiffusion:
    """What sampling needs of a trained ``model.pt``: :func:`load_trained`."""

    model: WyckoffDiffusion  # eval mode
    elements: tuple[str, ...]
    templates: dict[Template, int]  # training templates with their counts
    parents: list[WyckoffCrystal]  # training crystals, the parents of substitutions


def load_trained(path: Path, device: torch.device) -> TrainedWyckoffDiffusion:
    """The networks of a trained ``model.pt`` (eval mode, on ``device``), its elements, its
    training templates and its training crystals."""
    saved = load_model(path, WyckoffDiffusionModel.name, device)
    # A model saved before the site-symmetry conditioning existed was trained without it.
    opts = options_from_mapping(TrainOptions, {"site_symmetry": False, **saved.options}, str(path))
    elements = tuple(saved.metadata["elements"])
    model = WyckoffDiffusion(len(elements), opts, LatticeScaler())
    model.load_state_dict(saved.tensors["state"])
    templates = {
        Template(sg, tuple(map(tuple, sites))): n for sg, sites, n in saved.metadata["templates"]
    }
    arrays = {name: t.cpu().numpy() for name, t in saved.tensors["parents"].items()}
    parents = crystals_from_arrays(arrays, elements, saved.tensors["parent_ids"])
    return TrainedWyckoffDiffusion(model.to(device).eval(), elements, templates, parents)
