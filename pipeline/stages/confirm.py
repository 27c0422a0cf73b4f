"""CLI of the confirm stage (discovery rounds): ``python -m pipeline.stages.confirm --help``.

Reads the verdict of the round before (``candidates.csv``) and confirms its new, unique
candidates within ``discovery.confirm_e_hull`` of the main potential's hull that agree with the
second opinion (:mod:`pipeline.discovery.confirmation`). Writes the confirmed structures (the
main potential's relaxations) and a table of every candidate with ``confirmed``, and the sets
the next round starts from: the known structures, the training set and each potential's hull,
each the previous one with the confirmed structures added (a hull gets that potential's
records of them: ``--hull POTENTIAL PREVIOUS RECORDS OUT``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.discovery.confirmation import confirmation_table, extended, picked, with_energy
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import read_table
from pipeline.records import read_records, write_records
from pipeline.screen.criteria import Criteria
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.confirm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--round", type=int, required=True, help="the round the candidates come from"
    )
    parser.add_argument("--candidates", type=Path, required=True, help="its candidates.csv")
    parser.add_argument(
        "--relaxed", type=Path, required=True, help="its main potential's relaxed candidates"
    )
    parser.add_argument(
        "--criteria",
        type=Criteria.from_json,
        help="the screen's criteria as JSON (second opinion, consensus); default: config.yaml's",
    )
    setting_argument(
        parser, "--confirm-e-hull", "discovery.confirm_e_hull", type=float, metavar="EV"
    )
    parser.add_argument("--known", type=Path, required=True, help="the round's known structures")
    parser.add_argument("--training", type=Path, required=True, help="the round's training set")
    parser.add_argument(
        "--hull",
        nargs=4,
        action="append",
        required=True,
        metavar=("POTENTIAL", "PREVIOUS", "RECORDS", "OUT"),
        help="a potential's hull phases, its records of the candidates, the hull to write",
    )
    parser.add_argument("--out-confirmed", type=Path, required=True, help="confirmed structures")
    parser.add_argument("--out-table", type=Path, required=True, help="every candidate (.csv)")
    parser.add_argument("--out-known", type=Path, required=True)
    parser.add_argument("--out-training", type=Path, required=True)
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    criteria = args.criteria or Criteria.default()
    candidates = read_table(args.candidates, ["id", "model", "formula", "e_above_hull", "new"])
    table = confirmation_table(candidates, args.round, args.confirm_e_hull, criteria)
    ids = table.loc[table["confirmed"], "id"].tolist()
    found = picked(read_records(args.relaxed), ids)
    write_records(found, args.out_confirmed)
    args.out_table.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out_table, index=False, float_format="%.6g")
    write_records(extended(read_records(args.known), found), args.out_known)
    write_records(extended(read_records(args.training), found), args.out_training)
    for potential, previous, records, out in args.hull:
        theirs = with_energy(picked(read_records(Path(records)), ids))
        if len(theirs) != len(ids):
            raise PipelineInputError(f"{potential}: no energy for some confirmed structures")
        write_records(extended(read_records(Path(previous)), theirs), Path(out))
    print(
        json.dumps(
            {
                "round": args.round,
                "candidates": len(table),
                "new": int(table["new"].sum()),
                "confirmed": len(ids),
                "by_source": table[table["confirmed"]].groupby("model").size().to_dict(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
