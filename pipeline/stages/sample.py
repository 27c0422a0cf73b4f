"""Stage sample: structures of the selected target compositions from a trained model.

Reads the ``selected`` rows of the compositions stage's ``targets.csv``, asks the model
(``--model``, see :mod:`pipeline.models.registry`) for ``--per-composition`` structures
each, and writes what the model hands over as a dataset file (``source`` = model name,
``properties.latent_seed``) and a report with, per target, how many were asked for,
decoded to a crystal of the target's composition and handed over (``kept``). In a discovery
round, ``--budget`` (the budget stage's table) sets the model's structures per target and
prefixes the ids with the round (:mod:`pipeline.discovery.rounds`).
Run ``python -m pipeline.stages.sample --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from pipeline.discovery.bandit import source_budget
from pipeline.discovery.rounds import id_prefix
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.models import registry
from pipeline.models.base import SampleJob, read_targets
from pipeline.models.training import DEVICES, resolve_device
from pipeline.records import write_records
from pipeline.settings import parse_options, setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help=f"one of {sorted(registry.MODELS)}")
    parser.add_argument("--model-path", type=Path, required=True, help="trained model.pt")
    parser.add_argument("--targets", type=Path, required=True, help="targets.csv")
    setting_argument(parser, "--per-composition", "sample.per_composition", type=int)
    parser.add_argument(
        "--budget",
        type=Path,
        help="a discovery round's budget.csv: its per_composition for this model replaces"
        " --per-composition, and the ids get the round's prefix",
    )
    parser.add_argument(
        "--options",
        help="the model's sampling options as a JSON object (config sample.<model>);"
        " default: config.yaml's",
    )
    setting_argument(parser, "--seed", "seed", type=int)
    setting_argument(parser, "--device", "train.device", choices=DEVICES)
    parser.add_argument("--out", type=Path, required=True, help="samples (.json.gz)")
    parser.add_argument("--out-report", type=Path, required=True, help="per-target counts (.csv)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prefix = ""
    if args.budget is not None:
        round_number, args.per_composition = source_budget(args.budget, args.model)
        prefix = id_prefix(round_number)
    if args.per_composition < 1:
        raise PipelineInputError("--per-composition must be at least 1")
    if not args.model_path.is_file():
        raise PipelineInputError(f"trained model not found: {args.model_path}")
    model = registry.create(args.model)
    job = SampleJob(
        model_path=args.model_path,
        targets=read_targets(args.targets),
        per_composition=args.per_composition,
        options=parse_options(args.options or "{}"),
        seed=args.seed,
        device=resolve_device(args.device),
    )
    result = model.sample(job)
    for record in result.records:
        record.id = prefix + record.id
    write_records(result.records, args.out)
    report = pd.DataFrame(
        [asdict(r) for r in result.reports], columns=["label", "asked", "decoded", "kept"]
    )
    args.out_report.parent.mkdir(parents=True, exist_ok=True)
    report.rename(columns={"label": "composition"}).to_csv(args.out_report, index=False)
    print(
        json.dumps(
            {
                "model": model.name,
                "targets": len(job.targets),
                "asked": int(report["asked"].sum()),
                "decoded": int(report["decoded"].sum()),
                "kept": len(result.records),
            }
        )
    )
    if not result.records:
        asked, decoded = int(report["asked"].sum()), int(report["decoded"].sum())
        reason = (
            f"no structure of a target's composition decoded ({asked} asked)"
            if decoded == 0
            else f"{decoded} of {asked} decoded, none kept by {model.name}'s own filter"
        )
        print(f"nothing kept: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
