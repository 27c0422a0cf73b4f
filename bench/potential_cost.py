"""What each universal potential costs: load time, single points and batched relaxations.

The same N perturbed bundled structures (as ``bench/relax_throughput.py`` makes them) go
through every potential named: load the torch-sim model, one batched single point each,
then a batched FIRE relaxation. Prints ONE JSON line per potential.

    python bench/potential_cost.py --potentials chgnet m3gnet sevennet --n 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relax_throughput import perturbed_structures  # noqa: E402

from pipeline.errors import PipelineInputError, exit_on_input_error  # noqa: E402
from pipeline.screen.batched import relax_batched  # noqa: E402
from pipeline.screen.modes import reuse_freed_memory, use_cpu_threads  # noqa: E402
from pipeline.screen.potentials import (  # noqa: E402
    POTENTIALS,
    PotentialSpec,
    batched_model,
    default_device,
    describe,
)
from pipeline.screen.relaxation import RelaxSettings  # noqa: E402
from pipeline.screen.single_point import energies_batched  # noqa: E402


def measure(spec: PotentialSpec, records, settings: RelaxSettings) -> dict[str, object]:
    """Load, single-point and relaxation times of one potential on ``records``."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # CHGNet announces itself on stdout
        model = batched_model(spec)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    energies_batched(records, model, progress=False)
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    results = relax_batched(records, model, settings, progress=False)
    relax_s = time.perf_counter() - start
    steps = sum(r.steps for r in results)
    n = len(records)
    return {
        "potential": describe(spec),
        "device": spec.device,
        "structures": n,
        "atoms": sum(r.natoms for r in records),
        "load_s": round(load_s, 2),
        "single_point_ms_per_structure": round(1000 * single_s / n, 1),
        "relax_s": round(relax_s, 1),
        "relax_ms_per_structure": round(1000 * relax_s / n, 1),
        "relax_ms_per_structure_step": round(1000 * relax_s / max(steps, 1), 2),
        "structure_steps": steps,
        "converged": sum(r.ok for r in results),
        "load_average": round(os.getloadavg()[0], 2),
    }


@exit_on_input_error
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--potentials", nargs="+", default=["chgnet", "m3gnet"])
    parser.add_argument("--n", type=int, default=32, help="structures")
    parser.add_argument("--max-atoms", type=int, default=24)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = set(args.potentials) - set(POTENTIALS)
    if unknown:
        raise PipelineInputError(f"unknown potentials {sorted(unknown)}; choose from {POTENTIALS}")
    if args.n < 1:
        raise PipelineInputError("--n must be at least 1")
    use_cpu_threads(args.threads)
    reuse_freed_memory()
    records = perturbed_structures(args.n, args.seed, args.max_atoms)
    settings = RelaxSettings(fmax=args.fmax, max_steps=args.max_steps)
    for name in args.potentials:
        spec = PotentialSpec(name, device=default_device())
        print(json.dumps(measure(spec, records, settings)), flush=True)


if __name__ == "__main__":
    main()
