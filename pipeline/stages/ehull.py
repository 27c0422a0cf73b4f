"""CLI of the E_hull stage: ``python -m pipeline.stages.ehull --help``.

Builds the hull (pymatgen ``PhaseDiagram``) of the main potential's relaxed references and
gives every relaxed candidate its E_hull in eV/atom (:mod:`pipeline.screen.hull_table`); the
phases that make the hull go to ``--out-phases``. With Materials Project entries also E_hull on
the MP hull; with ``--second-opinion`` another potential's E_hull at the same geometry on its
own hull; with ``--consensus`` each potential's E_hull from its own relaxations. Energies
only: which of them pass is the export's verdict (:mod:`pipeline.screen.criteria`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monty.serialization import loadfn

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import REPEAT_E_HULL
from pipeline.records import read_records
from pipeline.screen.convex_hull import (
    mp_corrections_note,
    mp_e_above_hull,
    oxygen_fit,
    potential_name,
)
from pipeline.screen.hull_table import (
    add_consensus,
    add_coverage,
    add_other_potential,
    add_second_opinion,
    hull_table,
)
from pipeline.screen.potential_names import energy_scale
from pipeline.screen.reference_hull import hull_phase_table
from pipeline.screen.thermochemistry import OXYGEN_REFERENCES
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.ehull",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates")
    parser.add_argument(
        "--references-relaxed", type=Path, required=True, help="the hull's relaxed phases"
    )
    parser.add_argument(
        "--mp-entries",
        type=Path,
        default=None,
        help="Materials Project entries (monty JSON); empty list: skipped",
    )
    parser.add_argument(
        "--consensus",
        nargs=3,
        action="append",
        metavar=("POTENTIAL", "RELAXED", "REFERENCES"),
        help="another potential's relaxed candidates and its relaxed hull phases",
    )
    parser.add_argument(
        "--second-opinion",
        nargs=3,
        default=None,
        metavar=("POTENTIAL", "ENERGIES", "REFERENCES"),
        help="another potential's single-point energies of the relaxed candidates, and its"
        " own relaxed hull phases",
    )
    parser.add_argument(
        "--repeat",
        type=Path,
        help="the main potential's repeated relaxations of the near-threshold candidates"
        " (relax repeat): e_above_hull_repeat",
    )
    setting_argument(
        parser,
        "--oxygen-reference",
        "screen.oxygen_reference",
        choices=OXYGEN_REFERENCES,
        help="the hulls' oxygen reference: the O2 molecule, or fitted to measured oxides",
    )
    parser.add_argument("--out", type=Path, required=True, help="hull.csv")
    parser.add_argument(
        "--out-phases", type=Path, required=True, help="the references and which make the hull"
    )
    return parser


def load_mp_entries(path: Path) -> list:
    if not path.is_file():
        raise PipelineInputError(f"Materials Project entries not found: {path}")
    try:
        entries = loadfn(path)
    except (ValueError, OSError, EOFError) as exc:  # JSONDecodeError is a ValueError
        raise PipelineInputError(f"{path}: not a monty JSON list of entries ({exc})") from None
    if not isinstance(entries, list):
        raise PipelineInputError(f"{path}: expected a JSON list of entries")
    return entries


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    candidates = read_records(args.relaxed)
    references = read_records(args.references_relaxed)
    oxygen = args.oxygen_reference
    table = hull_table(candidates, references, oxygen)
    table["oxygen_reference"] = oxygen_fit(references, oxygen).describe()
    if args.mp_entries is not None:
        mp_entries = load_mp_entries(args.mp_entries)
        if mp_entries:
            table["e_above_hull_mp"] = mp_e_above_hull(candidates, mp_entries)
            table["mp_corrections"] = [mp_corrections_note(potential_name(r)) for r in candidates]
    missing = add_coverage(table, references)
    if missing:
        print(
            "no compound among the hull references in the binary subsystem(s)"
            f" {', '.join(missing)}; E_hull is a lower bound where one exists (with a non-metal:"
            " missing_binaries in the table)"
        )
    for potential, relaxed, other_references in args.consensus or []:
        other = read_records(Path(other_references))
        add_consensus(table, potential, read_records(Path(relaxed)), other, oxygen)
    if args.second_opinion is not None:
        potential, energies, other_references = args.second_opinion
        other = read_records(Path(other_references))
        add_second_opinion(table, potential, read_records(Path(energies)), other, oxygen)
    if args.repeat is not None:
        repeats = read_records(args.repeat)
        add_other_potential(table, REPEAT_E_HULL, repeats, references, oxygen)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    phases = hull_phase_table(references, oxygen)
    phases["energy_scale"] = [
        energy_scale(p.split()[0]).description if p else "" for p in phases["potential"]
    ]
    args.out_phases.parent.mkdir(parents=True, exist_ok=True)
    phases.to_csv(args.out_phases, index=False)
    print(
        json.dumps(
            {
                "candidates": len(table),
                "with_e_above_hull": int(table["e_above_hull"].notna().sum()),
                "hull_phases": int(phases["on_hull"].sum()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
