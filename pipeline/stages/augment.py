"""Stage 2, augment: supercells, random translations and axis swaps (Kim et al. 2020),
:mod:`pipeline.datasets.augmentation`.

Every augmented structure is the same crystal as its parent up to the operation:

* ``supercell``: the parent doubled along one, two or three axes, kept only while every
  element's atom count stays within the encoding's caps;
* ``translate``: every atom shifted by one random fraction of the cell (wrapped);
* ``swap``: two lattice vectors exchanged together with the matching fractional
  coordinate columns.

Compositions are topped up to ``per_composition`` structures (originals and supercells
first, then translated or swapped copies); a composition with more is subsampled.
Run ``python -m pipeline.stages.augment --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from pipeline.cli import add_system_arguments, system_and_caps
from pipeline.datasets.augmentation import OPERATIONS, AugmentationPlan, augment
from pipeline.errors import exit_on_input_error
from pipeline.records import read_records, write_records
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.augment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", type=Path, required=True, help="input dataset (.json.gz)")
    add_system_arguments(parser)
    setting_argument(parser, "--per-composition", "augment.per_composition", type=int)
    setting_argument(parser, "--operations", "augment.operations", nargs="+", choices=OPERATIONS)
    setting_argument(parser, "--seed", "seed", type=int)
    parser.add_argument("--out", type=Path, required=True, help="augmented dataset (.json.gz)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    records = read_records(args.dataset)
    system, caps = system_and_caps(args, (r.species for r in records))
    settings = AugmentationPlan(args.per_composition, tuple(args.operations), args.seed)
    augmented = augment(records, system, caps, settings, progress=True)
    write_records(augmented, args.out)
    by_source = Counter(r.source for r in augmented)
    print(json.dumps({"input": len(records), "output": len(augmented), **by_source}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
