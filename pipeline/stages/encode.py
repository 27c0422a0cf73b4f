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

import numpy as np
import pandas as pd

from pipeline.chemsys import composition_label
from pipeline.cli import add_system_arguments, system_and_caps
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import EncodedDataset, save_encoded
from pipeline.records import CrystalRecord, read_records
from pipeline.represent.pointcloud import PointCloudEncoding


def encode_records(records: list[CrystalRecord], encoding: PointCloudEncoding) -> EncodedDataset:
    """Encode every record; composition classes are numbered in sorted label order."""
    if not records:
        raise PipelineInputError("nothing to encode: the dataset is empty")
    x = np.stack([encoding.encode(r) for r in records]).astype(np.float32)
    counts = np.stack([encoding.atom_counts(r.species) for r in records])
    labels = [composition_label(encoding.elements, c) for c in counts]
    compositions = sorted(set(labels), key=lambda s: (len(s), s))
    index = {label: i for i, label in enumerate(compositions)}
    return EncodedDataset(
        encoding=encoding,
        x=x,
        counts=counts,
        composition_class=np.array([index[label] for label in labels], dtype=np.int64),
        compositions=compositions,
        ids=[r.id for r in records],
        parents=[r.parent or r.id for r in records],
    )


def composition_table(data: EncodedDataset) -> pd.DataFrame:
    """One row per composition class: index, label, atoms per element, structures."""
    n_per_class = np.bincount(data.composition_class, minlength=len(data.compositions))
    rows = []
    for i, label in enumerate(data.compositions):
        counts = data.counts[data.composition_class == i][0]
        rows.append(
            {
                "class": i,
                "composition": label,
                **{f"n_{el}": int(n) for el, n in zip(data.encoding.elements, counts)},
                "n_structures": int(n_per_class[i]),
            }
        )
    return pd.DataFrame(rows)


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
    data = encode_records(records, PointCloudEncoding.for_system(system, caps))
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
