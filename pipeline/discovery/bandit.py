"""How a round's samples are shared among the sources: a bandit on confirmed hits per sample.

The budget of a round is the run's: ``sample.per_composition`` samples per target for each
source, ``per_composition x sources`` per target in all (the units split here; every target
gets the same split). ``fixed`` gives every source ``per_composition``. ``adaptive`` is
Thompson sampling (Thompson 1933; Chapelle & Li, NeurIPS 2011) on each source's record so
far: its success rate has the posterior Beta(1 + hits, 1 + misses), with hits its confirmed
structures and misses its other samples; each unit goes to the source whose rate, drawn from
its posterior, is highest. A source that has found little still gets draws while its posterior
is wide, and at least ``floor`` of the units (at least one) whatever it found, so no source
starves and a source whose luck turns can recover. The draws come from the run's seed and the
round, so a rerun splits alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import PipelineInputError
from pipeline.formats import read_table

SPLITS = ("adaptive", "fixed")
BUDGET_COLUMNS = [
    "round",
    "source",
    "samples",
    "hits",
    "misses",
    "hit_rate",
    "share",
    "per_composition",
]


@dataclass(frozen=True)
class SourceTally:
    """A source's record in the rounds so far: samples asked of it, and how many of them
    became confirmed structures."""

    source: str
    samples: int
    hits: int

    def __post_init__(self) -> None:
        if self.samples < 0 or not 0 <= self.hits:
            raise PipelineInputError(f"{self.source}: negative samples or hits")

    @property
    def misses(self) -> int:
        return max(self.samples - self.hits, 0)


def least_units(units: int, sources: int, floor: float) -> int:
    """The units every source gets at least: ``floor`` of them, rounded up, and at least one.

    ``floor x sources`` above 1 cannot be met and is an input error.
    """
    if sources < 1 or units < sources:
        raise PipelineInputError(f"{units} samples per target cannot feed {sources} sources")
    if not 0 < floor or floor * sources > 1 + 1e-9:
        raise PipelineInputError(
            f"discovery.floor {floor} x {sources} sources exceeds the whole budget"
        )
    return max(1, min(math.ceil(floor * units - 1e-9), units // sources))


def adaptive_split(
    tallies: Sequence[SourceTally], units: int, floor: float, rng: np.random.Generator
) -> dict[str, int]:
    """Units per source: the floor to each, every other unit to the source whose Beta
    posterior draw is the highest (one draw per source and unit)."""
    least = least_units(units, len(tallies), floor)
    counts = np.full(len(tallies), least)
    alpha = np.array([1 + t.hits for t in tallies], dtype=float)
    beta = np.array([1 + t.misses for t in tallies], dtype=float)
    draws = rng.beta(alpha, beta, size=(units - least * len(tallies), len(tallies)))
    counts += np.bincount(draws.argmax(axis=1), minlength=len(tallies))
    return {t.source: int(n) for t, n in zip(tallies, counts)}


def fixed_split(tallies: Sequence[SourceTally], per_composition: int) -> dict[str, int]:
    """``per_composition`` to every source, as round 1."""
    return {t.source: per_composition for t in tallies}


def budget_table(
    round_number: int,
    tallies: Sequence[SourceTally],
    per_composition: int,
    split: str,
    floor: float,
    seed: int,
) -> pd.DataFrame:
    """The budget of round ``round_number``: per source its record so far, its share and its
    samples per target (``per_composition``; the sample stage's ``--budget``).

    ``seed`` is the run's; the draws of the adaptive split derive from it and the round.
    """
    if split not in SPLITS:
        raise PipelineInputError(f"discovery.split {split!r}: use one of {SPLITS}")
    if not tallies:
        raise PipelineInputError("no source to share the budget among")
    units = per_composition * len(tallies)
    if split == "fixed":
        counts = fixed_split(tallies, per_composition)
    else:
        rng = np.random.default_rng([seed, round_number])
        counts = adaptive_split(tallies, units, floor, rng)
    return pd.DataFrame(
        [
            {
                "round": round_number,
                "source": t.source,
                "samples": t.samples,
                "hits": t.hits,
                "misses": t.misses,
                "hit_rate": t.hits / t.samples if t.samples else math.nan,
                "share": counts[t.source] / units,
                "per_composition": counts[t.source],
            }
            for t in tallies
        ],
        columns=BUDGET_COLUMNS,
    )


def source_budget(path: Path, source: str) -> tuple[int, int]:
    """The round of a budget file (:func:`budget_table`, as CSV) and ``source``'s samples
    per target in it."""
    table = read_table(path, ["round", "source", "per_composition"])
    row = table[table["source"].astype(str) == source]
    if len(row) != 1:
        raise PipelineInputError(f"{path}: no single row of source {source!r}")
    return int(row["round"].iloc[0]), int(row["per_composition"].iloc[0])
