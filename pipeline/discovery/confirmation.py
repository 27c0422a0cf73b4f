"""Which candidates of a round are confirmed, and what the next round knows because of them.

A candidate of round r is **confirmed** when the screen's verdict (``candidates.csv``, written
by :mod:`pipeline.screen.criteria`) calls it ``new`` (no known structure, no earlier
candidate's duplicate) and its E_hull with the main potential is at most
``discovery.confirm_e_hull``; where a second opinion is configured, it must also ``agree``
with it, and where consensus potentials are, each one's E_hull from its own relaxation must be
within the same threshold. This module decides it, once; the budget, the final table and the
discovery curve read the ``confirmed`` column it writes.

Round r + 1 then starts from round r's sets with the confirmed structures added
(:func:`extended`): the known structures (the known-structure index of round r + 1 holds
them, so finding one again is no discovery), the training set (a learned source is fine-tuned
on it) and, for each potential with a hull, the hull's phases (the main and consensus
potentials' relaxed structures, the second opinion's single-point energies at the main
potential's geometry), so that a later candidate is measured against what was found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from pipeline.errors import PipelineInputError
from pipeline.formats import as_flag, consensus_column
from pipeline.records import CrystalRecord
from pipeline.screen.criteria import Criteria

CONFIRMATION_COLUMNS = ["round", "id", "model", "formula", "e_above_hull", "new", "confirmed"]


def confirmed(table: pd.DataFrame, threshold: float, criteria: Criteria) -> pd.Series:
    """Whether each candidate of a verdict table (``candidates.csv``) is confirmed.

    Parameters
    ----------
    table
        The export's table: ``new`` and ``e_above_hull``; ``agrees`` with a second opinion,
        ``e_above_hull_<potential>_relaxed`` of each consensus potential.
    threshold
        ``discovery.confirm_e_hull`` (eV/atom).
    criteria
        The run's criteria: which second opinion and consensus potentials there are.
    """
    needed = ["new", "e_above_hull"]
    if criteria.second_opinion:
        needed.append("agrees")
    needed += [consensus_column(p) for p in criteria.consensus]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise PipelineInputError(f"the candidates table lacks the columns {missing}")
    ok = as_flag(table["new"]) & table["e_above_hull"].astype(float).le(threshold)
    if criteria.second_opinion:
        ok &= as_flag(table["agrees"])
    for potential in criteria.consensus:
        ok &= table[consensus_column(potential)].astype(float).le(threshold)
    return ok.astype(bool)


def confirmation_table(
    candidates: pd.DataFrame, round_number: int, threshold: float, criteria: Criteria
) -> pd.DataFrame:
    """One row per candidate of round ``round_number``: id, model (its source), formula,
    E_hull, ``new`` and ``confirmed``."""
    table = candidates.assign(
        round=round_number, confirmed=confirmed(candidates, threshold, criteria)
    )
    table["new"] = as_flag(table["new"])
    return table[CONFIRMATION_COLUMNS].reset_index(drop=True)


def picked(records: Sequence[CrystalRecord], ids: Iterable[str]) -> list[CrystalRecord]:
    """The records with ``ids``, in the order of ``records``; an id without a record is an
    input error (the table and the structures belong to different runs)."""
    wanted = set(ids)
    out = [r for r in records if r.id in wanted]
    absent = sorted(wanted - {r.id for r in out})
    if absent:
        raise PipelineInputError(f"no structure for the confirmed ids {absent[:5]}")
    return out


def with_energy(records: Sequence[CrystalRecord]) -> list[CrystalRecord]:
    """The records with a finite ``energy_per_atom`` (a hull phase needs one)."""
    return [r for r in records if math.isfinite(r.properties.get("energy_per_atom", math.nan))]


def extended(
    previous: Sequence[CrystalRecord], additions: Sequence[CrystalRecord]
) -> list[CrystalRecord]:
    """``previous`` then each addition whose id it does not hold yet."""
    held = {r.id for r in previous}
    return [*previous, *(r for r in additions if r.id not in held)]
