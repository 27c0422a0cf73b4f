"""CLI of the discovery stage: ``python -m pipeline.stages.discovery --help``.

The end of a run with discovery rounds: every round's relaxed candidates on the final hull
(the last round's hull with its confirmed structures), the verdict and the confirmation
recomputed (:mod:`pipeline.discovery.final`), one table of all rounds (a ``round`` column,
``model`` the source); the counts per round and source (:func:`round_summary`) and the
discovery curve, confirmed structures against relaxations spent
(:mod:`pipeline.discovery.curve`). Per-round files are given in round order, from round 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.discovery.curve import plot_discovery_curve, round_summary
from pipeline.discovery.final import FinalHull, RoundScreen, final_table
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import as_flag, read_table
from pipeline.records import read_records
from pipeline.screen.criteria import Criteria
from pipeline.screen.thermochemistry import OXYGEN_REFERENCES
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.discovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    files = parser.add_argument_group("per round, in round order")
    files.add_argument("--candidates", type=Path, nargs="+", required=True, help="candidates.csv")
    files.add_argument(
        "--relaxed", type=Path, nargs="+", required=True, help="main potential's relaxed"
    )
    files.add_argument(
        "--relax-status", type=Path, nargs="+", required=True, help="main potential's"
    )
    files.add_argument("--validation", type=Path, nargs="+", required=True, help="validation.csv")
    files.add_argument(
        "--confirmations",
        type=Path,
        nargs="+",
        required=True,
        help="each round's confirmation table (the confirm stage of the round after it)",
    )
    files.add_argument(
        "--other",
        nargs="+",
        action="append",
        metavar="POTENTIAL FINAL_HULL RECORDS",
        help="another potential with a hull (second opinion, consensus): its final hull and"
        " its records of each round's candidates",
    )
    parser.add_argument(
        "--references", type=Path, required=True, help="the main potential's final hull"
    )
    parser.add_argument(
        "--criteria",
        type=Criteria.from_json,
        help="the screen's criteria as JSON; default: config.yaml's",
    )
    setting_argument(
        parser, "--confirm-e-hull", "discovery.confirm_e_hull", type=float, metavar="EV"
    )
    setting_argument(
        parser, "--oxygen-reference", "screen.oxygen_reference", choices=OXYGEN_REFERENCES
    )
    parser.add_argument("--out", type=Path, required=True, help="all rounds' candidates (.csv)")
    parser.add_argument("--out-rounds", type=Path, required=True, help="per round and source")
    parser.add_argument("--out-plot", type=Path, required=True, help="the discovery curve (.png)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    criteria = args.criteria or Criteria.default()
    count = len(args.candidates)
    per_round = [args.relaxed, args.relax_status, args.validation, args.confirmations]
    if any(len(files) != count for files in per_round):
        raise PipelineInputError(f"give each per-round file for all {count} rounds")
    others, other_hulls = {}, {}
    for potential, hull, *records in args.other or []:
        if len(records) != count:
            raise PipelineInputError(f"--other {potential}: {len(records)} files, {count} rounds")
        other_hulls[potential] = read_records(Path(hull))
        others[potential] = [read_records(Path(p)) for p in records]
    rounds = []
    for k in range(count):
        confirmation = read_table(args.confirmations[k], ["id", "confirmed"])
        rounds.append(
            RoundScreen(
                round=k + 1,
                candidates=read_table(args.candidates[k], ["id", "model", "e_above_hull"]),
                relaxed=read_records(args.relaxed[k]),
                others={p: records[k] for p, records in others.items()},
                confirmed_ids=frozenset(confirmation.loc[as_flag(confirmation["confirmed"]), "id"]),
            )
        )
    hull = FinalHull(read_records(args.references), other_hulls, args.oxygen_reference)
    table = final_table(rounds, hull, criteria, args.confirm_e_hull)
    summary = round_summary(
        {k + 1: read_table(p, ["id", "model"]) for k, p in enumerate(args.validation)},
        {k + 1: read_table(p, ["id"]) for k, p in enumerate(args.relax_status)},
        table,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    args.out_rounds.parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(args.out_rounds, index=False)
    plot_discovery_curve(summary, args.out_plot)
    print(
        json.dumps(
            {
                "rounds": count,
                "candidates": len(table),
                "relaxations": int(summary["relaxations"].sum()),
                "confirmed_in_round": int(table["confirmed_in_round"].sum()),
                "confirmed_on_final_hull": int(table["confirmed"].sum()),
                "passes": int(table["passes"].sum()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
