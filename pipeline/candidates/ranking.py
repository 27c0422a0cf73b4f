"""One table of every screened candidate: merge the screen's tables, rank the verdict."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.records import CrystalRecord
from pipeline.symmetry import symmetry_table


def merge_screen_tables(
    relaxed: Sequence[CrystalRecord],
    hull: pd.DataFrame,
    properties: pd.DataFrame,
    pourbaix: pd.DataFrame,
) -> pd.DataFrame:
    """One row per relaxed candidate with every measurement of the screen (NaN where missing)."""
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
    # Other potentials' E_hull (second opinion, consensus, MP) and the coverage flags travel too.
    others = [c for c in hull.columns if c.startswith("e_above_hull_") or c == "missing_binaries"]
    table = base.merge(
        hull[["id", "energy_per_atom", "e_above_hull", *others]], on="id", how="left"
    )
    table = table.merge(properties.drop(columns=["formula"], errors="ignore"), on="id", how="left")
    pourbaix_columns = ["id", "delta_g_pbx", "ph_at_min", "formation_free_energy_per_atom"]
    # why Delta G_pbx is missing, where it is
    pourbaix_columns += [c for c in ("pourbaix_note",) if c in pourbaix.columns]
    return table.merge(pourbaix[pourbaix_columns], on="id", how="left")


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
