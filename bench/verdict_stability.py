"""How many verdicts flip when a relaxation is repeated from a start rattled by 1e-4 Å.

Relaxes the structures along the screen's path (main potential, ``screen.fmax``,
``screen.max_steps``, batched, symmetrised as configured), places them on the main potential's
hull, then :func:`pipeline.screen.verdicts.verdict_stability` repeats those within ``--window``
eV/atom of a threshold. Prints ONE JSON line: structures, repeated, unstable (the repeat on the
other side of a threshold) with their two E_hull, and the CPU time of each half.

    python bench/verdict_stability.py --structures results/screen/prescreened.json.gz \\
        --references results/hull/chgnet/references_relaxed.json.gz --take 0/3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.records import read_records  # noqa: E402
from pipeline.screen.convex_hull import phase_diagram  # noqa: E402
from pipeline.screen.modes import relax_records, reuse_freed_memory, use_cpu_threads  # noqa: E402
from pipeline.screen.potentials import PotentialSpec  # noqa: E402
from pipeline.screen.relaxation import RelaxSettings  # noqa: E402
from pipeline.screen.symmetrise import symmetrise_and_rerelax  # noqa: E402
from pipeline.screen.verdicts import HullThresholds, result_e_hull, verdict_stability  # noqa: E402
from pipeline.settings import default  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--structures", type=Path, required=True)
    parser.add_argument("--references", type=Path, required=True)
    parser.add_argument("--take", default="0/1", help="K/N: every N-th structure from the K-th")
    parser.add_argument("--window", type=float, default=0.1, help="eV/atom around a threshold")
    parser.add_argument("--rattle", type=float, default=1e-4, help="Å")
    args = parser.parse_args()

    use_cpu_threads(1)
    reuse_freed_memory()
    offset, step = (int(part) for part in args.take.split("/"))
    records = read_records(args.structures)[offset::step]
    diagram = phase_diagram(read_records(args.references))
    thresholds = HullThresholds(
        default("screen.e_hull.synthesizable"), default("screen.e_hull.metastable")
    )
    potential = default("screen.potential")
    spec = PotentialSpec(potential, default("screen.checkpoints")[potential])
    settings = RelaxSettings(fmax=default("screen.fmax"), max_steps=default("screen.max_steps"))

    def relax_path(starts):
        results = relax_records(starts, spec, settings, progress=False)
        if default("screen.symmetrise"):
            symmetrise_and_rerelax(starts, results, spec, settings, progress=False)
        return results

    cpu = time.process_time()
    e_hull = [result_e_hull(diagram, r, res) for r, res in zip(records, relax_path(records))]
    first_cpu = time.process_time() - cpu
    checks = verdict_stability(
        records, e_hull, relax_path, diagram, thresholds, args.rattle, args.window
    )
    repeat_cpu = time.process_time() - cpu - first_cpu
    unstable = [c for c in checks if not c.verdict_stable]
    print(
        json.dumps(
            {
                "structures": len(records),
                "take": args.take,
                "window": args.window,
                "rattle": args.rattle,
                "repeated": sum(c.repeated for c in checks),
                "unstable": len(unstable),
                "unstable_e_hull": {
                    c.id: [round(c.e_above_hull, 4), round(c.e_above_hull_repeat, 4)]
                    for c in unstable
                },
                "first_cpu_s": round(first_cpu, 1),
                "repeat_cpu_s": round(repeat_cpu, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
