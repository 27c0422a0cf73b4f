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
  how many were asked, decoded and handed over per target. A model that generates each
  target's structures in batches, each structure from its own seed, implements only the
  batch (:meth:`GenerativeModel.sample_by_target`).

What a model hands over is everything it generated that decodes to a crystal of the
target's composition: no closeness or other validity filter, which the screen's validate
stage applies to every model alike (a model's own learned filter, such as ccgan's
classifier, is the model's and is counted as such).

Hyperparameters come from ``config["train"][<name>]`` (training) and
``config["sample"][<name>]`` (sampling) as plain mappings; a model turns them into its
own dataclass with :func:`options_from_mapping`, which rejects unknown keys. Everything
else (the CLIs, the loss-curve plot, writing the samples and the report) is shared.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.errors import PipelineInputError

if TYPE_CHECKING:  # the Snakefile imports the registry: keep this module free of torch
    import torch

    from pipeline.records import CrystalRecord


@dataclass(frozen=True)
class TargetComposition:
    """A cell composition to generate, e.g. ``Mg2Mn2O6`` with ``{"Mg": 2, "Mn": 2, "O": 6}``."""

    label: str
    counts: Mapping[str, int]


def read_targets(path: Path) -> list[TargetComposition]:
    """The targets a model is asked for: the ``selected`` rows of the compositions stage's
    ``targets.csv`` (:func:`pipeline.target_compositions.target_table`), element counts
    from its ``n_<El>`` columns."""
    if not path.is_file():
        raise PipelineInputError(f"targets file not found: {path}")
    table = pd.read_csv(path)
    missing = {"composition", "selected"} - set(table.columns)
    if missing:
        raise PipelineInputError(f"{path}: lacks columns {sorted(missing)}")
    elements = [c[2:] for c in table.columns if c.startswith("n_") and c[2:3].isupper()]
    return [
        TargetComposition(row["composition"], {el: int(row[f"n_{el}"]) for el in elements})
        for _, row in table[table["selected"].astype(bool)].iterrows()
    ]


@dataclass
class TargetReport:
    """What sampling one target gave: structures asked for, decoded to a crystal of the
    target's composition, and handed over (``kept``: all decoded ones, unless the model has
    a filter of its own, such as ccgan's classifier)."""

    label: str
    asked: int = 0
    decoded: int = 0
    kept: int = 0


@dataclass
class SampleResult:
    """Handed-over structures (``source`` = model name, ``properties["latent_seed"]`` set)
    and one :class:`TargetReport` per target, in the order of the targets."""

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
    # A trained model.pt of this model to continue from (a discovery round's fine-tune: only
    # for a model whose ``finetunes`` is True); None: from scratch.
    init_from: Path | None = None

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


@dataclass(frozen=True)
class TargetBatch:
    """One batch of a target's samples, as :meth:`GenerativeModel.sample_by_target` asks a
    model to generate it: samples ``indices`` of the target's ``per_composition``."""

    target: TargetComposition
    target_index: int  # position of the target in the job's targets
    indices: range  # sample numbers within the target
    ids: tuple[str, ...]  # ``<model>-<target label>-<index:05d>``, one per sample
    seeds: tuple[int, ...]  # latent seed of each sample (:func:`latent_seed`)
    target_seeds: tuple[int, ...]  # of every sample of the target, e.g. for interpolation


# Generates one batch: a record per sample of the batch, in its order, or None where the
# generated tensor does not decode to a crystal.
BatchGenerator = Callable[[TargetBatch], Sequence["CrystalRecord | None"]]


class GenerativeModel(ABC):
    """A generative model of crystals: trains on an encoded dataset, samples compositions."""

    name: ClassVar[str]
    representation: ClassVar[str]
    # Whether :meth:`train` continues from ``job.init_from`` (discovery rounds fine-tune such a
    # model on what they confirmed; the others keep their model from round to round).
    finetunes: ClassVar[bool] = False

    @abstractmethod
    def train(self, job: TrainJob) -> None:
        """Train; write ``job.model_path`` and ``job.losses_path`` at the end.

        Must checkpoint into ``job.checkpoint_dir`` every ``job.checkpoint_every`` steps
        and, when a checkpoint of the same data, options and seed is there, continue from
        it so that the result equals an uninterrupted run.
        """

    @abstractmethod
    def sample(self, job: SampleJob) -> SampleResult:
        """Draw ``job.per_composition`` structures per target and hand over every one that
        decodes to a crystal of the target's composition.

        A generated tensor that does not decode to a crystal is dropped and counted (it
        is not in ``decoded``), never raised.
        """

    def sample_by_target(
        self,
        job: SampleJob,
        batch_size: int,
        for_target: Callable[[TargetComposition, int], BatchGenerator],
    ) -> SampleResult:
        """The sampling loop of a model that draws every structure from its own seed.

        For each target (in order), ``for_target(target, target_index)`` checks it and
        returns the generator of its batches (so per-target work is done once); the
        target's ``job.per_composition`` samples are generated ``batch_size`` at a time.
        Sample ``i`` of target ``k`` has latent seed ``latent_seed(job.seed, k, i)`` and id
        ``<name>-<target label>-<i:05d>``, whatever the batch size. A record that is None
        or lacks the target's composition is not decoded; every other record is handed
        over, with this model as its ``source``.
        """
        result = SampleResult()
        n = job.per_composition
        for target_index, target in enumerate(tqdm(job.targets, desc="targets")):
            generate = for_target(target, target_index)
            seeds = tuple(latent_seed(job.seed, target_index, i) for i in range(n))
            wanted = Counter({el: int(c) for el, c in target.counts.items() if c})
            report = TargetReport(target.label, asked=n)
            for start in range(0, n, batch_size):
                indices = range(start, min(start + batch_size, n))
                batch = TargetBatch(
                    target,
                    target_index,
                    indices,
                    tuple(f"{self.name}-{target.label}-{i:05d}" for i in indices),
                    seeds[indices.start : indices.stop],
                    seeds,
                )
                records = generate(batch)
                for id_, record in zip(batch.ids, records, strict=True):
                    if record is None or Counter(record.species) != wanted:
                        continue
                    record.id = id_
                    record.source = self.name
                    result.records.append(record)
                    report.decoded += 1
                    report.kept += 1
            result.reports.append(report)
        return result


def latent_seed(seed: int, *indices: int) -> int:
    """A 32-bit seed per generated structure, from which it can be drawn again.

    ``indices`` place the structure in its sampling run (target and sample, or draw).
    Stored as ``properties["latent_seed"]`` of every sample, whatever the model.
    """
    return int(np.random.SeedSequence([seed, *indices]).generate_state(1)[0])


def check_target_elements(target: TargetComposition, elements: Sequence[str]) -> None:
    """An empty target, or one with an element the model does not know, is an input error."""
    foreign = sorted(el for el, n in target.counts.items() if n and el not in elements)
    if foreign or sum(target.counts.values()) == 0:
        raise PipelineInputError(
            f"target {target.label}: the model knows {list(elements)} (foreign elements {foreign})"
        )


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
