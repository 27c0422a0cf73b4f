"""How often the screen's potentials agree on stability: E_hull of the same candidates.

Reads ``results/screen/hull.csv`` files: one written with ``screen.consensus``
(``e_above_hull`` of the main potential, ``e_above_hull_<potential>_relaxed`` of each
consensus one), or several of runs that differ only in ``screen.potential`` (joined on the candidate
id). Every potential relaxed the candidates itself, against its own relaxed references.
Prints ONE JSON line: per pair of potentials, the share of candidates (relaxed by both) on
the same side of each threshold of the screen's criteria (config.yaml's, through
``pipeline.screen.criteria``), and the median |difference| of their E_hull.

    python bench/potential_agreement.py results/screen/hull.csv
    python bench/potential_agreement.py run_m3gnet/results/screen/hull.csv run_chgnet/results/screen/hull.csv
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.errors import PipelineInputError, exit_on_input_error  # noqa: E402
from pipeline.formats import consensus_column  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.potentials import POTENTIALS  # noqa: E402


def potential_columns(table: pd.DataFrame) -> pd.DataFrame:
    """E_hull by potential (columns) and candidate id (index) of one hull table."""
    main = str(table["potential"].iloc[0]).split()[0]
    columns = {"e_above_hull": main}
    for potential in POTENTIALS:
        if consensus_column(potential) in table.columns:
            columns[consensus_column(potential)] = potential
    return table.set_index("id")[list(columns)].rename(columns=columns)


def combined(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The potential columns of several hull tables side by side (outer join on id)."""
    joined = pd.DataFrame()
    for table in tables:
        columns = potential_columns(table)
        joined = joined.join(columns[columns.columns.difference(joined.columns)], how="outer")
    return joined


def agreement(table: pd.DataFrame, thresholds: list[float]) -> dict[str, object]:
    """Pairwise agreement of the potential columns of ``table`` at each threshold."""
    columns = {name: name for name in table.columns}
    if len(columns) < 2:
        raise PipelineInputError(
            "one potential only: give hull tables of several potentials or of screen.consensus"
        )
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
    parser.add_argument("hull", type=Path, nargs="+", help="results/screen/hull.csv files")
    args = parser.parse_args()
    tables = []
    for path in args.hull:
        if not path.is_file():
            raise PipelineInputError(f"{path}: no such file")
        table = pd.read_csv(path)
        if table.empty:
            raise PipelineInputError(f"{path}: no candidates")
        tables.append(table)
    criteria = Criteria.default()
    thresholds = [criteria.synthesizable, criteria.metastable]
    print(json.dumps(agreement(combined(tables), thresholds)))


if __name__ == "__main__":
    main()
