"""CLI of the explorer stage: ``python -m pipeline.stages.explorer --help``.

Writes ``results/explorer/`` (a static page set that opens from disk: a sortable, filterable
table of every relaxed structure, a 3D view of the selected one beside its nearest known
structure, the ternary hull and band gap vs Delta G_pbx as clickable plots, POSCAR/CIF and
DFT-input downloads) and ``results/candidates.db`` (an ASE database of the same structures
and columns). See docs/explorer.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import exit_on_input_error
from pipeline.explorer.site import ExplorerInputs, write_explorer
from pipeline.screen.thermochemistry import OXYGEN_REFERENCES
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.explorer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tables = parser.add_argument_group("inputs")
    tables.add_argument("--relaxed", type=Path, required=True, help="relaxed structures")
    tables.add_argument("--candidates", type=Path, required=True, help="candidates.csv")
    for name in ("hull", "properties", "pourbaix", "validation", "relax-status"):
        tables.add_argument(f"--{name}", type=Path, help=f"the screen's {name} table (.csv)")
    tables.add_argument("--references", type=Path, required=True, help="relaxed hull references")
    tables.add_argument(
        "--known",
        type=Path,
        required=True,
        help="known structures (the data stage's known.json.gz)",
    )
    tables.add_argument(
        "--criteria", type=Path, required=True, help="the export's criteria.json (thresholds)"
    )
    tables.add_argument("--dft-ready", type=Path, help="the export's dft_ready/ folder")
    tables.add_argument(
        "--dft-check",
        type=Path,
        help="the DFT check's dft_check.csv (dft.check): e_above_hull_dft, dft_agrees by id",
    )
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    setting_argument(
        parser,
        "--oxygen-reference",
        "screen.oxygen_reference",
        choices=OXYGEN_REFERENCES,
        help="the hull's oxygen reference (the ternary plot's hull)",
    )
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--out-dir", type=Path, required=True, help="the page set's folder")
    outputs.add_argument("--out-db", type=Path, required=True, help="the ASE database (.db)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    inputs = ExplorerInputs(
        relaxed=args.relaxed,
        candidates=args.candidates,
        criteria=args.criteria,
        references=args.references,
        known=args.known,
        chemsys=args.chemsys,
        oxygen_reference=args.oxygen_reference,
        hull=args.hull,
        properties=args.properties,
        pourbaix=args.pourbaix,
        validation=args.validation,
        relax_status=args.relax_status,
        dft_ready=args.dft_ready,
        dft_check=args.dft_check,
    )
    index = write_explorer(inputs, args.out_dir, args.out_db)
    print(f"{index} and {args.out_db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
