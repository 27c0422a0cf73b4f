"""One table of every screened candidate: merge the screen's tables, filter, rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.records import CrystalRecord
from pipeline.settings import default
from pipeline.symmetry import symmetry_table


@dataclass(frozen=True)
class ScreenCriteria:
    """The screen's filters: energy above the hull, Pourbaix stability and the band-gap window
    (applied by the properties stage, whose ``in_band_gap_window`` column is used here)."""

    max_e_above_hull: float = default("screen.e_hull.synthesizable")  # eV/atom
    max_delta_g_pbx: float = default("screen.pourbaix.max_delta_g")  # eV/atom


def merge_screen_tables(
    relaxed: Sequence[CrystalRecord],
    hull: pd.DataFrame,
    properties: pd.DataFrame,
    pourbaix: pd.DataFrame,
    validation: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per relaxed candidate with every metric of the screen (NaN where missing)."""
    base = pd.DataFrame(
        {
            "id": [r.id for r in relaxed],
            "model": [r.source for r in relaxed],
            "formula": [r.to_structure().composition.reduced_formula for r in relaxed],
            "natoms": [r.natoms for r in relaxed],
        }
    ).astype({"id": str, "model": str, "formula": str, "natoms": int})
    # Space groups of the relaxed structures, the ones exported.
    base = pd.concat([base, symmetry_table(r.to_structure() for r in relaxed)], axis=1)
    # Other potentials' E_hull (second opinion, consensus, MP) and the agreement flag travel too.
    others = [c for c in hull.columns if c.startswith("e_above_hull_") or c == "agrees"]
    table = base.merge(
        hull[["id", "energy_per_atom", "e_above_hull", *others]], on="id", how="left"
    )
    table = table.merge(properties.drop(columns=["formula"], errors="ignore"), on="id", how="left")
    pourbaix_columns = ["id", "delta_g_pbx", "ph_at_min", "formation_free_energy_per_atom"]
    # why Delta G_pbx is missing, where it is
    pourbaix_columns += [c for c in ("pourbaix_note",) if c in pourbaix.columns]
    table = table.merge(pourbaix[pourbaix_columns], on="id", how="left")
    if validation is not None and "novel" in validation.columns:
        table = table.merge(validation[["id", "novel"]], on="id", how="left")
    return table


def apply_criteria(table: pd.DataFrame, criteria: ScreenCriteria) -> pd.DataFrame:
    """Add ``passes`` and ``failed`` (the criteria a candidate misses, ';'-joined); a missing
    metric fails its criterion. Where the table has ``relaxed_known_as``, a candidate that
    relaxed into a known structure fails ``new``."""
    checks = {
        "e_above_hull": table["e_above_hull"].le(criteria.max_e_above_hull),
        "delta_g_pbx": table["delta_g_pbx"].le(criteria.max_delta_g_pbx),
        "band_gap": table["in_band_gap_window"].fillna(False).astype(bool),
    }
    if "relaxed_known_as" in table:
        checks["new"] = table["relaxed_known_as"].isna()
    failed = [
        ";".join(name for name, ok in checks.items() if not ok.iloc[i]) for i in range(len(table))
    ]
    out = table.copy()
    out["failed"] = failed
    out["passes"] = [not f for f in failed]
    return out


def rank_candidates(table: pd.DataFrame) -> pd.DataFrame:
    """Passing candidates first, by energy above the hull then Delta G_pbx; ``rank`` 1..n for
    them and empty for the rest."""
    ordered = table.sort_values(
        ["passes", "e_above_hull", "delta_g_pbx", "id"],
        ascending=[False, True, True, True],
        na_position="last",
    )
    ordered = ordered.reset_index(drop=True)
    ordered.insert(0, "rank", np.where(ordered["passes"], np.arange(1, len(ordered) + 1), np.nan))
    ordered["rank"] = ordered["rank"].astype("Int64")
    return ordered
