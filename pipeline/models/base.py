"""The interface every generative model of the pipeline implements.

A model plugs into the ``train`` and ``sample`` rules by subclassing
:class:`GenerativeModel` and adding one line to :mod:`pipeline.models.registry`:

* ``name``: its key in ``config["train"]["models"]`` and in the output paths
  (``results/train/<name>/``, ``results/samples/<name>/``), and the ``source`` of the
  records it generates;
* ``representation``: which encoded file it trains on, ``results/encoded/<representation>.npz``
  (``"pointcloud"``: :func:`pipeline.formats.load_encoded`);
* :meth:`GenerativeModel.train`: trains into ``job.out_dir`` (``model.pt``, ``losses.csv``)
  and resumes from the newest file in ``job.checkpoint_dir`` when rerun after an
  interruption;
* :meth:`GenerativeModel.sample`: generates structures for a list of
  :class:`TargetComposition` from a trained ``model.pt`` and returns them decoded, with
  how many were asked, decoded and kept per target.

Hyperparameters come from ``config["train"][<name>]`` (training) and
``config["sample"][<name>]`` (sampling) as plain mappings; a model turns them into its
own dataclass with :func:`options_from_mapping`, which rejects unknown keys. Everything
else (the CLIs, the loss-curve plot, writing the samples and the report) is shared.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from pipeline.errors import PipelineInputError

if TYPE_CHECKING:  # the Snakefile imports the registry: keep this module free of torch
    import torch

    from pipeline.records import CrystalRecord


@dataclass(frozen=True)
class TargetComposition:
    """A cell composition to generate, e.g. ``Mg2Mn2O6`` with ``{"Mg": 2, "Mn": 2, "O": 6}``."""

    label: str
    counts: Mapping[str, int]


@dataclass
class TargetReport:
    """What sampling one target gave: structures asked for, decodable, kept by the model's checks."""

    label: str
    asked: int = 0
    decoded: int = 0
    kept: int = 0


@dataclass
class SampleResult:
    """Kept structures (``source`` = model name, ``properties["latent_seed"]`` set) and one
    :class:`TargetReport` per target, in the order of the targets."""

    records: list[CrystalRecord] = field(default_factory=list)
    reports: list[TargetReport] = field(default_factory=list)


@dataclass(frozen=True)
class TrainJob:
    """Everything :meth:`GenerativeModel.train` needs; the paths derive from ``out_dir``."""

    data: Path  # results/encoded/<representation>.npz
    out_dir: Path  # results/train/<name>/
    options: Mapping[str, Any]  # config["train"][<name>]
    seed: int
    device: torch.device
    checkpoint_every: int  # steps between checkpoints

    @property
    def model_path(self) -> Path:
        return self.out_dir / "model.pt"

    @property
    def losses_path(self) -> Path:
        """CSV, one row per step: ``step`` then one column per loss term."""
        return self.out_dir / "losses.csv"

    @property
    def plot_path(self) -> Path:
        return self.out_dir / "loss_curve.png"

    @property
    def checkpoint_dir(self) -> Path:
        """Not a declared Snakemake output, so a failed job does not delete it."""
        return self.out_dir / "checkpoints"


@dataclass(frozen=True)
class SampleJob:
    """Everything :meth:`GenerativeModel.sample` needs."""

    model_path: Path  # results/train/<name>/model.pt
    targets: Sequence[TargetComposition]
    per_composition: int  # structures to draw per target
    options: Mapping[str, Any]  # config["sample"][<name>]
    seed: int
    device: torch.device


class GenerativeModel(ABC):
    """A generative model of crystals: trains on an encoded dataset, samples compositions."""

    name: ClassVar[str]
    representation: ClassVar[str]

    @abstractmethod
    def train(self, job: TrainJob) -> None:
        """Train; write ``job.model_path`` and ``job.losses_path`` at the end.

        Must checkpoint into ``job.checkpoint_dir`` every ``job.checkpoint_every`` steps
        and, when a checkpoint of the same data, options and seed is there, continue from
        it so that the result equals an uninterrupted run.
        """

    @abstractmethod
    def sample(self, job: SampleJob) -> SampleResult:
        """Draw ``job.per_composition`` structures per target and keep the good ones.

        A generated tensor that does not decode to a crystal is dropped and counted (it
        is not in ``decoded``), never raised.
        """


def latent_seed(seed: int, *indices: int) -> int:
    """A 32-bit seed per generated structure, from which it can be drawn again.

    ``indices`` place the structure in its sampling run (target and sample, or draw).
    Stored as ``properties["latent_seed"]`` of every sample, whatever the model.
    """
    return int(np.random.SeedSequence([seed, *indices]).generate_state(1)[0])


def target_counts(
    target: TargetComposition, elements: Sequence[str], caps: Sequence[int]
) -> tuple[int, ...]:
    """The target's atom count of each element, in the order of ``elements``; a foreign
    element, a count over its cap or an empty target is an input error."""
    foreign = sorted(set(target.counts) - set(elements))
    counts = tuple(int(target.counts.get(el, 0)) for el in elements)
    over = [el for el, n, cap in zip(elements, counts, caps) if n > cap]
    if foreign or over or sum(counts) == 0:
        raise PipelineInputError(
            f"target {target.label}: the model generates {dict(zip(elements, caps))}"
            f" at most (foreign elements {foreign}, over the cap {over})"
        )
    return counts


Options = TypeVar("Options")


def options_from_mapping(cls: type[Options], values: Mapping[str, Any], where: str) -> Options:
    """Build the options dataclass ``cls`` from a config mapping; unknown keys are an error.

    Lists become tuples so the options stay hashable and compare equal after a YAML or
    JSON round trip.
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise PipelineInputError(f"{where}: unknown options {unknown}; known: {sorted(known)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise PipelineInputError(f"{where}: {exc}") from None
