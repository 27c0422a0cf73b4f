"""Discovery rounds against one round, at an equal number of relaxations: do they pay?

    python bench/discovery.py [--configfile my.yaml] [--hold-out FORMULA ...]
                              [--rounds 3] [--per-composition 8] [--max-targets 4]
                              [--relaxations-per-round 8] [--models wyckoff_diffusion pyxtal_random]
                              [--steps N] [--finetune-steps N] [--workdir DIR] [--score-only]

Runs the real workflow (``snakemake``) twice on one configuration (``config.yaml``, then
``--configfile``, e.g. a chemical system and a CIF folder, then the bench's overlay), with the
same sources (``--models``) and the same total budget:

* **one round, fixed split**: ``discovery.rounds: 1``, every source ``rounds x per_composition``
  samples per target, at most ``rounds x relaxations_per_round`` relaxations;
* **N rounds, adaptive split**: ``discovery.rounds: N``, each round ``per_composition`` per
  source and target on average, shared by Thompson sampling on each source's confirmed hits,
  at most ``relaxations_per_round`` relaxations per round; the learned sources fine-tuned on
  what the rounds confirmed.

The first round's training is the same for both (the N-round run's trained models, data and
hulls are copied to the one-round run with their Snakemake records, so it trains nothing). Both
runs end with ``results/discovery/candidates.csv``: every candidate on the final hull of its
run, ``confirmed`` (new, unique, within ``discovery.confirm_e_hull`` of the main potential's
hull, agreeing with the second opinion: a new stable structure) and ``known_as``. Counted per
run, per source and per round: relaxations spent (``results/discovery/rounds.csv``), confirmed
structures on the final hull and when their round ended, the new stable ones (as confirmed,
at E_hull <= 0 on the final hull, whatever ``--confirm-e-hull`` the runs used), and with
``--hold-out`` (the formula's
structures left out of training, its cells the only targets; they stay known structures) the
relaxations that found a held-out structure (``known_as`` one of them) and which ones. Prints
one JSON line: each run's figures, the ratio of confirmed structures per relaxation (N rounds
over one round; the issue's target is 1.5) and of held-out finds per relaxation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from pymatgen.core import Composition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.discovery.confirmation import confirmed  # noqa: E402
from pipeline.formats import as_flag, read_table  # noqa: E402
from pipeline.models.registry import MODELS  # noqa: E402
from pipeline.records import read_records  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402

TARGET_RATIO = 1.5
FINAL = "results/discovery/candidates.csv"
# What the first round of both runs shares: copied, with Snakemake's records of them.
SHARED = ["data", "augment", "encoded", "train", "hull", "compositions"]
SHARED_FILES = ["screen/known_structures.json.gz"]


def overlay(args: argparse.Namespace, rounds: int) -> dict:
    """The bench's overrides for a run of ``rounds`` rounds (1: the whole budget at once)."""
    scale = args.rounds if rounds == 1 else 1
    train: dict = {"models": args.models}
    if args.steps is not None:
        train |= {m: {"steps": args.steps} for m in args.models if m != "pyxtal_random"}
    sample: dict = {"per_composition": args.per_composition * scale}
    if args.max_targets is not None:
        sample["max_targets"] = args.max_targets
    screen = {}
    if args.relaxations_per_round is not None:
        screen["max_candidates"] = args.relaxations_per_round * scale
    discovery: dict = {"rounds": rounds, "split": "fixed" if rounds == 1 else "adaptive"}
    if args.finetune_steps is not None:
        discovery["finetune_steps"] = args.finetune_steps
    if args.confirm_e_hull is not None:
        discovery["confirm_e_hull"] = args.confirm_e_hull
    config = {"train": train, "sample": sample, "screen": screen, "discovery": discovery}
    if args.holdouts:
        config["data"] = {"exclude_formulas": list(args.holdouts)}
        config["compositions"] = {"targets": list(args.holdouts)}  # each cell within the caps
    return config


def run_workflow(workdir: Path, configfiles: list[Path]) -> float:
    """``snakemake`` of the discovery table in ``workdir``; its wall time in seconds."""
    command = [sys.executable, "-m", "snakemake", FINAL, "-s", str(REPO / "Snakefile")]
    command += ["-d", str(workdir), "--cores", "2", "--configfile", *map(str, configfiles)]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"snakemake failed in {workdir} (logs there):\n{run.stderr[-4000:]}")
    return round(time.perf_counter() - start, 1)


def share_first_round(source: Path, target: Path) -> None:
    """Copy the trained models, data and hulls of ``source`` (and Snakemake's records of
    them, times kept) so that ``target`` reuses them."""
    for name in SHARED:
        if (source / "results" / name).is_dir():
            shutil.copytree(
                source / "results" / name, target / "results" / name, dirs_exist_ok=True
            )
    for name in SHARED_FILES:
        if (source / "results" / name).is_file():
            (target / "results" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / "results" / name, target / "results" / name)
    metadata = source / ".snakemake" / "metadata"
    if metadata.is_dir():
        shutil.copytree(metadata, target / ".snakemake" / "metadata", dirs_exist_ok=True)


def held_out_ids(workdir: Path, holdouts: list[str]) -> set[str]:
    """The ids of the held-out formulas' known structures (``known.json.gz`` keeps them)."""
    formulas = {Composition(f).reduced_formula for f in holdouts}
    known = read_records(workdir / "results/data/known.json.gz")
    return {r.id for r in known if Composition(r.formula).reduced_formula in formulas}


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def score(workdir: Path, holdouts: list[str]) -> dict:
    """A finished run's figures (see the module docstring)."""
    final = read_table(workdir / FINAL, ["id", "model", "round", "confirmed", "known_as"])
    final["confirmed"] = as_flag(final["confirmed"])
    final["confirmed_in_round"] = as_flag(final["confirmed_in_round"])
    summary = pd.read_csv(workdir / "results/discovery/rounds.csv")
    held = held_out_ids(workdir, holdouts) if holdouts else set()
    final["held_out"] = final["known_as"].astype(str).isin(held)
    # new, unique, on or below the final hull (agreeing): stable, whatever confirm_e_hull was
    criteria = Criteria.read(workdir / "results/criteria.json")
    final["stable"] = confirmed(final, 0.0, criteria)

    def figures(rows: pd.DataFrame, counts: pd.DataFrame) -> dict:
        relaxations = int(counts["relaxations"].sum())
        out = {
            "samples": int(counts["samples"].sum()),
            "relaxations": relaxations,
            "converged": len(rows),
            "new": int(as_flag(rows["new"]).sum()),
            "confirmed": int(rows["confirmed"].sum()),
            "confirmed_in_round": int(rows["confirmed_in_round"].sum()),
            "confirmed_per_relaxation": ratio(int(rows["confirmed"].sum()), relaxations),
            "stable_new": int(rows["stable"].sum()),
            "stable_new_per_relaxation": ratio(int(rows["stable"].sum()), relaxations),
        }
        if holdouts:
            out["held_out_finds"] = int(rows["held_out"].sum())
            out["held_out_finds_per_relaxation"] = ratio(int(rows["held_out"].sum()), relaxations)
            out["held_out_structures"] = sorted(rows.loc[rows["held_out"], "known_as"].unique())
        return out

    result = figures(final, summary)
    result["by_source"] = {
        source: figures(final[final["model"] == source], summary[summary["source"] == source])
        for source in sorted(summary["source"].unique())
    }
    result["by_round"] = {
        int(r): figures(final[final["round"] == r], summary[summary["round"] == r])
        for r in sorted(summary["round"].unique())
    }
    budgets = sorted(workdir.glob("results/rounds/*/budget.csv"))
    result["budgets"] = {
        int(path.parent.name): dict(
            zip(pd.read_csv(path)["source"], pd.read_csv(path)["per_composition"].tolist())
        )
        for path in budgets
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configfile", type=Path, help="an overlay of config.yaml (a system)")
    parser.add_argument(
        "--hold-out", action="append", default=[], metavar="FORMULA", dest="holdouts"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the adaptive run")
    parser.add_argument("--per-composition", type=int, default=8, help="per source and round")
    parser.add_argument("--max-targets", type=int, default=4, help="without --hold-out")
    parser.add_argument("--relaxations-per-round", type=int, help="screen.max_candidates")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["wyckoff_diffusion", "pyxtal_random"],
        choices=sorted(MODELS),
    )
    parser.add_argument("--steps", type=int, help="learned models' steps (default: config's)")
    parser.add_argument("--finetune-steps", type=int, help="default: config's")
    parser.add_argument("--confirm-e-hull", type=float, help="eV/atom; default: config's")
    parser.add_argument("--workdir", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--score-only", action="store_true", help="score the runs in --workdir")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds: at least 2 (the comparison is with one round)")
    if args.score_only and args.workdir is None:
        parser.error("--score-only needs the --workdir of finished runs")
    if args.holdouts:
        args.max_targets = None

    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        runs = {"rounds_adaptive": workdir / "rounds", "one_round_fixed": workdir / "one_round"}
        seconds = {}
        if not args.score_only:
            for name, folder in runs.items():
                folder.mkdir(parents=True, exist_ok=True)
                rounds = args.rounds if name == "rounds_adaptive" else 1
                (folder / "bench.yaml").write_text(yaml.safe_dump(overlay(args, rounds)))
                if name == "one_round_fixed":
                    share_first_round(runs["rounds_adaptive"], folder)
                files = [args.configfile.resolve()] if args.configfile else []
                seconds[name] = run_workflow(folder, [*files, folder / "bench.yaml"])
        figures = {name: score(folder, args.holdouts) for name, folder in runs.items()}
        used = yaml.safe_load((runs["rounds_adaptive"] / "bench.yaml").read_text())
    rounds, one = figures["rounds_adaptive"], figures["one_round_fixed"]
    rates = (rounds["confirmed_per_relaxation"], one["confirmed_per_relaxation"])
    line = {
        "bench": "discovery",
        "configfile": str(args.configfile) if args.configfile else None,
        "hold_out": args.holdouts,
        "rounds": args.rounds,
        "per_composition": args.per_composition,
        "relaxations_per_round": args.relaxations_per_round,
        "models": args.models,
        "overlay": used,
        "workflow_s": seconds or None,
        "runs": figures,
        "confirmed_per_relaxation_ratio": ratio(rates[0] or 0.0, rates[1] or 0.0)
        if rates[1]
        else None,
        "target_ratio": TARGET_RATIO,
    }
    stable = (rounds["stable_new_per_relaxation"], one["stable_new_per_relaxation"])
    line["stable_new_per_relaxation_ratio"] = (
        ratio(stable[0] or 0.0, stable[1]) if stable[1] else None
    )
    if args.holdouts:
        finds = (rounds["held_out_finds_per_relaxation"], one["held_out_finds_per_relaxation"])
        line["held_out_finds_per_relaxation_ratio"] = (
            ratio(finds[0] or 0.0, finds[1]) if finds[1] else None
        )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
