"""Stage second_opinion: another potential's energy of every relaxed structure, as it is.

The second opinion on the screen's stability: the structures relaxed with the screening
potential get one single-point energy each with a second potential, at the first one's
geometry (no relaxation: seconds per hundred structures, where relaxing them again costs
as much as the first relaxation). The ehull stage places these energies on the second
potential's own relaxed hull. Writes the structures unchanged but for
``properties.energy_per_atom`` (NaN where the potential failed) and ``provenance.potential``.
Run ``python -m pipeline.stages.second_opinion --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from pipeline.errors import exit_on_input_error
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.modes import add_relax_arguments, relax_options, single_point_records
from pipeline.screen.potentials import describe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.second_opinion",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True, help="relaxed structures (.json.gz)")
    add_relax_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="the same with this energy")
    return parser


def with_energy(record: CrystalRecord, energy: float, potential: str) -> CrystalRecord:
    """``record`` carrying another potential's energy per atom (eV/atom)."""
    return dataclasses.replace(
        record,
        properties={**record.properties, "energy_per_atom": energy},
        provenance={
            **record.provenance,
            "potential": potential,
            "geometry_from": record.provenance.get("potential", ""),
        },
    )


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec, _ = relax_options(args)
    records = read_records(args.input)
    energies = single_point_records(records, spec, args.mode, args.batch_atoms)
    potential = describe(spec)
    write_records([with_energy(r, e, potential) for r, e in zip(records, energies)], args.out)
    failed = sum(not math.isfinite(e) for e in energies)
    print(json.dumps({"structures": len(records), "failed": failed, "potential": potential}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
