"""The screen's plots: E_hull histogram, ternary hull with candidates, band gap vs Delta G_pbx,
lattice-parameter distributions generated vs training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure

from pipeline.plotting import STYLE, new_figure, save_figure
from pipeline.quality import LATTICE_PARAMETERS, ks_statistics, lattice_parameters
from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import phase_diagram
from pipeline.symmetry import CRYSTAL_SYSTEMS, SymmetrySummary

UNITS = {"a": "Å", "b": "Å", "c": "Å", "alpha": "°", "beta": "°", "gamma": "°"}


def plot_e_hull_histogram(
    table: pd.DataFrame,
    thresholds: dict[str, float],
    path: str | Path,
    models: pd.Series | None = None,
) -> None:
    """Histogram of ``table``'s E_hull (eV/atom) per model, the thresholds as vertical lines."""
    fig, (ax,) = new_figure()
    values = table["e_above_hull"].astype(float)
    finite = values[np.isfinite(values)]
    upper = max(0.5, float(np.percentile(finite, 95))) if len(finite) else 0.5
    bins = np.linspace(0.0, upper, 41)
    groups = (
        models.fillna("?").astype(str)
        if models is not None
        else pd.Series("all", index=table.index)
    )
    for model in sorted(groups.unique()):
        ax.hist(
            np.clip(values[groups == model].dropna(), 0.0, upper), bins=bins, alpha=0.6, label=model
        )
    for name, value in thresholds.items():
        ax.axvline(value, color="black", linestyle="--", linewidth=1)
        ax.text(
            value,
            ax.get_ylim()[1] * 0.95,
            f" {name} ({value:g})",
            rotation=90,
            va="top",
            fontsize=8,
        )
    ax.set_xlabel("E_hull (eV/atom, clipped at the 95th percentile)")
    ax.set_ylabel("candidates")
    if len(groups.unique()) > 1:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def _ternary_xy(composition: Composition, elements: Sequence[str]) -> tuple[float, float]:
    fractions = [composition.get_atomic_fraction(el) for el in elements]
    # Corners: first element bottom left, second bottom right, third at the top.
    return fractions[1] + 0.5 * fractions[2], np.sqrt(3) / 2 * fractions[2]


def plot_ternary_hull(
    references: Sequence[CrystalRecord],
    candidates: pd.DataFrame,
    elements: Sequence[str],
    path: str | Path,
    max_e_hull: float,
    oxygen_reference: str,
) -> None:
    """The potential's convex hull of a ternary system (stable phases and tie lines, with the
    hull's oxygen reference) with the candidates coloured by E_hull; other systems get a note
    instead."""
    fig, (ax,) = new_figure(width=6.5, height=5.5)
    ax.set_axis_off()
    if len(elements) != 3:
        ax.text(
            0.5,
            0.5,
            f"the ternary plot needs a 3-element system, not {'-'.join(elements)}",
            ha="center",
        )
        save_figure(fig, path)
        return
    diagram = phase_diagram(references, oxygen_reference)  # as the E_hull were measured
    corners = np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2], [0, 0]])
    ax.plot(corners[:, 0], corners[:, 1], color="black", linewidth=1)
    for facet in diagram.facets:
        for i in range(len(facet)):
            for j in range(i + 1, len(facet)):
                a = _ternary_xy(diagram.qhull_entries[facet[i]].composition, elements)
                b = _ternary_xy(diagram.qhull_entries[facet[j]].composition, elements)
                ax.plot([a[0], b[0]], [a[1], b[1]], color="0.6", linewidth=0.8, zorder=1)
    for entry in diagram.stable_entries:
        x, y = _ternary_xy(entry.composition, elements)
        ax.scatter(x, y, color="black", s=25, zorder=3)
        if len(entry.composition.elements) == 1:
            continue  # the corners carry the element names
        ax.annotate(
            entry.composition.reduced_formula,
            (x, y),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    if len(candidates):
        xy = np.array([_ternary_xy(Composition(f), elements) for f in candidates["formula"]])
        e_hull = candidates["e_above_hull"].astype(float).to_numpy()
        points = ax.scatter(
            xy[:, 0],
            xy[:, 1],
            c=np.clip(e_hull, 0, 2 * max_e_hull),
            cmap="viridis_r",
            s=18,
            alpha=0.8,
            zorder=2,
            marker="D",
        )
        fig.colorbar(points, ax=ax, shrink=0.7, label="candidate E_hull (eV/atom)")
    for (x, y), el, ha in zip(corners[:3], elements, ("right", "left", "center")):
        ax.annotate(
            el,
            (x, y),
            textcoords="offset points",
            xytext=(0, 6 if ha == "center" else -12),
            ha=ha,
            fontsize=11,
        )
    save_figure(fig, path)


def plot_gap_vs_pourbaix(
    candidates: pd.DataFrame,
    gap_window: tuple[float, float],
    max_delta_g: float,
    gap_level: str,
    path: str | Path,
) -> None:
    """Band gap against Delta G_pbx for every candidate, the filter box shaded."""
    fig, (ax,) = new_figure()
    gap = candidates["band_gap"].astype(float)
    dg = candidates["delta_g_pbx"].astype(float)
    passes = candidates.get("passes", pd.Series(False, index=candidates.index)).astype(bool)
    ax.scatter(dg[~passes], gap[~passes], s=14, color="0.6", label="filtered out")
    ax.scatter(dg[passes], gap[passes], s=22, color="tab:red", label="passes every filter")
    left = min(float(np.nanmin(dg)) if dg.notna().any() else 0.0, 0.0)
    ax.fill_between(
        [left, max_delta_g],
        gap_window[0],
        gap_window[1],
        color="tab:green",
        alpha=0.15,
        label="filter window",
    )
    ax.set_xlabel("ΔG_pbx (eV/atom, 1.5 V vs RHE, min over pH)")
    ax.set_ylabel(f"band gap at {gap_level} level (eV)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_ml_vs_dft(
    checked: pd.DataFrame, thresholds: dict[str, float], path: str | Path
) -> pd.DataFrame:
    """The DFT check's verdict: ML E_hull against DFT E_hull of each checked candidate; returns
    the points drawn (``id``, ``e_above_hull``, ``e_above_hull_dft``, ``dft_agrees``).

    ``checked``: candidates joined with ``dft_check.csv`` (:func:`pipeline.dft.verdicts.
    join_verdicts`), rows without a DFT E_hull left out. Marked by ``dft_agrees`` (the ML and
    the DFT verdict on the same side of the synthesizable threshold); the thresholds are drawn
    on both axes, the diagonal is where the potential equals DFT.
    """
    fig, (ax,) = new_figure(height=5.0)
    rows = checked.dropna(subset=["e_above_hull_dft"])
    ml = rows["e_above_hull"].astype(float)
    dft = rows["e_above_hull_dft"].astype(float)
    agrees = rows["dft_agrees"].fillna(False).astype(bool)
    for mask, style in (
        (agrees, {"marker": "o", "color": "tab:green", "label": "ML verdict agrees with DFT"}),
        (~agrees, {"marker": "X", "color": "tab:red", "label": "ML verdict disagrees"}),
    ):
        if mask.any():
            ax.scatter(ml[mask], dft[mask], s=40, **style)
    for label, x, y in zip(rows.get("rank", rows["id"]), ml, dft):
        ax.annotate(str(label), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    values = [*ml, *dft, *thresholds.values(), 0.0]
    low, high = min(values) - 0.02, max(values) + 0.02
    ax.plot([low, high], [low, high], color="0.5", linewidth=1)
    for name, value in thresholds.items():
        ax.axvline(value, color="black", linestyle="--", linewidth=0.8)
        ax.axhline(value, color="black", linestyle="--", linewidth=0.8)
        ax.text(high, value, f"{name} ({value:g}) ", ha="right", va="bottom", fontsize=7)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("E_hull, ML potential (eV/atom)")
    ax.set_ylabel("E_hull, DFT PBE(+U), MP2020-corrected (eV/atom)")
    ax.set_title(f"DFT check: {int(agrees.sum())} of {len(rows)} ML verdicts agree", fontsize=9)
    if len(rows):
        ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)
    return pd.DataFrame(
        {"id": rows["id"], "e_above_hull": ml, "e_above_hull_dft": dft, "dft_agrees": agrees}
    ).reset_index(drop=True)


def plot_lattice_distributions(
    generated: Sequence[Structure], training: Sequence[Structure], path: str | Path
) -> dict[str, float]:
    """Histograms of each lattice parameter, generated vs training, with the K-S statistic."""
    with plt.rc_context(STYLE):  # six panels: two rows of three
        fig, grid = plt.subplots(2, 3, figsize=(12, 6.5))
    ks = ks_statistics(generated, training)
    gen = lattice_parameters(generated) if generated else None
    ref = lattice_parameters(training)
    for ax, name in zip(grid.ravel(), LATTICE_PARAMETERS):
        bins = np.histogram_bin_edges(np.concatenate([ref[name], gen[name] if gen else []]), 30)
        ax.hist(ref[name], bins=bins, density=True, alpha=0.5, label="training")
        if gen:
            ax.hist(gen[name], bins=bins, density=True, alpha=0.5, label="generated (relaxed)")
        ax.set_title(f"{name}: K-S = {ks[name]:.3f}", fontsize=10)
        ax.set_xlabel(f"{name} ({UNITS[name]})")
    grid[0, 0].legend(fontsize=8)
    save_figure(fig, path)
    return ks


def plot_crystal_systems(summaries: Mapping[str, SymmetrySummary], path: str | Path) -> None:
    """Grouped bars: the fraction of structures in each crystal system, one bar per set
    (e.g. training, each model's raw samples, its relaxed ones), non-P1 fraction in the legend."""
    fig, (ax,) = new_figure(width=9.0)
    names = list(summaries)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(CRYSTAL_SYSTEMS))
    for i, name in enumerate(names):
        summary = summaries[name]
        ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            [summary.crystal_systems.get(system, np.nan) for system in CRYSTAL_SYSTEMS],
            width,
            label=f"{name} (n={summary.n_structures}, non-P1 {summary.non_p1_fraction:.0%})",
        )
    ax.set_xticks(x, CRYSTAL_SYSTEMS, rotation=20)
    ax.set_ylabel("fraction of structures")
    ax.set_title("crystal systems (spglib, symprec 0.1 Å)")
    ax.legend(fontsize=8)
    save_figure(fig, path)
