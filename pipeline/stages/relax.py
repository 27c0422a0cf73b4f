"""Stage relax: relax the validated candidates with a universal ML potential.

``shard``: relax every ``--shards``-th structure starting at ``--shard`` (one job of a
sharded run; structures are dealt out in turn so shards get similar work) and write the
converged structures (``properties.energy_per_atom``, eV/atom) and a status table.
``gather``: join the shards into ``relaxed.json.gz`` and ``relax_status.csv``.
A relaxation that fails (diverges or reaches the step limit) is in the status table with
its reason, never dropped. Run ``python -m pipeline.stages.relax shard --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import RELAX_STATUS_COLUMNS
from pipeline.records import read_records, write_records
from pipeline.screen.modes import add_relax_arguments, relax_options, relax_records
from pipeline.screen.potentials import describe
from pipeline.screen.relaxation import summarize
from pipeline.screen.symmetrise import first_relaxations, symmetrise_and_rerelax


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.relax",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    shard = commands.add_parser("shard", help="relax one shard of the structures")
    shard.add_argument("--input", type=Path, required=True, help="validated structures")
    shard.add_argument("--shard", type=int, default=0, help="which shard, from 0")
    shard.add_argument("--shards", type=int, default=1, help="how many shards in all")
    add_relax_arguments(shard)
    shard.add_argument(
        "--symmetrise",
        action="store_true",
        help="refine each relaxed structure to its space group at 0.1 Å, relax it again and"
        " keep the lower energy (pipeline.screen.symmetrise)",
    )
    shard.add_argument("--out", type=Path, required=True, help="relaxed structures (.json.gz)")
    shard.add_argument("--out-status", type=Path, required=True, help="status table (.csv)")
    gather = commands.add_parser("gather", help="join the shards")
    gather.add_argument("--shard-files", type=Path, nargs="+", required=True)
    gather.add_argument("--status-files", type=Path, nargs="+", required=True)
    gather.add_argument("--out", type=Path, required=True)
    gather.add_argument("--out-status", type=Path, required=True)
    return parser


def run_shard(args: argparse.Namespace) -> dict:
    if not 0 <= args.shard < args.shards:
        raise PipelineInputError(f"--shard must be in 0..{args.shards - 1}, not {args.shard}")
    spec, settings = relax_options(args)
    records = read_records(args.input)[args.shard :: args.shards]
    results = relax_records(records, spec, settings, args.mode, args.batch_atoms)
    if args.symmetrise:
        outcomes = symmetrise_and_rerelax(
            records, results, spec, settings, args.mode, args.batch_atoms
        )
    else:
        outcomes = first_relaxations(results)
    potential = describe(spec)
    relaxed = [res.to_record(rec, potential) for rec, res in zip(records, results) if res.ok]
    write_records(relaxed, args.out)
    rows = [{**r.table_row(potential), **o.table_columns()} for r, o in zip(results, outcomes)]
    _write_csv(pd.DataFrame(rows, columns=RELAX_STATUS_COLUMNS), args.out_status)
    return {
        "shard": args.shard,
        "structures": len(records),
        **summarize(results),
        "symmetrised": sum(o.symmetrised for o in outcomes),
        "symmetrise_tried": sum(o.tried for o in outcomes),
        "potential": potential,
        "mode": args.mode,
    }


def run_gather(args: argparse.Namespace) -> dict:
    if len(args.shard_files) != len(args.status_files):
        raise PipelineInputError("give one status file per shard file")
    relaxed = [record for path in args.shard_files for record in read_records(path)]
    relaxed.sort(key=lambda r: r.id)
    status = pd.concat(
        [pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in args.status_files],
        ignore_index=True,
    )
    status = status.sort_values("id", kind="stable").reset_index(drop=True)
    write_records(relaxed, args.out)
    _write_csv(status, args.out_status)
    return {"relaxed": len(relaxed), "failed": int((status["status"] != "ok").sum())}


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    summary = run_shard(args) if args.command == "shard" else run_gather(args)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
