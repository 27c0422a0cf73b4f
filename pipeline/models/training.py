"""Plumbing shared by the training loops: device, seeding, batches, checkpoints, loss log.

Nothing here knows about a particular model. A loop uses it like this::

    device = resolve_device("auto")
    seed_everything(job.seed)
    checkpoints = Checkpoints(job.checkpoint_dir, fingerprint(job.data, options, job.seed))
    state = checkpoints.load_latest(device)          # None on a fresh start
    ...restore modules, optimisers, restore_rng_state(state["rng"]), log = LossLog(state["losses"])
    for step, batch in zip(range(start, steps), batches(...start_step=start)):
        ...
        log.append(step, loss_a=..., loss_b=...)
        if (step + 1) % job.checkpoint_every == 0:
            checkpoints.save(step + 1, {...modules, optimisers, "rng": rng_state(), "losses": log.rows})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.errors import PipelineInputError
from pipeline.plotting import new_figure, save_figure

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is an input error."""
    if name not in DEVICES:
        raise PipelineInputError(f"device {name!r}: use one of {DEVICES}")
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineInputError("train.device is 'cuda' but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every random generator a loop may draw from, for a checkpoint."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def fingerprint(data: Path, options: Mapping[str, Any], seed: int) -> str:
    """Identifies a training run: the data file's bytes, the options and the seed.

    A checkpoint is only resumed when its fingerprint matches, so changing the data or
    a hyperparameter starts afresh instead of continuing someone else's run. Options that
    only say how long to train or how often to checkpoint belong outside ``options``.
    """
    digest = hashlib.sha256()
    with open(data, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(json.dumps(dict(options), sort_keys=True, default=list).encode())
    digest.update(str(seed).encode())
    return digest.hexdigest()[:16]


class Checkpoints:
    """``step_<n>.pt`` files in one folder: written atomically, the newest one resumed.

    A checkpoint is a dict of tensors and plain Python objects (state dicts, RNG states,
    the loss log) plus ``step`` and ``fingerprint``; the two newest are kept.
    """

    keep = 2

    def __init__(self, folder: Path, run_fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = run_fingerprint

    @classmethod
    def for_job(cls, job: Any, options: Any) -> Checkpoints:
        """The checkpoints of a ``TrainJob`` trained with the options dataclass ``options``.

        Fields named in the options' ``not_in_fingerprint`` (``steps``, ``num_workers``,
        ...) do not change the trained result, so a checkpoint stays valid across them.
        """
        run_options = {
            k: v
            for k, v in dataclasses.asdict(options).items()
            if k not in getattr(options, "not_in_fingerprint", ())
        }
        return cls(job.checkpoint_dir, fingerprint(job.data, run_options, job.seed))

    def paths(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        found = self.folder.glob("step_*.pt") if self.folder.is_dir() else []
        return sorted(found, key=lambda p: int(p.stem.split("_")[1]))

    def save(self, step: int, state: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step_{step}.pt"
        tmp = path.with_name(path.name + ".tmp")
        torch.save({**state, "step": step, "fingerprint": self.fingerprint}, tmp)
        os.replace(tmp, path)  # a job killed while saving leaves the previous checkpoint intact
        for old in self.paths()[: -self.keep]:
            old.unlink()
        return path

    def clear(self) -> None:
        """Remove every checkpoint: a run that cannot continue them starts afresh."""
        for path in self.paths():
            path.unlink()

    def load_latest(self, device: torch.device) -> dict[str, Any] | None:
        """The newest checkpoint of this run, or None; other runs' checkpoints are removed."""
        for path in reversed(self.paths()):
            state = torch.load(path, map_location=device, weights_only=False)
            if state.get("fingerprint") == self.fingerprint:
                return state
            path.unlink()  # data, options or seed changed: this run cannot continue it
        return None


class TensorBatches(Dataset):
    """Tensors indexed by a whole batch of indices at once (one gather, no per-item collate)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)


class EpochBatchSampler(Sampler[list[int]]):
    """Endless shuffled batches; epoch ``e`` is a permutation seeded by ``(seed, e)``.

    Batch ``k`` is a function of ``(seed, k)`` alone, so a resumed run starting at
    ``start_step`` sees exactly the batches an uninterrupted run would have seen.
    The last incomplete batch of an epoch is dropped (BatchNorm needs full batches).
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0) -> None:
        if n < batch_size:
            raise PipelineInputError(
                f"{n} training samples are fewer than one batch of {batch_size}"
            )
        self.n, self.batch_size, self.seed, self.start_step = n, batch_size, seed, start_step
        self.per_epoch = n // batch_size

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            epoch, position = divmod(step, self.per_epoch)
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=generator)
            start = position * self.batch_size
            yield order[start : start + self.batch_size].tolist()
            step += 1


def batches(
    tensors: tuple[torch.Tensor, ...],
    batch_size: int,
    seed: int,
    start_step: int,
    device: torch.device,
    num_workers: int = 0,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless training batches on ``device``, from step ``start_step`` on.

    On CUDA the batches come from pinned memory and are copied asynchronously, so the
    next copy overlaps the current step; ``num_workers`` > 0 gathers them in background
    processes (worth it only for large samples).
    """
    loader = DataLoader(
        TensorBatches(*tensors),
        sampler=EpochBatchSampler(len(tensors[0]), batch_size, seed, start_step),
        batch_size=None,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        # Its own generator: the loader draws a worker seed when iterated, which must not
        # shift the global RNG (a resumed run would then differ from an uninterrupted one).
        generator=torch.Generator().manual_seed(seed),
    )
    for batch in loader:
        yield tuple(t.to(device, non_blocking=True) for t in batch)


class LossLog:
    """Per-step loss values; lives in the checkpoints so a resumed run keeps its history."""

    def __init__(self, rows: list[dict[str, float]] | None = None) -> None:
        self.rows: list[dict[str, float]] = list(rows or [])

    def append(self, step: int, **losses: float) -> None:
        self.rows.append({"step": step, **losses})

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.rows).to_csv(path, index=False, float_format="%.6g")


def plot_losses(losses: pd.DataFrame, path: Path, title: str) -> None:
    """One panel per loss column against the step: raw values faint, running mean solid."""
    columns = [c for c in losses.columns if c != "step"]
    fig, axes = new_figure(ncols=max(1, len(columns)), width=4.0, height=3.5)
    window = max(1, len(losses) // 50)
    for ax, column in zip(axes, columns):
        ax.plot(losses["step"], losses[column], color="tab:blue", alpha=0.25, lw=0.8)
        ax.plot(
            losses["step"],
            losses[column].rolling(window, min_periods=1).mean(),
            color="tab:blue",
            lw=1.5,
        )
        ax.set_xlabel("step")
        ax.set_title(column)
    fig.suptitle(title)
    save_figure(fig, path)
