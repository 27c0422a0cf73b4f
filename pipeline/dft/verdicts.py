"""The DFT verdict table, ``results/dft_check/dft_check.csv``: written once, read everywhere.

The DFT check runs after the export (the export picks what it checks), so its verdict cannot
live in ``candidates.csv`` without a cycle; it sits beside it, keyed by candidate ``id``, and
the report and the explorer join it by ``id``. Reading it needs neither GPAW nor torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.formats import read_table

# The columns every reader relies on: the DFT E_hull and whether the ML verdict agrees with it
# at the synthesizable threshold (pipeline.dft.check.DftVerdict has the rest).
VERDICT_COLUMNS = ("id", "e_above_hull_dft", "passes_dft", "dft_agrees")


def write_verdicts(verdicts: Sequence[Any], columns: Sequence[str], path: str | Path) -> Path:
    """Write ``verdicts`` (dataclass rows, :class:`pipeline.dft.check.DftVerdict`) with
    ``columns`` in that order; an empty sequence writes the header only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.asdict(v) for v in verdicts]
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False, float_format="%.6g")
    return path


def read_verdicts(path: str | Path) -> pd.DataFrame:
    """The DFT verdicts (``id`` as strings, booleans as booleans), one row per checked candidate."""
    table = read_table(path, VERDICT_COLUMNS)
    table["id"] = table["id"].astype(str)  # an empty table reads its columns as floats
    for column in table.columns:
        if column == "passes_dft" or column.startswith("dft_agrees") or column == "dft_cached":
            table[column] = table[column].map(_as_bool).astype("boolean")
    return table


def join_verdicts(candidates: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """``candidates`` with the DFT columns joined by ``id`` (missing where not checked).

    Columns ``candidates`` already has (``formula``, the ML ``e_above_hull``) are kept from
    ``candidates``: it carries the ML verdict.
    """
    new = [c for c in verdicts.columns if c not in candidates.columns]
    joined = candidates.astype({"id": str}).merge(
        verdicts.drop_duplicates("id")[["id", *new]], on="id", how="left"
    )
    return joined


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "false": False}.get(text)
