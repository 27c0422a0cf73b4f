"""Stage prescreen: rank the valid candidates by their unrelaxed E_hull, keep the best.

Every unique valid candidate of ``validate`` gets one single-point energy with the
screening potential and its energy above the hull of the relaxed references (the same
hull the relaxed candidates are placed on later). New candidates first, then the
lowest unrelaxed E_hull: the first ``--max-candidates`` are written for relaxation; the
table lists every candidate with its rank, status (``selected``, ``deferred``,
``failed``) and reason. See :mod:`pipeline.screen.prescreening` for why.
Run ``python -m pipeline.stages.prescreen --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import read_records, write_records
from pipeline.screen.convex_hull import phase_diagram
from pipeline.screen.modes import add_relax_arguments, relax_options, single_point_records
from pipeline.screen.potentials import describe
from pipeline.screen.prescreening import (
    SELECTED,
    PrescreenRow,
    choose_for_relaxation,
    unrelaxed_rows,
)
from pipeline.screen.thermochemistry import OXYGEN_REFERENCES
from pipeline.settings import setting_argument

COLUMNS = [name for name in PrescreenRow.__dataclass_fields__] + ["potential"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.prescreen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--validated",
        type=Path,
        required=True,
        help="unique valid candidates (validate's .json.gz)",
    )
    parser.add_argument(
        "--validation-table",
        type=Path,
        required=True,
        help="validate's table (.csv), for which candidates are new",
    )
    parser.add_argument(
        "--references-relaxed",
        type=Path,
        required=True,
        help="hull references relaxed with the same potential",
    )
    setting_argument(
        parser,
        "--max-candidates",
        "screen.max_candidates",
        type=int,
        help="most candidates passed on to relaxation (default: all)",
    )
    setting_argument(
        parser,
        "--oxygen-reference",
        "screen.oxygen_reference",
        choices=OXYGEN_REFERENCES,
        help="the hull's oxygen reference: the O2 molecule, or fitted to measured oxides",
    )
    add_relax_arguments(parser)
    parser.add_argument(
        "--out", type=Path, required=True, help="candidates to relax (.json.gz), best first"
    )
    parser.add_argument("--out-table", type=Path, required=True, help="prescreen.csv")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_candidates is not None and args.max_candidates < 1:
        raise PipelineInputError("--max-candidates must be at least 1")
    spec, _ = relax_options(args)
    records = read_records(args.validated)
    table = pd.read_csv(args.validation_table, keep_default_na=False, na_values=[""])
    if not {"id", "new"} <= set(table.columns):
        raise PipelineInputError(f"{args.validation_table}: needs the columns id and new")
    new = {row.id: row.new in (True, "True") for row in table.itertuples()}
    diagram = phase_diagram(read_records(args.references_relaxed), args.oxygen_reference)

    energies = single_point_records(records, spec, args.mode, args.batch_atoms)
    potential = describe(spec)
    rows = choose_for_relaxation(
        unrelaxed_rows(records, energies, diagram, new, potential), args.max_candidates
    )
    by_id = {record.id: record for record in records}
    chosen = [by_id[row.id] for row in rows if row.status == SELECTED]
    write_records(chosen, args.out)

    args.out_table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{**asdict(row), "potential": potential} for row in rows], columns=COLUMNS).to_csv(
        args.out_table, index=False
    )
    print(
        json.dumps(
            {
                "candidates": len(records),
                **Counter(row.status for row in rows),
                "potential": potential,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
