"""CLI of the explorer stage: ``python -m pipeline.stages.explorer --help``.

Writes ``results/explorer/`` (a static page set that opens from disk: a sortable, filterable
table of every relaxed structure, a 3D view of the selected one beside its nearest known
structure, the ternary hull and band gap vs Delta G_pbx as clickable plots, POSCAR/CIF and
DFT-input downloads) and ``results/candidates.db`` (an ASE database of the same structures
and columns). See docs/explorer.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import exit_on_input_error
from pipeline.explorer.database import write_database
from pipeline.explorer.nearest import find_nearest
from pipeline.explorer.page import build_data, write_page
from pipeline.explorer.table import (
    add_space_groups,
    merge_tables,
    ordered_columns,
    read_optional_table,
)
from pipeline.explorer.ternary import ternary_hull
from pipeline.records import read_records
from pipeline.screen.criteria import Criteria
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
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--out-dir", type=Path, required=True, help="the page set's folder")
    outputs.add_argument("--out-db", type=Path, required=True, help="the ASE database (.db)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = ChemicalSystem.parse(args.chemsys)
    relaxed = read_records(args.relaxed)
    references = read_records(args.references)
    known_structures = read_records(args.known)
    candidates = read_optional_table(args.candidates)
    table = merge_tables(
        relaxed,
        [
            candidates,
            read_optional_table(args.hull),
            read_optional_table(args.properties),
            read_optional_table(args.pourbaix),
            read_optional_table(args.validation),
            read_optional_table(args.relax_status),
        ],
    )
    table = add_space_groups(table, relaxed)
    matched = candidates.dropna(subset=["known_as"])
    known_as = dict(zip(matched["id"], matched["known_as"].astype(str)))
    nearest = find_nearest(relaxed, references, known_structures, known_as)
    table["nearest_id"] = table["id"].map({n.candidate_id: n.known_id for n in nearest})
    table["nearest_how"] = table["id"].map({n.candidate_id: n.how for n in nearest})

    for stale in ("structures", "known", "dft_ready"):  # files of structures no longer here
        shutil.rmtree(args.out_dir / stale, ignore_errors=True)
    data = build_data(
        table=table,
        columns=ordered_columns(table),
        relaxed=relaxed,
        known={r.id: r for r in known_structures} | {r.id: r for r in references},
        nearest=nearest,
        hull=ternary_hull(references, list(system.elements)),
        criteria=Criteria.read(args.criteria),
        chemsys=args.chemsys,
        out_dir=args.out_dir,
        dft_ready=args.dft_ready,
    )
    index = write_page(data, args.out_dir)
    write_database(relaxed, table, args.out_db)
    print(f"{len(table)} structures: {index} and {args.out_db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
