"""How many verdicts flip when a relaxation is repeated from a start rattled by 1e-4 Å.

Relaxes the structures along the screen's path (main potential, ``screen.fmax``,
``screen.max_steps``, batched, symmetrised as configured), places them on the main potential's
hull, then repeats those within ``--window`` eV/atom of a threshold from a rattled start, as the
pipeline's ``repeat`` rule does (:mod:`pipeline.screen.verdicts`), and counts the verdicts the
criteria module marks ``verdict_stable = false``. Prints ONE JSON line: structures, repeated, unstable (the repeat on the
other side of a threshold) with their two E_hull, and the CPU time of each half.

    python bench/verdict_stability.py --structures results/screen/prescreened.json.gz \\
        --references results/hull/chgnet/references_relaxed.json.gz --take 0/3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.formats import REPEAT_E_HULL  # noqa: E402
from pipeline.records import read_records  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.hull_table import add_other_potential, hull_table  # noqa: E402
from pipeline.screen.modes import reuse_freed_memory, use_cpu_threads  # noqa: E402
from pipeline.screen.potentials import PotentialSpec, describe  # noqa: E402
from pipeline.screen.relaxation import RelaxSettings  # noqa: E402
from pipeline.screen.verdicts import rattled, relax_along_screen_path  # noqa: E402
from pipeline.settings import default_settings  # noqa: E402


def relaxed(records, spec, settings, symmetrise):
    """The converged relaxations along the screen's path, as records with their energy."""
    results, _ = relax_along_screen_path(records, spec, settings, "batched", None, symmetrise)
    potential = describe(spec)
    return [res.to_record(rec, potential) for rec, res in zip(records, results) if res.ok]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    screen = default_settings().screen
    parser.add_argument("--structures", type=Path, required=True)
    parser.add_argument("--references", type=Path, required=True)
    parser.add_argument("--take", default="0/1", help="K/N: every N-th structure from the K-th")
    parser.add_argument("--window", type=float, default=screen.verdict_check.window)
    parser.add_argument("--rattle", type=float, default=screen.verdict_check.rattle, help="Å")
    args = parser.parse_args()
    use_cpu_threads(1)
    reuse_freed_memory()
    offset, step = (int(part) for part in args.take.split("/"))
    records = read_records(args.structures)[offset::step]
    references = read_records(args.references)
    criteria = dataclasses.replace(Criteria.default(), second_opinion=None)
    spec = PotentialSpec(screen.potential, screen.checkpoints[screen.potential])
    settings = RelaxSettings(fmax=screen.fmax, max_steps=screen.max_steps)
    cpu = time.process_time()
    first = hull_table(
        relaxed(records, spec, settings, screen.symmetrise), references, screen.oxygen_reference
    )
    first_cpu = time.process_time() - cpu
    near = set(first.loc[criteria.near_threshold(first["e_above_hull"], args.window), "id"])
    starts = [
        rattled(r, args.rattle, seed=default_settings().seed) for r in records if r.id in near
    ]
    repeats = relaxed(starts, spec, settings, screen.symmetrise)
    repeat_cpu = time.process_time() - cpu - first_cpu
    add_other_potential(first, REPEAT_E_HULL, repeats, references, screen.oxygen_reference)
    table = first.assign(band_gap=0.0, delta_g_pbx=0.0, known_as=None, duplicate_of=None)
    verdict = criteria.apply(table)
    unstable = verdict[~verdict["verdict_stable"]]
    print(
        json.dumps(
            {
                "structures": len(records),
                "take": args.take,
                "window": args.window,
                "rattle": args.rattle,
                "relaxed": len(first),
                "repeated": len(starts),
                "unstable": len(unstable),
                "unstable_e_hull": {
                    row.id: [round(row.e_above_hull, 4), round(row.e_above_hull_repeat, 4)]
                    for row in unstable.itertuples()
                },
                "first_cpu_s": round(first_cpu, 1),
                "repeat_cpu_s": round(repeat_cpu, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
