"""Sampling with :mod:`pipeline.models.wyckoff_diffusion`: which templates a target draws
from (training templates, substitutions of training crystals, PyXtal's random ones), the
template of each sample, and the reverse diffusion of a batch of drawn templates to crystals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from pipeline.models.base import TargetComposition
from pipeline.models.wyckoff_diffusion_process import WyckoffDiffusion
from pipeline.models.wyckoff_frames import lattice_features, make_frame, orbit_xyz
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError
from pipeline.represent.substitution import substitute
from pipeline.represent.wyckoff import (
    Orbit,
    Template,
    WyckoffCrystal,
    compatible,
    decode,
    random_template,
)

if TYPE_CHECKING:
    from pipeline.models.wyckoff_diffusion import SampleOptions


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
