"""Random symmetric crystals (PyXtal): the baseline every learned generator is measured against.

AIRSS-style random search in the manner of Pickard & Needs (2011), with PyXtal's generator
(Fredericks et al., Comput. Phys. Commun. 261, 107810 (2021)): for each structure, a space
group is drawn uniformly from those of ``sample.pyxtal_random.space_groups`` (default
2-230) whose Wyckoff positions can hold the target's cell composition, and
``pyxtal.from_random`` places the atoms on a random Wyckoff assignment with random free
parameters in a random lattice of that group. The volume is ``volume_factor`` times the sum
of the atoms' covalent volumes, and no two atoms are closer than ``tolerance_factor`` times
PyXtal's atomic-radius tolerance.

Every sample is in the conventional cell of its group and has exactly the target's cell
composition; a draw whose structure shows a different space group than the one drawn (spglib
at :data:`pipeline.symmetry.STRICT_SYMPREC`, e.g. atoms only on special positions that
happen to form a supergroup) is redrawn, so each sample has its drawn group
(``properties["space_group_drawn"]``). Every structure drawn is handed over: closeness is
judged by the screen's validate stage, for every generator alike (PyXtal's own distance
tolerance above is part of how it places atoms, not a filter on the result).

Nothing is learned: :meth:`PyXtalRandom.train` reads no data and writes a ``model.pt`` that
says so (the PyXtal version and ``learned: False``) and an empty ``losses.csv``, so the
baseline goes through the ``train`` and ``sample`` rules like any model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version

import numpy as np

from pipeline.errors import PipelineInputError
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
from pipeline.models.model_files import load_model, save_model
from pipeline.models.training import LossLog, write_loss_log
from pipeline.records import CrystalRecord
from pipeline.settings import defaults_from_config
from pipeline.symmetry import STRICT_SYMPREC, space_group


@dataclass(frozen=True)
class TrainOptions:
    """None: the baseline learns nothing (``train.pyxtal_random`` stays empty)."""


@dataclass(frozen=True)
@defaults_from_config("sample.pyxtal_random")
class SampleOptions:
    space_groups: tuple[int, int]  # lowest and highest group number drawn
    volume_factor: float  # cell volume / sum of covalent atomic volumes (PyXtal's)
    tolerance_factor: float  # scales PyXtal's minimum interatomic distances (atomic radii)
    attempts: int  # space groups drawn per structure before it counts as not decoded

    def __post_init__(self) -> None:
        low, high = self.space_groups
        if not 1 <= low <= high <= 230:
            raise PipelineInputError(
                f"sample.pyxtal_random.space_groups: need 1 <= low <= high <= 230, not {low}, {high}"
            )
        if self.volume_factor <= 0 or self.tolerance_factor <= 0 or self.attempts < 1:
            raise PipelineInputError(
                "sample.pyxtal_random: volume_factor and tolerance_factor must be positive,"
                " attempts at least 1"
            )


@cache
def compatible_space_groups(counts: tuple[int, ...], low: int = 2, high: int = 230) -> list[int]:
    """Space groups ``low``..``high`` with a Wyckoff assignment for ``counts`` atoms per element
    in their conventional cell (PyXtal's ``check_compatible``)."""
    from pyxtal.symmetry import Group

    return [g for g in range(low, high + 1) if Group(g).check_compatible(list(counts))[0]]


def random_symmetric_crystal(
    counts: Mapping[str, int],
    group: int,
    rng: np.random.Generator,
    volume_factor: float = 1.1,
    tolerance_factor: float = 1.0,
):
    """One random crystal of space group ``group`` with ``counts`` atoms per element in its
    conventional cell, as a pymatgen ``Structure``; None when PyXtal finds no valid one."""
    from pyxtal import pyxtal
    from pyxtal.tolerance import Tol_matrix

    elements = [el for el, n in counts.items() if n > 0]
    crystal = pyxtal()
    try:
        crystal.from_random(
            3,
            group,
            elements,
            [int(counts[el]) for el in elements],
            factor=volume_factor,
            tm=Tol_matrix(prototype="atomic", factor=tolerance_factor),
            random_state=rng,
        )
    # PyXtal raises its own errors when it cannot place the atoms in a few tries.
    except Exception:  # noqa: BLE001
        return None
    if not crystal.valid:
        return None
    return crystal.to_pymatgen()


class PyXtalRandom(GenerativeModel):
    name = "pyxtal_random"
    representation = "pointcloud"  # not read: built by every run anyway

    def train(self, job: TrainJob) -> None:
        opts = options_from_mapping(TrainOptions, job.options, "train.pyxtal_random")
        save_model(job.model_path, self, opts, {}, pyxtal_version=version("pyxtal"), learned=False)
        write_loss_log(job, LossLog(), self.name)  # nothing to learn: no steps

    def sample(self, job: SampleJob) -> SampleResult:
        opts = options_from_mapping(SampleOptions, job.options, "sample.pyxtal_random")
        load_model(job.model_path, self.name)  # checks that it is this model's file

        def for_target(target: TargetComposition, target_index: int) -> BatchGenerator:
            counts = target.counts
            elements = [el for el, n in counts.items() if n > 0]
            groups = compatible_space_groups(
                tuple(int(counts[el]) for el in elements), *opts.space_groups
            )

            def generate(batch: TargetBatch) -> list[CrystalRecord | None]:
                return [
                    _record(counts, groups, seed, id_, opts)
                    for seed, id_ in zip(batch.seeds, batch.ids)
                ]

            return generate

        # Every structure is drawn from its own seed: no batching to gain.
        return self.sample_by_target(job, job.per_composition, for_target)


def _record(
    counts: Mapping[str, int], groups: Sequence[int], seed: int, id_: str, opts: SampleOptions
) -> CrystalRecord | None:
    """The structure drawn from ``seed`` (:func:`_draw`) as a record; None when none was."""
    drawn = _draw(counts, groups, np.random.default_rng(seed), opts) if groups else None
    if drawn is None:
        return None
    structure, group = drawn
    return CrystalRecord.from_structure(
        structure,
        id=id_,
        properties={"latent_seed": float(seed), "space_group_drawn": float(group)},
    )


def _draw(counts: Mapping[str, int], groups: Sequence[int], rng: np.random.Generator, opts):
    """A crystal of a random compatible group that shows exactly that group; None after
    ``opts.attempts`` draws without one."""
    for _ in range(opts.attempts):
        group = int(rng.choice(groups))
        structure = random_symmetric_crystal(
            counts, group, rng, opts.volume_factor, opts.tolerance_factor
        )
        if structure is not None and space_group(structure, STRICT_SYMPREC).number == group:
            return structure, group
    return None
