"""CLI of the known-structure index: ``python -m pipeline.stages.known_index --help``.

Reduces the known structures of a run (the data set with held-out formulas, and the main
potential's relaxed hull phases) to their primitive cells once, for the validate and export
stages to look candidates up in (:mod:`pipeline.screen.known`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import exit_on_input_error
from pipeline.records import read_records
from pipeline.screen.known import KnownIndex


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.known_index",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--known",
        type=Path,
        nargs="+",
        required=True,
        help="dataset files of known structures (results/data/known.json.gz, the hull's phases)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the index (.json.gz)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    records = [record for path in args.known for record in read_records(path)]
    index = KnownIndex.build(records, progress=True)
    index.write(args.out)
    print(json.dumps({"known_structures": len(index), "files": [str(p) for p in args.known]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
