"""How often the screen's potentials agree on stability: E_hull of the same candidates.

Reads a ``results/screen/hull.csv`` written with ``screen.consensus`` (``e_above_hull`` of
the main potential, ``e_above_hull_<potential>`` of each consensus one; every potential
relaxed the candidates itself, against its own relaxed references) and prints ONE JSON
line: per pair of potentials, the share of candidates (relaxed by both) on the same side
of each threshold (``screen.e_hull.synthesizable`` and ``metastable`` of config.yaml), and
the median |difference| of their E_hull.

    python bench/potential_agreement.py results/screen/hull.csv
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.errors import PipelineInputError, exit_on_input_error  # noqa: E402


def agreement(table: pd.DataFrame, main: str, thresholds: list[float]) -> dict[str, object]:
    """Pairwise agreement of the E_hull columns of ``table`` at each threshold."""
    columns = {main: "e_above_hull"}
    for column in table.columns:
        if column.startswith("e_above_hull_") and column != "e_above_hull_mp":
            columns[column.removeprefix("e_above_hull_")] = column
    if len(columns) < 2:
        raise PipelineInputError("no e_above_hull_<potential> column: run with screen.consensus")
    pairs = {}
    for a, b in itertools.combinations(columns, 2):
        both = table[[columns[a], columns[b]]].dropna()
        x, y = both[columns[a]].to_numpy(), both[columns[b]].to_numpy()
        pairs[f"{a}-{b}"] = {
            "candidates": len(both),
            **{f"agree_at_{t}": round(float(np.mean((x <= t) == (y <= t))), 3) for t in thresholds},
            "median_abs_difference_eV_per_atom": round(float(np.median(np.abs(x - y))), 3),
        }
    below = {
        name: {f"at_{t}": int(table[column].le(t).sum()) for t in thresholds}
        for name, column in columns.items()
    }
    return {"candidates": len(table), "below_threshold": below, "pairs": pairs}


@exit_on_input_error
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("hull", type=Path, help="results/screen/hull.csv with consensus columns")
    args = parser.parse_args()
    if not args.hull.is_file():
        raise PipelineInputError(f"{args.hull}: no such file")
    table = pd.read_csv(args.hull)
    if table.empty:
        raise PipelineInputError(f"{args.hull}: no candidates")
    e_hull = yaml.safe_load((REPO / "config.yaml").read_text())["screen"]["e_hull"]
    thresholds = [e_hull["synthesizable"], e_hull["metastable"]]
    main_potential = str(table["potential"].iloc[0]).split()[0]
    print(json.dumps(agreement(table, main_potential, thresholds)))


if __name__ == "__main__":
    main()
