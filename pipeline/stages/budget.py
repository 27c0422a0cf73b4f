"""CLI of the budget stage (discovery rounds): ``python -m pipeline.stages.budget --help``.

Shares round ``--round``'s samples among the sources (:mod:`pipeline.discovery.bandit`):
``--per-composition`` x sources per target, split equally (``fixed``) or by Thompson sampling
on each source's confirmed hits per sample in the rounds before (``adaptive``, at least
``--floor`` of them each). The record comes from every earlier round's sample reports (samples
asked, per source) and confirmation tables (the ``confirmed`` candidates, per source). Writes
``budget.csv``, whose ``per_composition`` the round's sample stage reads (``--budget``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from pipeline.discovery.bandit import SPLITS, SourceTally, budget_table
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import as_flag, read_table
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--round", type=int, required=True, help="the round to plan (2, 3, ...)")
    parser.add_argument("--sources", nargs="+", required=True, help="the models sharing the budget")
    parser.add_argument(
        "--sample-report",
        nargs=2,
        action="append",
        default=None,
        metavar=("SOURCE", "REPORT"),
        help="an earlier round's sample_report.csv of a source (asked per target)",
    )
    parser.add_argument(
        "--confirmations",
        type=Path,
        nargs="*",
        help="the confirmation tables of the earlier rounds (the confirm stage's)",
    )
    setting_argument(parser, "--per-composition", "sample.per_composition", type=int)
    setting_argument(parser, "--split", "discovery.split", choices=SPLITS)
    setting_argument(parser, "--floor", "discovery.floor", type=float)
    setting_argument(parser, "--seed", "seed", type=int)
    parser.add_argument("--out", type=Path, required=True, help="budget.csv")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.round < 2:
        raise PipelineInputError("--round: round 1 samples config.yaml's sample.per_composition")
    if args.per_composition < 1:
        raise PipelineInputError("--per-composition must be at least 1")
    samples: Counter[str] = Counter()
    for source, report in args.sample_report or []:
        samples[source] += int(read_table(report, ["asked"])["asked"].sum())
    hits: Counter[str] = Counter()
    for path in args.confirmations or []:
        table = read_table(path, ["model", "confirmed"])
        hits.update(table.loc[as_flag(table["confirmed"]), "model"].astype(str))
    foreign = sorted(set(samples) - set(args.sources))
    if foreign:
        raise PipelineInputError(f"sample reports of sources not sharing the budget: {foreign}")
    tallies = [SourceTally(s, samples[s], hits[s]) for s in args.sources]
    table = budget_table(
        args.round, tallies, args.per_composition, args.split, args.floor, args.seed
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6g")
    per_source = dict(zip(table["source"], table["per_composition"].tolist()))
    print(json.dumps({"round": args.round, "split": args.split, "per_composition": per_source}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
