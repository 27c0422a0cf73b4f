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
keeps its template's space group by construction.

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
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
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
from pipeline.models.egnn import Denoiser
from pipeline.models.graph_diffusion_process import Schedule, wrapped_normal_score
from pipeline.models.graph_diffusion_sampling import far_enough_apart
from pipeline.models.training import (
    ResumableBatches,
    batches,
    fit,
    save_model,
    seed_everything,
)
from pipeline.models.training import load_model as load_model_file
from pipeline.models.wyckoff_frames import (
    V_CLIP,
    Frame,
    LatticeScaler,
    lattice_features,
    make_frame,
    orbit_xyz,
)
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError
from pipeline.represent.substitution import substitute
from pipeline.represent.wyckoff import (
    Orbit,
    Template,
    WyckoffCrystal,
    compatible,
    crystals_from_arrays,
    crystals_to_arrays,
    decode,
    lattice_projection,
    load_wyckoff_dataset,
    random_template,
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
    min_distance: float  # Å; structures with atoms closer are dropped

    def __post_init__(self) -> None:
        if self.sampler not in ("stochastic", "deterministic"):
            raise ValueError(f"sampler {self.sampler!r}: use stochastic or deterministic")
        if not 0 <= self.max_vacancy_fraction < 1:
            raise ValueError("max_vacancy_fraction: from 0 to below 1")
        if self.parent_step < 0:
            raise ValueError("parent_step must be >= 0")
        if self.batch_size < 1 or self.p1_weight < 0 or self.min_distance < 0:
            raise ValueError("batch_size must be >= 1, p1_weight and min_distance >= 0")


class WyckoffDiffusion(nn.Module):
    """Denoiser, noise schedules and lattice scaling of one model."""

    def __init__(self, n_species: int, opts: TrainOptions, scaler: LatticeScaler):
        super().__init__()
        self.schedule = Schedule(opts.timesteps, opts.sigma_min, opts.sigma_max)
        self.scaler = scaler
        self.denoiser = Denoiser(
            n_species, opts.hidden, opts.layers, opts.cutoff, opts.max_neighbours
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


class WyckoffDiffusionModel(GenerativeModel):
    name = "wyckoff_diffusion"
    representation = "wyckoff"

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
        model, elements, templates, parents = load_model(job.model_path, job.device)
        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            check_elements(target, elements)
            seeds = [latent_seed(job.seed, target_index, i) for i in range(job.per_composition)]
            report = TargetReport(target.label, asked=job.per_composition)
            choices = template_choices(
                templates,
                parents,
                target,
                opts.p1_weight,
                opts.max_vacancy_fraction,
                np.random.default_rng([job.seed, target_index]),
            )
            for start in range(0, job.per_composition, opts.batch_size):
                chunk = seeds[start : start + opts.batch_size]
                drawn = [
                    draw_template(choices, target, seed, start + k) for k, seed in enumerate(chunk)
                ]
                records = generate(model, elements, drawn, chunk, opts, job.device)
                for k, record in enumerate(records):
                    if record is None or Counter(record.species) != Counter(
                        {el: int(n) for el, n in target.counts.items() if n}
                    ):
                        continue
                    report.decoded += 1
                    if not far_enough_apart(record, opts.min_distance):
                        continue
                    record.id = f"{self.name}-{target.label}-{start + k:05d}"
                    record.source = self.name
                    result.records.append(record)
                    report.kept += 1
            result.reports.append(report)
        return result


@dataclass(frozen=True)
class DrawnTemplate:
    """A template drawn for one sample, the cell it decodes to and where it came from."""

    template: Template
    cell: str  # conventional | primitive
    origin: str  # training | substitution | vacancy | pyxtal
    parent: WyckoffCrystal | None = None  # the substituted crystal the sample starts from
    changed: int = 0  # atoms the substitution changed


@dataclass(frozen=True)
class TemplateChoices:
    """What a target draws from: templates with probabilities, or substitutions in order."""

    drawn: list[DrawnTemplate]
    probabilities: np.ndarray | None  # None: sample i takes drawn[i % len(drawn)]


def template_choices(
    templates: dict[Template, int],
    parents: Sequence[WyckoffCrystal],
    target: TargetComposition,
    p1_weight: float,
    max_vacancy_fraction: float,
    rng: np.random.Generator,
) -> TemplateChoices:
    """The templates ``target`` draws from (steps 1 to 3 of the module docstring); empty
    when none gives one. ``rng`` orders substitutions that change equally many atoms."""
    weights = {t: n * (p1_weight if t.space_group == 1 else 1.0) for t, n in templates.items()}
    weights = {t: w for t, w in weights.items() if w > 0}
    exact = [(t, compatible(t, target.counts)) for t in weights]
    choices = {DrawnTemplate(t, cell, "training"): weights[t] for t, cell in exact if cell}
    if choices:
        probabilities = np.array(list(choices.values()), dtype=float)
        return TemplateChoices(list(choices), probabilities / probabilities.sum())
    candidates = [c for c in parents if weights.get(c.template, 0) > 0]
    for origin, vacancies in (("substitution", 0.0), ("vacancy", max_vacancy_fraction)):
        if origin == "vacancy" and not vacancies:
            break
        found: dict[tuple, DrawnTemplate] = {}
        for parent in candidates:
            for sub in substitute(parent, target.counts, vacancies):
                # the same crystal from several parents (the bundled set repeats prototypes)
                key = (sub.crystal.template, sub.cell, np.round(sub.crystal.lattice, 2).tobytes())
                drawn = DrawnTemplate(
                    sub.crystal.template, sub.cell, origin, sub.crystal, sub.changed
                )
                if key not in found or sub.changed < found[key].changed:
                    found[key] = drawn
        if found:
            subs = list(found.values())
            ties = rng.permutation(len(subs))
            order = sorted(range(len(subs)), key=lambda i: (subs[i].changed, ties[i]))
            return TemplateChoices([subs[i] for i in order], None)
    return TemplateChoices([], None)


def draw_template(
    choices: TemplateChoices, target: TargetComposition, seed: int, index: int
) -> DrawnTemplate:
    """The template of sample ``index`` of ``target`` from its ``choices``
    (:func:`template_choices`), or PyXtal's random one when there are none, from ``seed``."""
    rng = np.random.default_rng(seed)
    if choices.drawn and choices.probabilities is None:
        return choices.drawn[index % len(choices.drawn)]
    if choices.drawn:
        return choices.drawn[rng.choice(len(choices.drawn), p=choices.probabilities)]
    template = random_template(target.counts, rng)
    if template is None:  # every counts fit the general position of P1
        sites = tuple(sorted((el, 0) for el, n in target.counts.items() for _ in range(int(n))))
        template = Template(1, sites)
    return DrawnTemplate(template, compatible(template, target.counts) or "conventional", "pyxtal")


@torch.no_grad()
def generate(
    model: WyckoffDiffusion,
    elements: tuple[str, ...],
    drawn: list[DrawnTemplate],
    seeds: list[int],
    opts: SampleOptions,
    device: torch.device,
) -> list[CrystalRecord | None]:
    """Reverse diffusion of one crystal per drawn template, each from its own seed; None
    where a crystal does not decode. Drawn substitutions (all of the batch or none) start
    from their parent noised to ``opts.parent_step``, the others from noise."""
    from_parents = [d.parent is not None for d in drawn]
    if any(from_parents) and not all(from_parents):
        raise ValueError("a batch starts either from substituted parents or from noise")
    shells = [
        d.parent
        or WyckoffCrystal(
            "", d.template.space_group, (), tuple(Orbit(el, w) for el, w in d.template.sites)
        )
        for d in drawn
    ]
    frame = make_frame(shells, elements).to(device)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    orbits = [len(s.orbits) for s in shells]

    def draws(normal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters (uniform or normal) and lattice noise of every crystal, from its seed."""
        draw = torch.randn if normal else torch.rand
        xyz = torch.cat([draw(n, 3, generator=g) for g, n in zip(generators, orbits)])
        v = torch.stack([torch.randn(6, generator=g) for g in generators])
        return xyz.to(device) * frame.free, frame.project(v.to(device))

    xyz, v = draws(normal=False)
    first = model.schedule.timesteps
    if all(from_parents):
        first = min(opts.parent_step, first)
        features = torch.from_numpy(np.stack([lattice_features(c) for c in shells])).float()
        xyz = orbit_xyz(shells).to(device) * frame.free
        v = frame.project(model.scaler.to_v(features.to(device)))
        if first > 0:
            xyz_noise, v_noise = draws(normal=True)
            alpha_bar = model.schedule.alpha_bars[first]
            xyz = (xyz + model.schedule.sigmas[first] * xyz_noise) % 1.0
            v = alpha_bar.sqrt() * v + (1 - alpha_bar).sqrt() * v_noise
    for step in range(first, 0, -1):
        noise = None
        if opts.sampler == "stochastic":
            noise = draws(normal=True)
        xyz, v = model.reverse_step(frame, xyz, v, step, noise)
    lengths, angles = model.scaler.parameters_of(v, frame)
    records: list[CrystalRecord | None] = []
    offsets = np.concatenate([[0], np.cumsum(orbits)])
    for k, (shell, d) in enumerate(zip(shells, drawn)):
        params = (xyz[offsets[k] : offsets[k + 1]] * frame.free[offsets[k] : offsets[k + 1]]).cpu()
        crystal = dataclasses.replace(
            shell,
            lattice=tuple(float(x) for x in torch.cat([lengths[k], angles[k]]).cpu()),
            orbits=tuple(
                dataclasses.replace(o, xyz=tuple(float(x) for x in p))
                for o, p in zip(shell.orbits, params)
            ),
        )
        try:
            record = decode(crystal, primitive=d.cell == "primitive")
        except DecodeError:
            records.append(None)
            continue
        record.properties.update(
            {"latent_seed": float(seeds[k]), "space_group": float(d.template.space_group)}
        )
        record.provenance.update({"template": d.template.label, "template_source": d.origin})
        if d.parent is not None:
            record.provenance.update({"parent": d.parent.id, "changed_atoms": d.changed})
        records.append(record)
    return records


def load_model(
    path: Path, device: torch.device
) -> tuple[WyckoffDiffusion, tuple[str, ...], dict[Template, int], list[WyckoffCrystal]]:
    """A trained model (eval mode), its elements, its training templates with counts and
    its training crystals (the parents of substitutions)."""
    saved = load_model_file(path, WyckoffDiffusionModel.name, device)
    opts = options_from_mapping(TrainOptions, saved.options, str(path))
    elements = tuple(saved.metadata["elements"])
    model = WyckoffDiffusion(len(elements), opts, LatticeScaler())
    model.load_state_dict(saved.tensors["state"])
    templates = {
        Template(sg, tuple(map(tuple, sites))): n for sg, sites, n in saved.metadata["templates"]
    }
    arrays = {name: t.cpu().numpy() for name, t in saved.tensors["parents"].items()}
    parents = crystals_from_arrays(arrays, elements, saved.tensors["parent_ids"])
    return model.to(device).eval(), elements, templates, parents


def check_elements(target: TargetComposition, elements: tuple[str, ...]) -> None:
    foreign = sorted(el for el, n in target.counts.items() if n and el not in elements)
    if foreign or sum(target.counts.values()) == 0:
        raise PipelineInputError(
            f"target {target.label}: the model knows {list(elements)} (foreign elements {foreign})"
        )
