"""CLI of the DFT hand-off and check: ``python -m pipeline.stages.dft_check --help``.

``check``   GPAW PBE(+U) E_hull of the top exported candidates at their ML geometry, against the
            phases their E_hull needs computed at the same level (cached), MP2020-corrected;
            writes the table ``dft_check.csv`` keyed by candidate id (:mod:`pipeline.dft.check`).
``flows``   writes ``flow.json`` (atomate2's MP double relaxation + static) in each folder of
            ``dft_ready/`` (:mod:`pipeline.dft.flows`).
``ship``    copies the cached calculations of the hull's phases into a shipped folder
            (``resources/dft/``: read-only cache of the bundled set's references).
``submit``  runs those flows with jobflow's local manager or submits them to jobflow-remote.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from pipeline.dft.cache import DftCache, ship
from pipeline.dft.check import check_candidates, top_exported, write_dft_check
from pipeline.dft.flows import flow_folders, write_flows
from pipeline.dft.gpaw_calc import DftSettings, require_gpaw
from pipeline.dft.submit import MANAGERS, submit_flows
from pipeline.dft.verdicts import read_verdicts
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import read_table
from pipeline.records import read_records
from pipeline.screen.criteria import Criteria
from pipeline.settings import default, parse_options, setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.dft_check",
        description="DFT for the short list: GPAW spot-check of the ML verdict; atomate2 flows.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="GPAW E_hull of the top exported candidates")
    check.add_argument("--candidates", type=Path, required=True, help="candidates.csv (ranked)")
    check.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    check.add_argument(
        "--hull-phases",
        type=Path,
        required=True,
        help="the ML hull's relaxed phases with their energies (.json.gz)",
    )
    check.add_argument(
        "--options", help="the config's dft section as JSON (default: config.yaml's)"
    )
    setting_argument(check, "--top-n", "dft.top_n", type=int, help="candidates checked")
    check.add_argument("--cache", type=Path, required=True, help="folder of cached results")
    check.add_argument(
        "--shipped",
        type=Path,
        nargs="*",
        help="read-only folders of shipped calculations (e.g. resources/dft)",
    )
    check.add_argument("--log-dir", type=Path, help="GPAW's text output per calculation")
    check.add_argument(
        "--criteria", type=Path, required=True, help="the screen's criteria (criteria.json)"
    )
    check.add_argument("--out", type=Path, required=True, help="table keyed by id (.csv)")

    flows = commands.add_parser("flows", help="write flow.json in each dft_ready/<id>/")
    flows.add_argument("dft_ready", type=Path, help="the dft_ready folder (or one <id> folder)")

    ship = commands.add_parser(
        "ship", help="copy the cached calculations of hull phases into a shipped folder"
    )
    ship.add_argument("--cache", type=Path, required=True, help="folder of cached results")
    ship.add_argument(
        "--hull-phases", type=Path, required=True, help="the phases to ship (.json.gz)"
    )
    ship.add_argument("--to", type=Path, required=True, help="e.g. resources/dft")

    submit = commands.add_parser("submit", help="run or submit the flows (jobflow)")
    submit.add_argument("folders", type=Path, nargs="+", help="dft_ready or dft_ready/<id>")
    submit.add_argument("--manager", choices=MANAGERS, required=True)
    submit.add_argument("--worker", help="jobflow-remote worker (its configuration)")
    submit.add_argument("--project", help="jobflow-remote project (default: the active one)")
    return parser


def run_check(args: argparse.Namespace) -> None:
    options = {**dataclasses.asdict(default("dft")), **parse_options(args.options or "{}")}
    settings = DftSettings.from_options(options)
    table = read_table(args.candidates, ["id", "e_above_hull", "passes"])
    ids = top_exported(table, args.top_n)
    if not ids:
        write_dft_check([], args.out)
        print("no exported candidates: nothing to check")
        return
    require_gpaw()
    relaxed = {r.id: r for r in read_records(args.relaxed)}
    missing = [i for i in ids if i not in relaxed]
    if missing:
        raise PipelineInputError(f"{args.relaxed} lacks the candidates {missing}")
    ml_e_hull = dict(zip(table["id"].astype(str), table["e_above_hull"].astype(float)))
    verdicts = check_candidates(
        [relaxed[i] for i in ids],
        ml_e_hull,
        read_records(args.hull_phases),
        settings,
        DftCache(args.cache, args.shipped or []),
        Criteria.read(args.criteria),
        log_dir=args.log_dir,
        on_calculation=lambda c: print(
            f"{c.name}: {c.result.energy_per_atom:.4f} eV/atom raw,"
            f" {c.corrected_energy_per_atom:.4f} MP2020,"
            f" {'cached' if c.cached else f'{c.result.cpu_s:.0f} s CPU'}",
            flush=True,
        ),
    )
    result = read_verdicts(write_dft_check(verdicts, args.out))
    agree = int(result["dft_agrees"].sum())
    print(
        f"{len(result)} candidates checked with DFT: {int(result['passes_dft'].sum())} pass,"
        f" the ML verdict agrees on {agree} (synthesizable) and"
        f" {int(result['dft_agrees_metastable'].sum())} (metastable)"
    )


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        run_check(args)
    elif args.command == "flows":
        written = write_flows(args.dft_ready)
        print(f"{len(written)} flows written under {args.dft_ready}")
    elif args.command == "ship":
        names = {r.id for r in read_records(args.hull_phases)}
        command = "python -m pipeline.stages.dft_check " + " ".join(argv or sys.argv[1:])
        copied = ship(args.cache, names, args.to, args.hull_phases, command)
        print(f"{len(copied)} calculations of hull phases copied to {args.to}")
    else:
        folders = [f for root in args.folders for f in flow_folders(root)]
        results = submit_flows(folders, args.manager, args.worker, args.project)
        for folder, result in zip(folders, results):
            print(f"{folder.name}: {result if args.manager == 'remote' else 'ran locally'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
