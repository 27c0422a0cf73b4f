"""Stage 3b, encode_crystens: the augmented dataset as normalised CrysTens tensors.

The representation of Alverson et al. (2024), :mod:`pipeline.represent.crystens`. Writes one
``.npz`` (:func:`load_crystens`) with

* ``x``: ``(N, 4, 64, 64)`` float32, normalised (values in [-1, 1]);
* ``space_group``: ``(N,)`` spglib space-group numbers written into the headers;
* ``counts``: ``(N, n_elements)`` atoms of each element;
* ``ids``, ``parents``, ``elements``: labels and the chemical system's order.

Only the CrysTens models (``crystens_ddpm``, ``crystens_gan``, ``crystens_wgan``) read it, so
the rule runs only when one of them is configured. Run
``python -m pipeline.stages.encode_crystens --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import exit_on_input_error
from pipeline.formats import save_crystens
from pipeline.records import read_records
from pipeline.represent.crystens import crystens_dataset
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.encode_crystens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", type=Path, required=True, help="records (.json.gz)")
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    parser.add_argument("--out", type=Path, required=True, help="CrysTens tensors (.npz)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = ChemicalSystem.parse(args.chemsys)
    data = crystens_dataset(read_records(args.dataset), system, progress=True)
    save_crystens(data, args.out)
    print(
        json.dumps(
            {
                "structures": len(data),
                "shape": list(data.x.shape[1:]),
                "max_atoms": int(data.counts.sum(axis=1).max()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
