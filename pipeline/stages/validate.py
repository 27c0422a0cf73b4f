"""CLI of the validate stage: ``python -m pipeline.stages.validate --help``.

Keeps the generated crystals worth relaxing and says why the others were not (elements,
distances, volume, duplicates within a generator, charge neutrality), and which known
structure each unique valid one is (:mod:`pipeline.screen.validation`). All of them go on to
the prescreen, which chooses the ones worth relaxing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import exit_on_input_error
from pipeline.records import read_records, write_records
from pipeline.screen.known import KnownIndex
from pipeline.screen.validation import COLUMNS, validate
from pipeline.screen.validity import ValidityLimits
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--samples",
        type=Path,
        nargs="+",
        required=True,
        help="generated structures, one dataset file per model",
    )
    parser.add_argument(
        "--known-index",
        type=Path,
        required=True,
        help="the known structures (the known_index stage's output), to tell new from known",
    )
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    setting_argument(parser, "--min-distance", "screen.min_distance", type=float, help="Å")
    setting_argument(
        parser, "--min-volume-per-atom", "screen.min_volume_per_atom", type=float, help="Å^3"
    )
    setting_argument(
        parser, "--max-volume-per-atom", "screen.max_volume_per_atom", type=float, help="Å^3"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="unique valid structures (.json.gz)"
    )
    parser.add_argument("--out-table", type=Path, required=True, help="validation.csv")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = ChemicalSystem.parse(args.chemsys)
    limits = ValidityLimits(args.min_distance, args.min_volume_per_atom, args.max_volume_per_atom)
    candidates = [record for path in args.samples for record in read_records(path)]
    known = KnownIndex.read(args.known_index)
    unique, verdicts = validate(candidates, known, system, limits, progress=True)
    write_records(unique, args.out)
    args.out_table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([asdict(v) for v in verdicts], columns=COLUMNS).to_csv(args.out_table, index=False)
    counts = Counter(v.status for v in verdicts)
    print(
        json.dumps(
            {"candidates": len(candidates), **counts, "new": sum(v.new is True for v in verdicts)}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
