"""Stage 3, encode: the augmented dataset as point-cloud tensors with composition labels.

Writes one ``.npz`` with

* ``x``: ``(N, 2 + sum(caps), 3)`` float32 point clouds (:mod:`pipeline.represent.pointcloud`);
* ``counts``: ``(N, n_elements)`` atoms of each element;
* ``condition``: ``(N, sum(caps + 1))`` per-element one-hot atom counts;
* ``composition_class``: ``(N,)`` index into ``compositions``;
* ``compositions``, ``ids``, ``parents``, ``elements``, ``caps``: labels and layout;

and a CSV of the composition classes. Run ``python -m pipeline.stages.encode --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.cli import add_system_arguments, system_and_caps
from pipeline.errors import exit_on_input_error
from pipeline.formats import save_encoded
from pipeline.records import read_records
from pipeline.represent.pointcloud import PointCloudEncoding
from pipeline.represent.pointcloud_dataset import composition_table, pointcloud_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.encode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", type=Path, required=True)
    add_system_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="point clouds (.npz)")
    parser.add_argument(
        "--out-compositions", type=Path, required=True, help="composition classes (.csv)"
    )
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    records = read_records(args.dataset)
    system, caps = system_and_caps(args, (r.species for r in records))
    data = pointcloud_dataset(records, PointCloudEncoding.for_system(system, caps))
    save_encoded(data, args.out)
    args.out_compositions.parent.mkdir(parents=True, exist_ok=True)
    composition_table(data).to_csv(args.out_compositions, index=False)
    print(
        json.dumps(
            {
                "structures": len(data),
                "compositions": len(data.compositions),
                "shape": list(data.x.shape[1:]),
                "caps": caps,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
