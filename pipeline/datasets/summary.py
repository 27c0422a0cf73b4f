"""Per-composition counts of a data set, as a table and a plot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from pipeline.chemsys import ChemicalSystem, composition_label
from pipeline.plotting import new_figure, save_figure
from pipeline.records import CrystalRecord


def composition_summary(records: Sequence[CrystalRecord], system: ChemicalSystem) -> pd.DataFrame:
    """One row per cell composition: atom counts per element, reduced formula, count."""
    counts = Counter(tuple(r.species.count(el) for el in system.elements) for r in records)
    rows = []
    for atom_counts, n in counts.items():
        cell = dict(zip(system.elements, atom_counts))
        rows.append(
            {
                "composition": composition_label(system.elements, atom_counts),
                "reduced_formula": Composition(cell).reduced_formula,
                **{f"n_{el}": k for el, k in cell.items()},
                "natoms": sum(atom_counts),
                "n_structures": n,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["n_structures", "composition"], ascending=[False, True]).reset_index(
        drop=True
    )


def plot_composition_distribution(
    summary: pd.DataFrame, system: ChemicalSystem, path: str | Path
) -> None:
    """Ternary map of compositions (marker area ~ count) and atoms-per-cell histogram.

    For systems other than ternaries the left panel is a bar chart of the 30 most
    frequent compositions.
    """
    fig, (left, right) = new_figure(ncols=2)
    if len(system.elements) == 3 and not summary.empty:
        _ternary(left, summary, system)
    else:
        top = summary.head(30)
        left.barh(top["composition"][::-1], top["n_structures"][::-1], color="tab:blue")
        left.set_xlabel("structures")
        left.set_title(f"{system}: most frequent cell compositions")
    right.hist(
        np.repeat(summary["natoms"].to_numpy(), summary["n_structures"].to_numpy()),
        bins=np.arange(0.5, summary["natoms"].max() + 1.5) if not summary.empty else 10,
        color="tab:orange",
    )
    right.set_xlabel("atoms per cell")
    right.set_ylabel("structures")
    right.set_title(
        f"{int(summary['n_structures'].sum())} structures, {len(summary)} cell compositions"
    )
    save_figure(fig, path)


def _ternary(ax, summary: pd.DataFrame, system: ChemicalSystem) -> None:
    # Cells of one reduced formula share a point: sum them.
    columns = [f"n_{el}" for el in system.elements]
    fractions = summary[columns].to_numpy(float) / summary["natoms"].to_numpy(float)[:, None]
    summary = (
        summary.assign(**{c: fractions[:, i] for i, c in enumerate(columns)})
        .groupby("reduced_formula", as_index=False)
        .agg({**{c: "first" for c in columns}, "n_structures": "sum"})
    )
    a, b, c = (summary[f"n_{el}"].to_numpy(float) for el in system.elements)
    total = a + b + c
    # Barycentric to Cartesian: first element at the bottom left, second bottom right,
    # third at the top.
    x = (b + 0.5 * c) / total
    y = (np.sqrt(3) / 2) * c / total
    ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], color="k", lw=1)
    sizes = 15 + 200 * summary["n_structures"] / summary["n_structures"].max()
    ax.scatter(x, y, s=sizes, alpha=0.6, color="tab:blue", edgecolor="k", lw=0.5)
    for label, (px, py) in zip(system.elements, [(0, 0), (1, 0), (0.5, np.sqrt(3) / 2)]):
        ax.annotate(
            label,
            (px, py),
            textcoords="offset points",
            xytext=(0, -14 if py == 0 else 6),
            ha="center",
            fontsize=12,
            weight="bold",
        )
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{system}: compositions (area ~ structures)")
