"""Ionic substitution into the training crystals, ranked by data-mined probabilities.

The cheap source of a generator portfolio (GNoME's symmetry-aware partial substitutions,
Merchant et al., Nature 624, 80 (2023)): a target composition takes the structure types of
the system's known crystals. Every symmetric training crystal (space group above P1: in a
P1 crystal every atom is its own orbit, so its refillings would be arbitrary partial
substitutions) is refilled orbit by orbit, cations on cation orbits and anions on anion
orbits, until its conventional or primitive cell has exactly the target's composition
(:func:`pipeline.represent.substitution.substitute`; whole orbits may stay empty up to
``max_vacancy_fraction`` of a role's sites). The substitutions are ranked by the
probability that the target takes its parent's structure, from the ionic substitution
probabilities Hautier et al. mined from the ICSD (Inorg. Chem. 50, 656 (2011); pymatgen's
``SubstitutionProbability``, :func:`pipeline.represent.substitution.substitution_probability`),
with oxidation states from pymatgen's guesses; those below ``min_probability`` are pruned
and the parent crystal itself (nothing changed: a known structure) is no candidate
(:func:`pipeline.represent.substitution.rank_substitutions`).

Sample ``i`` of a target is its ``i``-th ranked substitution, exactly as substituted: the
parent's space group, lattice and free parameters with the new elements (the relaxation
moves the atoms and the cell to the new ions). When the target has fewer substitutions than
``per_composition``, the list starts again, each repeat rattled from its seed (every atom
moved by up to ``rattle`` Å, pymatgen's ``Structure.perturb``): a relaxation from the exact
substituted crystal keeps its symmetry, so a repeat is worth a relaxation only as a
symmetry-broken start, which can relax into a distorted variant of the type (octahedral
tilts, a Jahn-Teller distortion) the symmetric start cannot reach. A target without any
substitution gets no structure (asked, none decoded).

Each sample records ``provenance.parent`` (the training crystal), ``provenance.substitution``
(e.g. ``Mn->Mg x4, Mg->Mn x2``), ``provenance.template`` and ``template_source``
(``substitution`` or ``vacancy``), ``provenance.changed_atoms`` and ``rattled``, and
``properties.substitution_probability`` (absent where an ion is outside the data-mined table),
``properties.space_group`` and ``properties.substitution_rank`` (from 0).

Nothing is learned: :meth:`Substitution.train` stores the encoded training crystals
(``results/encoded/wyckoff.npz``) in ``model.pt``, like ``pyxtal_random`` writes an empty
loss log, so the source goes through the ``train`` and ``sample`` rules like any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

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
from pipeline.models.training import LossLog, write_loss_log
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError
from pipeline.represent.substitution import RankedSubstitution, rank_substitutions
from pipeline.represent.wyckoff import (
    crystals_from_arrays,
    crystals_to_arrays,
    decode,
    load_wyckoff_dataset,
)
from pipeline.settings import defaults_from_config


@dataclass(frozen=True)
class TrainOptions:
    """None: nothing is learned (no ``train.substitution`` section)."""


@dataclass(frozen=True)
@defaults_from_config("sample.substitution")
class SampleOptions:
    """``config["sample"]["substitution"]``."""

    min_probability: float  # substitutions less probable than this are pruned
    max_vacancy_fraction: float  # of a role's sites a substituted crystal may leave empty
    rattle: float  # Å, largest displacement of an atom in a repeated substitution

    def __post_init__(self) -> None:
        if not 0 <= self.min_probability < 1:
            raise PipelineInputError("sample.substitution.min_probability: from 0 to below 1")
        if not 0 <= self.max_vacancy_fraction < 1:
            raise PipelineInputError("sample.substitution.max_vacancy_fraction: from 0 to below 1")
        if self.rattle < 0:
            raise PipelineInputError("sample.substitution.rattle must be >= 0")


class Substitution(GenerativeModel):
    name = "substitution"
    representation = "wyckoff"  # the training crystals, the parents of substitutions

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, "train.substitution")
        crystals, elements = load_wyckoff_dataset(job.data)
        arrays = crystals_to_arrays(crystals, elements)
        save_model(
            job.model_path,
            self,
            opts,
            {
                "parents": {k: torch.from_numpy(v) for k, v in arrays.items()},
                "parent_ids": [c.id for c in crystals],
            },
            elements=list(elements),
            learned=False,
        )
        write_loss_log(job, LossLog(), self.name)  # nothing to learn: no steps

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.substitution")
        saved = load_model(job.model_path, self.name)
        elements = tuple(saved.metadata["elements"])
        arrays = {k: t.numpy() for k, t in saved.tensors["parents"].items()}
        parents = crystals_from_arrays(arrays, elements, saved.tensors["parent_ids"])
        symmetric = [c for c in parents if c.space_group > 1]

        def for_target(target: TargetComposition, target_index: int) -> BatchGenerator:
            check_target_elements(target, elements)
            ranked = rank_substitutions(
                symmetric,
                target.counts,
                opts.max_vacancy_fraction,
                opts.min_probability,
                np.random.default_rng([job.seed, target_index]),
            )

            def generate(batch: TargetBatch) -> list[CrystalRecord | None]:
                return [
                    substituted_record(ranked, i, seed, opts.rattle)
                    for i, seed in zip(batch.indices, batch.seeds)
                ]

            return generate

        # Every structure is a substitution or a seeded rattle of one: no batching to gain.
        return self.sample_by_target(job, job.per_composition, for_target)


def substituted_record(
    ranked: Sequence[RankedSubstitution], index: int, seed: int, rattle: float
) -> CrystalRecord | None:
    """Sample ``index``: the ``index``-th of ``ranked`` as substituted, or, from the second
    pass through the list on, rattled by up to ``rattle`` Å from ``seed``; None when
    ``ranked`` is empty or the crystal does not decode."""
    if not ranked:
        return None
    chosen = ranked[index % len(ranked)]
    sub = chosen.substitution
    try:
        record = decode(sub.crystal, primitive=sub.cell == "primitive")
    except DecodeError:
        return None
    rattled = index >= len(ranked) and rattle > 0
    if rattled:
        structure = record.to_structure().perturb(rattle, min_distance=0.0, seed=seed)
        record = CrystalRecord.from_structure(structure, id=record.id)
    record.properties.update(
        {
            "latent_seed": float(seed),
            "space_group": float(sub.crystal.space_group),
            "substitution_rank": float(index % len(ranked)),
        }
    )
    if chosen.probability is not None:
        record.properties["substitution_probability"] = chosen.probability
    record.provenance.update(
        {
            "parent": chosen.parent,
            "substitution": chosen.description,
            "template": sub.crystal.template.label,
            "template_source": "vacancy" if sub.vacancies else "substitution",
            "changed_atoms": str(sub.changed),
            "rattled": str(rattled).lower(),
        }
    )
    return record
