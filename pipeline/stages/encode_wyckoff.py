"""Stage encode (Wyckoff): the training structures as space-group templates and free parameters.

Each structure of the dataset becomes its conventional cell, space group, lattice
parameters and Wyckoff orbits (:func:`pipeline.represent.wyckoff.encode_record`, PyXtal at
``encoding.wyckoff_symprec`` Å); the Wyckoff diffusion model
(:mod:`pipeline.models.wyckoff_diffusion`) trains on this file. The unaugmented dataset is
read: supercells, translations and axis swaps of a crystal give back its own template.
Run ``python -m pipeline.stages.encode_wyckoff --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import read_records
from pipeline.represent.wyckoff import encode_record, save_wyckoff_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.encode_wyckoff",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", type=Path, required=True, help="training dataset (.json.gz)")
    parser.add_argument("--chemsys", required=True, help="chemical system, e.g. Mg-Mn-O")
    parser.add_argument("--symprec", type=float, required=True, help="symmetry tolerance (Å)")
    parser.add_argument("--out", type=Path, required=True, help="Wyckoff dataset (.npz)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.symprec <= 0:
        raise PipelineInputError(f"--symprec must be > 0, got {args.symprec}")
    system = ChemicalSystem.parse(args.chemsys)
    records = read_records(args.dataset)
    for record in records:
        foreign = system.foreign_elements(record.species)
        if foreign:
            raise PipelineInputError(f"{record.id}: elements {foreign} are not in {system}")
    crystals = [
        encode_record(r, args.symprec) for r in tqdm(records, desc="Wyckoff", mininterval=2.0)
    ]
    save_wyckoff_dataset(crystals, system.elements, args.symprec, args.out)
    systems = Counter(c.crystal_system for c in crystals)
    print(
        json.dumps(
            {
                "structures": len(crystals),
                "templates": len({c.template for c in crystals}),
                "p1_fraction": round(sum(c.space_group == 1 for c in crystals) / len(crystals), 4),
                "crystal_systems": dict(systems.most_common()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
