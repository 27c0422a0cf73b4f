"""Structures taken to a verdict per core-hour: the full path vs the screening cascade.

The same structures (a prescreen output, ``results/screen/prescreened.json.gz``) go both
ways in one process, one after the other, on one CPU thread:

* full path: the main potential relaxes each (``screen.fmax``, ``screen.max_steps``, batched),
  symmetrises as the screen does, and places it on the main potential's hull;
* cascade (:mod:`pipeline.screen.cascade`, settings ``screen.cascade``): a cheap first pass,
  a gate on the main potential's E_hull at the reached geometry, the main relaxation of the
  promoted ones.

The verdict of each structure on each path, by the screen's criteria: its E_hull within the
synthesizable threshold (the pass, ``same_pass``) and within the metastable one (the wider rate,
``same_metastable``; ``same_verdict``: both), a failed relaxation within neither. Prints ONE JSON line: CPU time (core-hours, ``time.process_time`` of this
process) and structures per core-hour of each path, their ratio, the verdicts' agreement,
the passes the cascade lost or gained, and what the cascade rejected (by the full path's
verdict). ``--rows`` writes the per-structure figures as CSV.

    python bench/throughput.py --structures results/screen/prescreened.json.gz \\
        --references results/hull/chgnet/references_relaxed.json.gz
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.records import read_records  # noqa: E402
from pipeline.screen.cascade import CascadeSettings, run_cascade, summary  # noqa: E402
from pipeline.screen.convex_hull import e_above_hull_of, phase_diagram  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.modes import relax_records, reuse_freed_memory, use_cpu_threads  # noqa: E402
from pipeline.screen.potentials import PotentialSpec, describe  # noqa: E402
from pipeline.screen.relaxation import RelaxSettings  # noqa: E402
from pipeline.screen.symmetrise import symmetrise_and_rerelax  # noqa: E402
from pipeline.settings import default  # noqa: E402


def full_path(records, spec, settings, symmetrise, batch_atoms):
    results = relax_records(records, spec, settings, "batched", batch_atoms, progress=False)
    if symmetrise:
        symmetrise_and_rerelax(records, results, spec, settings, "batched", batch_atoms, False)
    return results


def timed(function, *args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def relaxed_e_hull(diagram, records, results, potential) -> list[float]:
    """E_hull of each relaxation's result on the hull; NaN unless it converged."""
    return [
        e_above_hull_of(diagram, r, res.energy_per_atom if res.ok else math.nan, potential)
        for r, res in zip(records, results)
    ]


def path_figures(e_hull, criteria, cpu_s, wall_s) -> dict:
    within = [criteria.within(e) for e in e_hull]
    return {
        "cpu_s": round(cpu_s, 1),
        "wall_s": round(wall_s, 1),
        "structures_per_core_hour": round(len(e_hull) / (cpu_s / 3600), 1),
        "relaxed": sum(math.isfinite(e) for e in e_hull),
        "passes": sum(w[0] for w in within),
        "within_metastable": sum(w[1] for w in within),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--structures", type=Path, required=True, help="prescreened.json.gz")
    parser.add_argument(
        "--references", type=Path, required=True, help="the main potential's relaxed hull"
    )
    parser.add_argument(
        "--take",
        default="0/1",
        help="K/N: every N-th structure from the K-th (0/1: all); N > 1 measures a sample,"
        " and runs with different K can share the machine's cores",
    )
    parser.add_argument("--batch-atoms", type=int, default=None)
    parser.add_argument("--rows", type=Path, default=None, help="per-structure CSV")
    parser.add_argument(
        "--cascade",
        default="{}",
        help="JSON overrides of screen.cascade, e.g. '{\"margin\": 0.2}'",
    )
    args = parser.parse_args()

    use_cpu_threads(1)
    reuse_freed_memory()
    offset, step = (int(part) for part in args.take.split("/"))
    records = read_records(args.structures)[offset::step]
    diagram = phase_diagram(read_records(args.references), default("screen.oxygen_reference"))
    criteria = Criteria.default()
    potential = default("screen.potential")
    spec = PotentialSpec(potential, default("screen.checkpoints")[potential])
    settings = RelaxSettings(fmax=default("screen.fmax"), max_steps=default("screen.max_steps"))
    symmetrise = default("screen.symmetrise")
    cascade_settings = replace(CascadeSettings(), **json.loads(args.cascade))

    full, full_cpu, full_wall = timed(
        full_path, records, spec, settings, symmetrise, args.batch_atoms
    )
    (cascade, outcomes), cascade_cpu, cascade_wall = timed(
        run_cascade,
        records,
        spec,
        settings,
        diagram,
        max(criteria.metastable, criteria.synthesizable),
        cascade_settings,
        batch_atoms=args.batch_atoms,
        symmetrise=symmetrise,
    )
    full_e = relaxed_e_hull(diagram, records, full, describe(spec))
    cascade_e = relaxed_e_hull(diagram, records, cascade, describe(spec))

    rows = pd.DataFrame(
        {
            "id": [r.id for r in records],
            "natoms": [r.natoms for r in records],
            "full_steps": [r.steps for r in full],
            "full_reason": [r.reason for r in full],
            "e_hull_full": full_e,
            "fate": [o.fate for o in outcomes],
            "first_steps": [o.first_steps for o in outcomes],
            "e_hull_gate": [o.e_above_hull_gate for o in outcomes],
            "cascade_steps": [r.steps for r in cascade],
            "cascade_reason": [r.reason for r in cascade],
            "e_hull_cascade": cascade_e,
        }
    )
    if args.rows:
        rows.to_csv(args.rows, index=False)
    full_within = [criteria.within(e) for e in full_e]
    cascade_within = [criteria.within(e) for e in cascade_e]
    n = len(records)
    lost = [r.id for r, f, c in zip(records, full_within, cascade_within) if f[0] and not c[0]]
    lost_meta = [r.id for r, f, c in zip(records, full_within, cascade_within) if f[1] and not c[1]]
    gained = [r.id for r, f, c in zip(records, full_within, cascade_within) if c[0] and not f[0]]
    rejected = rows[rows["fate"] == "rejected"]
    full_verdict_of_rejected = {
        "failed": int(rejected["e_hull_full"].isna().sum()),
        "above_metastable": int((rejected["e_hull_full"] > criteria.metastable).sum()),
        "within_metastable": int((rejected["e_hull_full"] <= criteria.metastable).sum()),
    }
    full_figures = path_figures(full_e, criteria, full_cpu, full_wall)
    cascade_figures = path_figures(cascade_e, criteria, cascade_cpu, cascade_wall)
    print(
        json.dumps(
            {
                "structures": n,
                "take": args.take,
                "potential": describe(spec),
                "first_potential": describe(
                    PotentialSpec(
                        cascade_settings.first_potential, cascade_settings.first_checkpoint
                    )
                ),
                "cascade_settings": asdict(cascade_settings),
                "full": full_figures,
                "cascade": {**cascade_figures, **summary(outcomes)},
                "speedup": round(full_cpu / cascade_cpu, 2),
                "same_verdict": round(
                    sum(f == c for f, c in zip(full_within, cascade_within)) / n, 4
                ),
                "same_metastable": round(
                    sum(f[1] == c[1] for f, c in zip(full_within, cascade_within)) / n, 4
                ),
                "same_pass": round(
                    sum(f[0] == c[0] for f, c in zip(full_within, cascade_within)) / n, 4
                ),
                "lost_passes": lost,
                "lost_metastable": lost_meta,
                "gained_passes": gained,
                "rejected_by_full_verdict": full_verdict_of_rejected,
            }
        )
    )


if __name__ == "__main__":
    main()
