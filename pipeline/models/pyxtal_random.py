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
happen to form a supergroup) is redrawn, so each kept sample has its drawn group
(``properties["space_group_drawn"]``).

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
from pipeline.models.training import LossLog, load_model, save_model, write_loss_log
from pipeline.quality import structurally_valid
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
    min_distance: float  # Å; a structure with closer atoms is dropped

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
        result = SampleResult()
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            result.reports.append(
                self._sample_target(target_index, target.label, target.counts, job, opts, result)
            )
        return result

    def _sample_target(
        self,
        target_index: int,
        label: str,
        counts: Mapping[str, int],
        job: SampleJob,
        opts: SampleOptions,
        result: SampleResult,
    ) -> TargetReport:
        report = TargetReport(label, asked=job.per_composition)
        elements = [el for el, n in counts.items() if n > 0]
        groups = compatible_space_groups(
            tuple(int(counts[el]) for el in elements), *opts.space_groups
        )
        if not groups:
            return report
        for i in range(job.per_composition):
            seed = latent_seed(job.seed, target_index, i)
            rng = np.random.default_rng(seed)
            drawn = _draw(counts, groups, rng, opts)
            if drawn is None:
                continue
            structure, group = drawn
            report.decoded += 1
            if _too_close(structure, opts.min_distance):
                continue
            record = CrystalRecord.from_structure(
                structure,
                id=f"{self.name}-{label}-{i:05d}",
                source=self.name,
                properties={"latent_seed": float(seed), "space_group_drawn": float(group)},
            )
            result.records.append(record)
            report.kept += 1
        return report


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


def _too_close(structure, min_distance: float) -> bool:
    return min_distance > 0 and not structurally_valid(structure, min_distance)
