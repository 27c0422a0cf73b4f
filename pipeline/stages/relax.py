"""Stage relax: relax the validated candidates with a universal ML potential.

``shard``: relax every ``--shards``-th structure starting at ``--shard`` (one job of a
sharded run; structures are dealt out in turn so shards get similar work) and write the
converged structures (``properties.energy_per_atom``, eV/atom) and a status table.
With ``screen.early_stop`` enabled (``--early-stop``, ``--references-relaxed``), a relaxation
still far above the largest E_hull threshold at a check step is stopped
(:mod:`pipeline.screen.early_stop`).
``gather``: join the shards into ``relaxed.json.gz`` and ``relax_status.csv``.
``repeat``: relax again, from a start rattled by ``--rattle`` Å along the same path, the
candidates whose E_hull lies within ``--window`` eV/atom of a threshold of the screen's
verdict (:mod:`pipeline.screen.verdicts`); the E_hull stage places them on the same hull and the
verdict marks those whose verdict flips (``verdict_stable``). Sharded as ``shard`` is
(``--shard``, ``--shards``), joined by ``gather``.
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
from pipeline.screen.criteria import Criteria
from pipeline.screen.early_stop import EarlyStopSettings, early_stop_for, is_stopped
from pipeline.screen.hull_table import hull_table
from pipeline.screen.modes import add_relax_arguments, relax_options
from pipeline.screen.potentials import describe
from pipeline.screen.relaxation import summarize
from pipeline.screen.thermochemistry import OXYGEN_REFERENCES
from pipeline.screen.verdicts import rattled, relax_along_screen_path
from pipeline.settings import setting_argument


def add_hull_arguments(parser: argparse.ArgumentParser, oxygen_help: str) -> None:
    """--oxygen-reference and --criteria: where a command places structures on the hull."""
    setting_argument(
        parser,
        "--oxygen-reference",
        "screen.oxygen_reference",
        choices=OXYGEN_REFERENCES,
        help=oxygen_help,
    )
    parser.add_argument(
        "--criteria",
        type=Criteria.from_json,
        help="the screen's thresholds as JSON (Criteria); default: config.yaml's",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.relax",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    shard = commands.add_parser("shard", help="relax one shard of the structures")
    shard.add_argument("--input", type=Path, required=True, help="validated structures")
    shard.add_argument("--shard", type=int, required=True, help="which shard, from 0")
    setting_argument(shard, "--shards", "screen.shards", type=int, help="how many in all")
    add_relax_arguments(shard)
    shard.add_argument(
        "--symmetrise",
        action="store_true",
        help="refine each relaxed structure to its space group at 0.1 Å, relax it again and"
        " keep the lower energy (pipeline.screen.symmetrise)",
    )
    shard.add_argument(
        "--early-stop",
        type=EarlyStopSettings.from_json,
        help="JSON of EarlyStopSettings (pipeline.screen.early_stop); default: config.yaml's",
    )
    shard.add_argument(
        "--references-relaxed", type=Path, help="the main potential's hull (for the early stop)"
    )
    add_hull_arguments(shard, "the hull's oxygen reference (for the early stop)")
    shard.add_argument("--out", type=Path, required=True, help="relaxed structures (.json.gz)")
    shard.add_argument("--out-status", type=Path, required=True, help="status table (.csv)")
    repeat = commands.add_parser("repeat", help="relax the near-threshold candidates again")
    repeat.add_argument("--input", type=Path, required=True, help="the structures relaxed")
    repeat.add_argument("--relaxed", type=Path, required=True, help="their relaxations")
    repeat.add_argument(
        "--references-relaxed", type=Path, required=True, help="the main potential's hull"
    )
    add_hull_arguments(repeat, "the hull's oxygen reference")
    setting_argument(repeat, "--window", "screen.verdict_check.window", type=float, help="eV/atom")
    setting_argument(repeat, "--rattle", "screen.verdict_check.rattle", type=float, help="Å")
    setting_argument(repeat, "--seed", "seed", type=int)
    repeat.add_argument(
        "--shard", type=int, default=0, help="which shard of the repeated candidates, from 0"
    )
    setting_argument(repeat, "--shards", "screen.shards", type=int, help="how many in all")
    add_relax_arguments(repeat)
    repeat.add_argument("--symmetrise", action="store_true", help="as the relaxation did")
    repeat.add_argument("--out", type=Path, required=True, help="the repeats (.json.gz)")
    repeat.add_argument("--out-status", type=Path, required=True, help="status table (.csv)")
    gather = commands.add_parser("gather", help="join the shards")
    gather.add_argument("--shard-files", type=Path, nargs="+", required=True)
    gather.add_argument("--status-files", type=Path, nargs="+", required=True)
    gather.add_argument("--out", type=Path, required=True)
    gather.add_argument("--out-status", type=Path, required=True)
    return parser


def shard_of(items: list, shard: int, shards: int) -> list:
    """Every ``shards``-th item from the ``shard``-th: one job's share, dealt out in turn."""
    if not 0 <= shard < shards:
        raise PipelineInputError(f"--shard must be in 0..{shards - 1}, not {shard}")
    return items[shard::shards]


def run_shard(args: argparse.Namespace) -> dict:
    records = shard_of(read_records(args.input), args.shard, args.shards)
    spec, settings = relax_options(args)
    potential = describe(spec)
    early_stop = early_stop_for(
        records,
        read_records(args.references_relaxed) if args.references_relaxed else None,
        args.oxygen_reference,
        potential,
        (args.criteria or Criteria.default()).metastable,
        args.early_stop or EarlyStopSettings(),
    )
    results, outcomes = relax_along_screen_path(
        records, spec, settings, args.mode, args.batch_atoms, args.symmetrise, True, early_stop
    )
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
        "stopped_early": sum(is_stopped(r) for r in results),
        "potential": potential,
        "mode": args.mode,
    }


def run_repeat(args: argparse.Namespace) -> dict:
    criteria = args.criteria or Criteria.default()
    spec, settings = relax_options(args)
    relaxed = read_records(args.relaxed)
    references = read_records(args.references_relaxed)
    e_hull = hull_table(relaxed, references, args.oxygen_reference)
    near = e_hull.loc[criteria.near_threshold(e_hull["e_above_hull"], args.window), "id"]
    chosen = set(near)
    # dealt out in turn as the shards of the relaxation are; each start's rattle is seeded by
    # its id, so a candidate's repeat is the same in any shard
    chosen_starts = [r for r in read_records(args.input) if r.id in chosen]
    starts = [
        rattled(r, args.rattle, args.seed) for r in shard_of(chosen_starts, args.shard, args.shards)
    ]
    results, outcomes = relax_along_screen_path(
        starts, spec, settings, args.mode, args.batch_atoms, args.symmetrise
    )
    potential = describe(spec)
    repeats = [res.to_record(rec, potential) for rec, res in zip(starts, results) if res.ok]
    write_records(repeats, args.out)
    rows = [{**r.table_row(potential), **o.table_columns()} for r, o in zip(results, outcomes)]
    _write_csv(pd.DataFrame(rows, columns=RELAX_STATUS_COLUMNS), args.out_status)
    return {
        "shard": args.shard,
        "relaxed": len(relaxed),
        "near_threshold": len(chosen_starts),
        "repeated": len(starts),
        "window_eV_per_atom": args.window,
        "rattle_angstrom": args.rattle,
        **summarize(results),
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
    run = {"shard": run_shard, "repeat": run_repeat, "gather": run_gather}[args.command]
    summary = run(args)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
