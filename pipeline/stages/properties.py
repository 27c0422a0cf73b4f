"""CLI of the properties stage: ``python -m pipeline.stages.properties --help``.

Predicts properties of the relaxed candidates with CGCNN's shipped models and the band gap used
by the screen (``--predictor``: CGCNN at PBE level, offline; or, opted into, multi-fidelity
MEGNet at HSE level from matgl's hub) and expresses it at the level of the band-gap window
(whether it falls inside is the export's verdict, :mod:`pipeline.screen.criteria`). The
predictor is always the one asked for: nothing probes the network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import read_records
from pipeline.screen.predictors import (
    CGCNNPredictor,
    LinearGapMap,
    MEGNetBandGap,
    gap_at_level,
)
from pipeline.settings import setting_argument

PREDICTORS = ("cgcnn", "megnet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.properties",
        description="CGCNN property predictions and the screened band gap of relaxed candidates.",
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    setting_argument(
        parser,
        "--predictor",
        "screen.band_gap.predictor",
        choices=PREDICTORS,
        help="band gap used by the screen: cgcnn (PBE level, offline) or megnet"
        " (multi-fidelity MEGNet at HSE level, needs matgl's hub)",
    )
    setting_argument(
        parser,
        "--gap-level",
        "screen.band_gap.level",
        choices=("PBE", "HSE"),
        help="level of theory of the band-gap window: the gaps are expressed at it",
    )
    setting_argument(
        parser,
        "--pbe-to-hse",
        "screen.band_gap.pbe_to_hse",
        type=float,
        nargs=2,
        metavar=("SLOPE", "INTERCEPT"),
        help="linear map of PBE gaps to HSE level (used only when the window is"
        " at HSE level and the gaps come from CGCNN)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        required=True,
        help="torch threads (more than one per core slows these small graphs)",
    )
    parser.add_argument("--out", type=Path, required=True, help="properties table (.csv)")
    return parser


def band_gap_model(choice: str) -> tuple[MEGNetBandGap | None, str]:
    """The MEGNet model when chosen (None for CGCNN), and the level of the gaps."""
    if choice == "cgcnn":
        return None, "PBE"
    try:
        return MEGNetBandGap("HSE"), "HSE"
    except Exception as exc:  # the hub's failure modes are many: network, cache, format
        raise PipelineInputError(f"cannot load the MEGNet band-gap model ({exc})") from None


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    mapping = LinearGapMap(*args.pbe_to_hse) if args.pbe_to_hse else None
    records = read_records(args.relaxed)
    cgcnn = CGCNNPredictor()
    megnet, gap_level = band_gap_model(args.predictor)
    rows = []
    for record in tqdm(records, desc="properties", unit="structure"):
        structure = record.to_structure()
        row = {
            "id": record.id,
            "formula": structure.composition.reduced_formula,
            **cgcnn.predict(structure),
        }
        gap = megnet.predict(structure) if megnet else row["band_gap_pbe"]
        if megnet:
            row["band_gap_hse_megnet"] = gap
        row["band_gap"] = gap_at_level(gap, gap_level, args.gap_level, mapping)
        row["band_gap_level"] = args.gap_level
        row["band_gap_predictor"] = "megnet" if megnet else "cgcnn"
        rows.append(row)
    table = pd.DataFrame(
        rows,
        columns=None if rows else ["id", "band_gap", "band_gap_level", "band_gap_predictor"],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    print(f"{len(table)} candidates, band gaps at {args.gap_level} level ({args.predictor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
