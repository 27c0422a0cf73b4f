"""The discovery curve: confirmed new structures against relaxations spent, per source and round.

:func:`round_summary` counts, per round and source, the samples handed to the screen
(``validation.csv``), the relaxations spent on them (every structure the main potential relaxed,
converged or not: ``relax_status.csv``), the converged candidates, the new ones, and the
confirmed ones, when their round ended (``confirmed_in_round``, what the budget of the next
round saw) and on the final hull (``confirmed``); cumulative columns run over the rounds per
source. :func:`plot_discovery_curve` draws the cumulative confirmed structures against the
cumulative relaxations, one line per source and one for all, a point per round, and beside
it each round's confirmed structures per relaxation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from pipeline.errors import PipelineInputError
from pipeline.formats import as_flag
from pipeline.plotting import new_figure, save_figure

SUMMARY_COLUMNS = [
    "round",
    "source",
    "samples",
    "relaxations",
    "converged",
    "new",
    "confirmed_in_round",
    "confirmed",
    "relaxations_cumulative",
    "confirmed_in_round_cumulative",
    "confirmed_cumulative",
]
ALL = "all sources"


def round_summary(
    validation: Mapping[int, pd.DataFrame],
    relax_status: Mapping[int, pd.DataFrame],
    final: pd.DataFrame,
) -> pd.DataFrame:
    """Per round and source, the counts of the module docstring.

    Parameters
    ----------
    validation
        Each round's ``validation.csv`` (``id``, ``model``: every sample handed over).
    relax_status
        Each round's ``relax_status.csv`` of the main potential (``id``: every relaxation).
    final
        The final table (:func:`pipeline.discovery.final.final_table`): ``round``, ``model``,
        ``new``, ``confirmed``, ``confirmed_in_round``.
    """
    if set(validation) != set(relax_status):
        raise PipelineInputError("validation and relaxation tables of different rounds")
    rows = []
    sources = sorted({m for table in validation.values() for m in table["model"].astype(str)})
    for round_number in sorted(validation):
        samples = validation[round_number]
        model_of = dict(zip(samples["id"].astype(str), samples["model"].astype(str)))
        relaxed = relax_status[round_number]["id"].astype(str).map(model_of)
        ours = final[final["round"] == round_number]
        for source in sources:
            mine = ours[ours["model"].astype(str) == source]
            rows.append(
                {
                    "round": round_number,
                    "source": source,
                    "samples": int((samples["model"].astype(str) == source).sum()),
                    "relaxations": int((relaxed == source).sum()),
                    "converged": len(mine),
                    "new": int(as_flag(mine["new"]).sum()),
                    "confirmed_in_round": int(as_flag(mine["confirmed_in_round"]).sum()),
                    "confirmed": int(as_flag(mine["confirmed"]).sum()),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    for column in ("relaxations", "confirmed_in_round", "confirmed"):
        table[f"{column}_cumulative"] = table.groupby("source")[column].cumsum()
    return table[SUMMARY_COLUMNS]


def plot_discovery_curve(summary: pd.DataFrame, path: Path) -> None:
    """Cumulative confirmed structures against cumulative relaxations (per source and all,
    a point per round, when each round ended), and each round's confirmed per relaxation."""
    fig, (curve, rates) = new_figure(ncols=2, width=5.5, height=4.2)
    totals = summary.groupby("round")[["relaxations", "confirmed_in_round"]].sum()
    lines = {
        source: group.set_index("round")[["relaxations", "confirmed_in_round"]]
        for source, group in summary.groupby("source")
    }
    if len(lines) > 1:
        lines[ALL] = totals
    highest = 0.0
    for source, per_round in lines.items():
        x = np.concatenate([[0], per_round["relaxations"].cumsum().to_numpy()])
        y = np.concatenate([[0], per_round["confirmed_in_round"].cumsum().to_numpy()])
        highest = max(highest, float(y.max()))
        style = {"color": "black", "lw": 2.0} if source == ALL else {"lw": 1.5}
        curve.plot(x, y, marker="o", label=source, **style)
        if source == ALL or len(lines) == 1:
            for round_number, xi, yi in zip(per_round.index, x[1:], y[1:]):
                curve.annotate(
                    f"r{round_number}", (xi, yi), textcoords="offset points", xytext=(4, 4)
                )
    curve.yaxis.set_major_locator(MaxNLocator(integer=True))
    # whole structures: at least 0..1 on the axis, so a run that confirmed none reads as 0
    curve.set_ylim(0, max(1.0, 1.1 * highest))
    curve.set_xlim(left=0)
    curve.set_xlabel("relaxations spent (cumulative)")
    curve.set_ylabel("confirmed new structures (cumulative)")
    curve.set_title("discovery curve")
    curve.legend(fontsize=8)
    width = 0.8 / max(len(lines), 1)
    rounds = sorted(summary["round"].unique())
    highest_rate = 0.0
    for k, (source, per_round) in enumerate(lines.items()):
        spent = per_round["relaxations"].reindex(rounds).to_numpy(dtype=float)
        found = per_round["confirmed_in_round"].reindex(rounds).to_numpy(dtype=float)
        rate = np.divide(found, spent, out=np.zeros_like(found), where=spent > 0)
        rates.bar(np.arange(len(rounds)) + k * width, rate, width, label=source)
        highest_rate = max(highest_rate, float(rate.max(initial=0.0)))
    rates.set_xticks(np.arange(len(rounds)) + 0.4 - width / 2, [f"round {r}" for r in rounds])
    rates.set_ylim(0, max(0.1, 1.15 * highest_rate))
    if highest == 0:
        rates.text(0.5, 0.5, "no structure confirmed", transform=rates.transAxes, ha="center")
    rates.set_ylabel("confirmed per relaxation")
    rates.set_title("hit rate per round")
    rates.legend(fontsize=8)
    save_figure(fig, path)
