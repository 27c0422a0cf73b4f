"""What the three CrysTens models share: training data, per-sample noise, and sampling for
target compositions by filtering.

The models of Alverson et al. (2024) are unconditional, and so are ours. To sample a target
composition, :func:`sample_for_targets` draws tensors in batches, decodes each with the
paper's reconstruction (:func:`pipeline.represent.crystens.reconstruct`) and files every
decodable crystal under the target whose cell composition it has exactly; it stops when
every target has ``per_composition`` structures or after ``max_draws`` tensors. A target's
report reads: ``asked`` = ``per_composition``, ``decoded`` = decodable draws with the
target's composition, ``kept`` = those kept (at most ``per_composition``).

Every kept record carries, in ``properties``: ``latent_seed`` (the seed of its noise, see
:func:`noise`), ``crystens_space_group`` and the paper's quality metrics of its tensor
(``crystens_<metric>``, :class:`pipeline.represent.crystens.QualityMetrics`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.chemsys import composition_label
from pipeline.errors import PipelineInputError
from pipeline.formats import load_crystens
from pipeline.models.base import SampleResult, TargetComposition, TargetReport, latent_seed
from pipeline.records import CrystalRecord
from pipeline.represent import crystens


@dataclass(frozen=True)
class TrainingTensors:
    """Normalised CrysTens ``(N, 4, 64, 64)`` and the chemical system they belong to."""

    x: torch.Tensor
    elements: tuple[str, ...]


def load_training_tensors(path: Path) -> TrainingTensors:
    data = load_crystens(path)
    return TrainingTensors(torch.from_numpy(np.ascontiguousarray(data.x)).float(), data.elements)


def noise(seeds: Sequence[int], shape: tuple[int, ...]) -> torch.Tensor:
    """One standard-normal tensor of ``shape`` per seed, each from its own generator, so a
    sample's noise does not depend on the batch it was drawn in."""
    return torch.stack(
        [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    )


@dataclass(frozen=True)
class Decoded:
    """One generated tensor: its crystal (None when it does not decode) and quality."""

    record: CrystalRecord | None
    properties: dict[str, float]
    error: str = ""


def decode_tensor(tensor: np.ndarray, elements: Sequence[str], id: str, seed: int) -> Decoded:
    """Reconstruct a generated tensor; a tensor that is no crystal gives ``record=None``."""
    try:
        result = crystens.reconstruct(tensor, elements, id=id)
    except crystens.DecodeError as exc:
        return Decoded(None, {"latent_seed": float(seed)}, str(exc))
    properties = {"latent_seed": float(seed), "crystens_space_group": float(result.space_group)}
    properties.update({f"crystens_{k}": v for k, v in result.quality.as_dict().items()})
    return Decoded(result.record, properties)


def target_key(target: TargetComposition, elements: Sequence[str]) -> str:
    """The target's cell composition in the system's element order (``Mg2Mn2O6``)."""
    foreign = sorted(set(target.counts) - set(elements))
    if foreign:
        raise PipelineInputError(f"target {target.label}: elements {foreign} are not in {elements}")
    counts = [int(target.counts.get(el, 0)) for el in elements]
    if sum(counts) == 0 or sum(counts) > crystens.MAX_SITES:
        raise PipelineInputError(
            f"target {target.label}: a CrysTens holds 1 to {crystens.MAX_SITES} atoms"
        )
    return composition_label(elements, counts)


def sample_for_targets(
    generate: Callable[[list[int]], np.ndarray],
    elements: Sequence[str],
    targets: Sequence[TargetComposition],
    per_composition: int,
    model_name: str,
    seed: int,
    batch_size: int,
    max_draws: int,
) -> SampleResult:
    """Draw unconditional samples until each target has ``per_composition`` (see module doc).

    ``generate(seeds)`` returns one normalised tensor ``(4, 64, 64)`` per latent seed.
    """
    keys = [target_key(t, elements) for t in targets]
    reports = {key: TargetReport(t.label, asked=per_composition) for key, t in zip(keys, targets)}
    kept: dict[str, list[CrystalRecord]] = {key: [] for key in keys}
    drawn, decodable, compositions, errors = 0, 0, Counter(), Counter()
    progress = tqdm(total=max_draws, desc=f"{model_name} draws", mininterval=2.0)
    while drawn < max_draws and any(len(kept[k]) < per_composition for k in keys):
        seeds = [latent_seed(seed, i) for i in range(drawn, min(drawn + batch_size, max_draws))]
        tensors = generate(seeds)
        for i, (tensor, s) in enumerate(zip(tensors, seeds)):
            decoded = decode_tensor(tensor, elements, f"{model_name}-{drawn + i:06d}", s)
            if decoded.record is None:
                errors[decoded.error.split(":")[0]] += 1
                continue
            decodable += 1
            counts = Counter(decoded.record.species)
            key = composition_label(elements, [counts.get(el, 0) for el in elements])
            compositions[key] += 1
            if key not in reports:
                continue
            reports[key].decoded += 1
            if len(kept[key]) < per_composition:
                decoded.record.source = model_name
                decoded.record.id = f"{model_name}-{reports[key].label}-{len(kept[key]):05d}"
                decoded.record.properties.update(decoded.properties)
                kept[key].append(decoded.record)
        drawn += len(seeds)
        progress.update(len(seeds))
    progress.close()
    for key in keys:
        reports[key].kept = len(kept[key])
    print(
        json.dumps(
            {
                "model": model_name,
                "drawn": drawn,
                "decodable": decodable,
                "decode_errors": dict(errors),
                "top_compositions": dict(compositions.most_common(10)),
            }
        )
    )
    return SampleResult(
        records=[r for key in keys for r in kept[key]], reports=[reports[key] for key in keys]
    )
