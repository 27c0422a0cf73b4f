"""``results/candidates.db``: every relaxed structure in an ASE database (SQLite) with the
explorer table's columns as key-value pairs, for ``ase db results/candidates.db 'e_above_hull<0.08'``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ase.db
import numpy as np
import pandas as pd
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.core import reserved_keys
from pymatgen.io.ase import AseAtomsAdaptor

from pipeline.records import CrystalRecord

# Table columns whose names ase.db keeps for itself, and the key they are stored under.
RENAMED_KEYS = {"id": "candidate_id", "formula": "reduced_formula"}
# Kept by ase.db itself (natoms) or written as the structure's energy instead.
LEFT_OUT = {"natoms"}
NOT_A_WORD = re.compile(r"\W")


def database_key(column: str) -> str:
    """A valid ase.db key for a table column: renamed when ase.db reserves the name, any
    character other than letters, digits and '_' replaced by '_'."""
    key = RENAMED_KEYS.get(column, column)
    key = NOT_A_WORD.sub("_", key)
    if key[0].isdigit():
        key = "_" + key
    if key in reserved_keys:
        key = "screen_" + key
    return key


def database_value(value: Any) -> bool | int | float | str | None:
    """``value`` as ase.db stores it, or None to leave the key out (missing, NaN, empty).

    ase.db refuses a string that reads as a number or a boolean, so such strings are stored
    as the number or boolean they spell.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    text = str(value).strip()
    if not text:
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def key_value_pairs(row: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """One table row as ase.db key-value pairs (missing values left out)."""
    pairs = {}
    for column, value in row.items():
        if column in LEFT_OUT:
            continue
        stored = database_value(value)
        if stored is not None:
            pairs[database_key(column)] = stored
    return pairs


def write_database(records: Sequence[CrystalRecord], table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``records`` with their ``table`` rows (matched by ``id``) to a new ASE database.

    A record with ``properties.energy_per_atom`` carries its total energy as a single-point
    calculator, so ``ase db`` lists it in the energy column. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rows = {str(row["id"]): row for row in table.to_dict("records")}
    adaptor = AseAtomsAdaptor()
    with ase.db.connect(path, type="db") as database:
        for record in records:
            atoms = adaptor.get_atoms(record.to_structure())
            energy = record.properties.get("energy_per_atom")
            if energy is not None and math.isfinite(energy):
                atoms.calc = SinglePointCalculator(atoms, energy=energy * len(atoms))
            pairs = key_value_pairs(rows.get(record.id, {"id": record.id}))
            database.write(atoms, key_value_pairs=pairs)
    return path
