"""Scatter/gather scaling of the relaxation stage: the tiny pipeline with 1, 2 and 4 shards.

Builds everything up to the prescreened candidates once and puts ``--structures`` rattled
bundled structures (0.1 Å, seeded) in their place, so the tiny GAN's output does not decide
the load; then for each shard count reruns only `relax` (one job per shard,
`screen.shards` of them) and `gather_relaxed`, and prints
ONE JSON line: per shard count, the wall time of that run and the wall time per structure.

    python bench/scaling.py                       # shards 1 2 4, all cores
    python bench/scaling.py --shards 1 8 --cores 8 --workdir /tmp/scaling

The wall time includes Snakemake's start-up and each shard loading its potential: it is
what a user waits for, not the relaxation alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from workflow_helpers import nested, run_snakemake, tiny_config  # noqa: E402

from pipeline.records import read_records, write_records  # noqa: E402

TO_RELAX = "results/screen/prescreened.json.gz"
RELAXED = "results/screen/relax/chgnet/relaxed.json.gz"


@dataclass(frozen=True)
class ScalingRun:
    shards: int
    wall_s: float
    structures: int
    s_per_structure: float


def rattled_structures(n: int, seed: int = 0) -> list:
    """``n`` small bundled structures, every atom moved 0.1 Å in a random direction."""
    records = [
        r for r in read_records(REPO / "resources/datasets/mgmno_kim2020.json.gz") if r.natoms <= 10
    ][:n]
    for i, record in enumerate(records):
        structure = record.to_structure()
        structure.perturb(0.1, seed=seed + i)
        records[i] = type(record).from_structure(structure, id=f"rattled-{i}", source="ccgan")
    return records


def check_rules_exist(workdir: Path, config: Path) -> None:
    """Stop with a clear message when the workflow has no scatter/gather relax rules."""
    rules = set(run_snakemake(workdir, config, "--list-rules").stdout.split())
    missing = {"relax", "gather_relaxed"} - rules
    if missing:
        sys.exit(f"scaling.py: no rule(s) {sorted(missing)} in the workflow (rules/relax.smk)")


def time_relax(workdir: Path, shards: int, cores: int) -> ScalingRun:
    """Rerun relax (all shards) and gather with `screen.shards = shards`; time it."""
    config = tiny_config(workdir / f"shards_{shards}.yaml", **nested("screen.shards", shards))
    start = time.perf_counter()
    run_snakemake(
        workdir,
        config,
        RELAXED,
        "--forcerun",
        "relax",
        "--allowed-rules",
        "relax",
        "gather_relaxed",
        cores=cores,
        timeout=3600,
    )
    wall_s = time.perf_counter() - start
    shard_files = sorted((workdir / "results/screen/relax").glob("shard_*.json.gz"))
    if len(shard_files) < shards:
        sys.exit(f"scaling.py: {shards} shards asked, {len(shard_files)} shard files written")
    structures = len(read_records(workdir / TO_RELAX))
    return ScalingRun(shards, round(wall_s, 2), structures, round(wall_s / max(structures, 1), 3))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--structures", type=int, default=8, help="candidates to relax")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, help="keep the runs here (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="htvs-scaling-") as scratch:
        workdir = (args.workdir or Path(scratch)).resolve()
        base = tiny_config(workdir / "tiny.yaml")
        check_rules_exist(workdir, base)
        run_snakemake(workdir, base, TO_RELAX, cores=args.cores, timeout=3600)
        write_records(rattled_structures(args.structures), workdir / TO_RELAX)
        runs = [time_relax(workdir, shards, args.cores) for shards in args.shards]

    print(json.dumps({"bench": "scaling", "cores": args.cores, "runs": [asdict(r) for r in runs]}))


if __name__ == "__main__":
    main()
