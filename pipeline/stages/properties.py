"""CLI of the properties stage: ``python -m pipeline.stages.properties --help``.

Predicts properties of the relaxed candidates with CGCNN's shipped models and the band gap used
by the screen (``--predictor``: CGCNN at PBE level, offline; or, opted into, multi-fidelity
MEGNet at HSE level from matgl's hub), expresses it at the level of the band-gap window and
flags who falls inside. The predictor is always the one asked for: nothing probes the network.
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
    BandGapWindow,
    CGCNNPredictor,
    LinearGapMap,
    MEGNetBandGap,
    gap_at_level,
)
from pipeline.settings import default

PREDICTORS = ("cgcnn", "megnet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.properties",
        description="CGCNN property predictions and the screened band gap of relaxed candidates.",
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    parser.add_argument(
        "--predictor",
        choices=PREDICTORS,
        default=default("screen.band_gap.predictor"),
        help="band gap used by the screen: cgcnn (PBE level, offline) or megnet"
        " (multi-fidelity MEGNet at HSE level, needs matgl's hub)",
    )
    parser.add_argument("--gap-min", type=float, default=default("screen.band_gap.min"), help="eV")
    parser.add_argument("--gap-max", type=float, default=default("screen.band_gap.max"), help="eV")
    parser.add_argument(
        "--gap-level",
        choices=("PBE", "HSE"),
        default=default("screen.band_gap.level"),
        help="level of theory the window is stated at",
    )
    parser.add_argument(
        "--pbe-to-hse",
        type=float,
        nargs=2,
        metavar=("SLOPE", "INTERCEPT"),
        help="linear map of PBE gaps to HSE level (used only when the window is"
        " at HSE level and the gaps come from CGCNN)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
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
    window = BandGapWindow(args.gap_min, args.gap_max, args.gap_level)
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
        row["band_gap"] = gap_at_level(gap, gap_level, window.level, mapping)
        row["band_gap_level"] = window.level
        row["band_gap_predictor"] = "megnet" if megnet else "cgcnn"
        row["in_band_gap_window"] = window.contains(row["band_gap"])
        rows.append(row)
    table = pd.DataFrame(
        rows,
        columns=None
        if rows
        else ["id", "band_gap", "band_gap_level", "band_gap_predictor", "in_band_gap_window"],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    inside = int(table["in_band_gap_window"].sum()) if rows else 0
    print(
        f"{len(table)} candidates, {inside} inside the {window.level} band-gap window"
        f" [{window.min}, {window.max}] eV"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
