"""Stage training_properties: the condition of property-conditioned models, for the training set.

Predicts, with CGCNN's shipped models (:class:`pipeline.screen.predictors.CGCNNPredictor`,
the screening stage's predictor, Materials Project 2017 PBE data), the formation energy per
atom and the PBE band gap (0 where CGCNN's classifier calls the structure a metal) of every
structure of the augmented training set, in the order of its point clouds
(:func:`pipeline.datasets.cgcnn_labels.predict_properties`).

Every structure is predicted, augmented copies included: they would get their original's
values, but the bundled data set repeats ids (1,253 distinct ids for 2,627 structures), so
an augmented copy cannot be traced back to its original by id; the encode stage keeps the
augmented file's order, which is what aligns predictions and point clouds here.

Writes ``--out`` (CSV: ``index``, ``id``, ``formula``, one column per property),
``--out-labelled`` (the point clouds of ``--encoded`` with the properties attached,
:func:`pipeline.formats.load_labelled`) and a histogram of each property.
Run ``python -m pipeline.stages.training_properties --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from pipeline.datasets.cgcnn_labels import UNITS, predict_properties
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import CONDITION_PROPERTIES, load_encoded, save_labelled
from pipeline.plotting import new_figure, save_figure
from pipeline.records import CrystalRecord, read_records


def check_aligned(records: Sequence[CrystalRecord], encoded_ids: Sequence[str]) -> None:
    """The point clouds must be the records, one for one and in order."""
    if len(records) != len(encoded_ids) or any(r.id != i for r, i in zip(records, encoded_ids)):
        raise PipelineInputError(
            f"the encoded file ({len(encoded_ids)} structures) was not encoded from this"
            f" dataset ({len(records)} structures) in its order"
        )


def plot_properties(table: pd.DataFrame, path: Path) -> None:
    fig, axes = new_figure(ncols=len(CONDITION_PROPERTIES), width=4.0, height=3.5)
    for ax, name in zip(axes, CONDITION_PROPERTIES):
        ax.hist(table[name], bins=40, color="tab:blue")
        ax.set_xlabel(f"{name} ({UNITS[name]})")
        ax.set_ylabel("training structures")
    fig.suptitle(f"CGCNN predictions for {len(table)} training structures")
    save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.training_properties",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        required=True,
        help="the training structures (results/augment/augmented.json.gz)",
    )
    parser.add_argument(
        "--encoded",
        type=Path,
        required=True,
        help="their point clouds (results/encoded/pointcloud.npz)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        required=True,
        help="CPU threads for torch; CGCNN's graphs are small, so more than"
        " one thread rarely helps and hurts on a busy machine",
    )
    parser.add_argument("--out", type=Path, required=True, help="per-structure predictions (.csv)")
    parser.add_argument(
        "--out-labelled", type=Path, required=True, help="labelled point clouds (.npz)"
    )
    parser.add_argument("--out-plot", type=Path, required=True, help="histograms (.png)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise PipelineInputError("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    records = read_records(args.dataset)
    encoded_ids = load_encoded(args.encoded).ids
    check_aligned(records, encoded_ids)

    start = time.perf_counter()
    table = predict_properties(records)
    elapsed = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    save_labelled(
        args.encoded,
        {name: table[name].to_numpy() for name in CONDITION_PROPERTIES},
        args.out_labelled,
    )
    plot_properties(table, args.out_plot)
    print(
        json.dumps(
            {
                "structures": len(records),
                "seconds": round(elapsed, 1),
                "ms_per_structure": round(1000 * elapsed / max(1, len(records)), 2),
                "threads": torch.get_num_threads(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
