"""The one training loop of every generative model, and what it needs.

A model's ``train`` builds its networks and optimisers (after :func:`seed_everything`, so the
initialisation derives from the seed), then hands :func:`fit` what to checkpoint and what one
step does::

    seed_everything(job.seed)
    ...networks, optimisers
    loader = ResumableBatches(lambda start: batches(tensors, opts.batch_size, job.seed, start, device))
    def step(i):                      # one optimiser step; returns its losses
        (x,) = loader.next(i)
        ...
        return {"loss": loss}
    fit(job, opts, {"net": net, "opt": opt}, step, total_steps=opts.steps, desc=name)
    save_model(job.model_path, self, opts, {"net": net.state_dict()}, elements=...)

:func:`fit` resumes the newest checkpoint of the same data, options and seed (modules,
optimisers, RNG states, the loss log), checkpoints every ``job.checkpoint_every`` steps,
writes ``losses.csv`` and ``loss_curve.png``. The trained model goes to its file with
:func:`pipeline.models.model_files.save_model`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from pipeline.errors import PipelineInputError
from pipeline.plotting import new_figure, save_figure

DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_FORMAT = 2  # the layout :func:`fit` writes


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is an input error."""
    if name not in DEVICES:
        raise PipelineInputError(f"device {name!r}: use one of {DEVICES}")
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineInputError("train.device is 'cuda' but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def mixed_precision(device: torch.device, enabled: bool) -> AbstractContextManager:
    """bfloat16 autocast on CUDA when ``enabled``; on a CPU full precision, always."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


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
        # Checkpoints of another layout cannot be continued.
        run_options["checkpoint_format"] = CHECKPOINT_FORMAT
        if getattr(job, "init_from", None) is not None:  # a fine-tune: of which model
            run_options["init_from"] = fingerprint(job.init_from, {}, 0)
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
        table = pd.DataFrame(self.rows, columns=None if self.rows else ["step"])
        table.to_csv(path, index=False, float_format="%.6g")


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


# ----------------------------------------------------------------------------- the loop


class GeneratorState:
    """A ``torch.Generator`` as something :func:`fit` can checkpoint."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.generator.set_state(state["state"].cpu())


class ResumableBatches:
    """Training batches from the step a run starts or resumes at.

    ``make(step)`` returns the batches of a run from ``step`` on (see :func:`batches`); it
    is called on the first :meth:`next`, with that step, so a resumed run draws what an
    uninterrupted one would have.
    """

    def __init__(self, make: Callable[[int], Iterator[tuple[torch.Tensor, ...]]]) -> None:
        self.make = make
        self._batches: Iterator[tuple[torch.Tensor, ...]] | None = None

    def next(self, step: int) -> tuple[torch.Tensor, ...]:
        if self._batches is None:
            self._batches = self.make(step)
        return next(self._batches)


StepFunction = Callable[[int], Mapping[str, "torch.Tensor | float"]]


def fit(
    job: Any,
    options: Any,
    state: Mapping[str, Any],
    step: StepFunction,
    total_steps: int,
    desc: str,
    *,
    checkpoint_extra: Mapping[str, Any] | None = None,
    continues: Callable[[dict[str, Any]], bool] | None = None,
    checkpoint_at: Collection[int] = (),
) -> LossLog:
    """Run ``step(i)`` for ``i`` in ``[start, total_steps)``, resuming and checkpointing.

    Parameters
    ----------
    job
        The :class:`~pipeline.models.base.TrainJob`: data (fingerprinted), seed, device,
        checkpoint folder and interval, where ``losses.csv`` and ``loss_curve.png`` go.
    options
        The model's options dataclass; with the data and the seed it decides whether a
        checkpoint belongs to this run (``not_in_fingerprint`` fields aside).
    state
        What a checkpoint holds, by name: modules, optimisers, :class:`GeneratorState`
        (anything with ``state_dict`` and ``load_state_dict``). The global RNG states and
        the loss log are added.
    step
        One training step: updates the networks and returns its losses by name.
    total_steps, desc
        The run's length and the progress bar's label.
    checkpoint_extra
        Plain values saved beside the state, for ``continues`` to read.
    continues
        Whether a checkpoint of the same fingerprint can be continued by this run; one that
        cannot is removed and the run starts afresh.
    checkpoint_at
        Steps after which a checkpoint is written whatever the interval (phase ends).

    Returns
    -------
    LossLog
        Every step's losses, the resumed run's earlier ones included.
    """
    checkpoints = Checkpoints.for_job(job, options)
    saved = checkpoints.load_latest(job.device)
    if saved is not None and continues is not None and not continues(saved):
        print(f"{checkpoints.paths()[-1]} (step {saved['step']}) cannot be continued: afresh")
        checkpoints.clear()
        saved = None
    log, start = LossLog(), 0
    if saved is not None:
        for name, obj in state.items():
            obj.load_state_dict(saved["state"][name])
        restore_rng_state(saved["rng"])
        log, start = LossLog(saved["losses"]), saved["step"]
        print(f"resuming from {checkpoints.paths()[-1]} at step {start}")

    t0 = time.perf_counter()
    for i in tqdm(
        range(start, total_steps), initial=start, total=total_steps, desc=desc, mininterval=2.0
    ):
        losses = step(i)
        log.append(i, **{name: _scalar(value) for name, value in losses.items()})
        done = i + 1
        if done % job.checkpoint_every == 0 or done == total_steps or done in checkpoint_at:
            checkpoints.save(
                done,
                {
                    "state": {name: obj.state_dict() for name, obj in state.items()},
                    "rng": rng_state(),
                    "losses": log.rows,
                    **(checkpoint_extra or {}),
                },
            )
    if total_steps > start:
        elapsed = time.perf_counter() - t0
        print(f"{total_steps - start} steps in {elapsed:.1f} s on {job.device}")
    write_loss_log(job, log, desc)
    return log


def write_loss_log(job: Any, log: LossLog, desc: str) -> None:
    """``losses.csv`` and ``loss_curve.png`` of a finished run (``job``: a ``TrainJob``)."""
    log.write_csv(job.losses_path)
    plot_losses(pd.DataFrame(log.rows), job.plot_path, title=f"{desc}: {len(log.rows)} steps")


def _scalar(value: torch.Tensor | float) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)
