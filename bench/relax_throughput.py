"""Throughput of batched (torch-sim) vs sequential (ASE) relaxation with the same potential.

The same N structures are relaxed both ways; prints ONE JSON line with structures/s,
atoms/s, the batched/sequential ratio and the energy agreement. The structures are

* with ``--samples``: generated ones, a samples file of the sample stage
  (``results/samples/{model}/samples.json.gz``), N drawn (seeded) from those that pass the
  validate stage's checks (:func:`pipeline.screen.validation.check_record`), i.e. what the screen
  relaxes. A file with fewer than N valid structures is cycled: the JSON line says how
  many are distinct (``distinct_structures``); a repeat costs both relaxers the same work;
* without it: bundled training structures, atoms moved 0.1 Å and axes strained up to 3 %.

    python bench/relax_throughput.py            # N = 16 perturbed bundled structures
    python bench/relax_throughput.py --samples results/samples/ccgan/samples.json.gz --n 256
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.chemsys import ChemicalSystem  # noqa: E402
from pipeline.errors import PipelineInputError, exit_on_input_error  # noqa: E402
from pipeline.records import CrystalRecord, read_records  # noqa: E402
from pipeline.screen.batched import relax_batched  # noqa: E402
from pipeline.screen.modes import reuse_freed_memory, use_cpu_threads  # noqa: E402
from pipeline.screen.potentials import (  # noqa: E402
    POTENTIALS,
    PotentialSpec,
    ase_calculator,
    batched_model,
    default_device,
    describe,
)
from pipeline.screen.relaxation import RelaxSettings, relax_sequential  # noqa: E402
from pipeline.screen.validation import VALID, check_record  # noqa: E402
from pipeline.screen.validity import ValidityLimits  # noqa: E402
from pipeline.settings import default_settings  # noqa: E402

DATASET = Path(__file__).resolve().parents[1] / "resources/datasets/mgmno_kim2020.json.gz"


def perturbed_structures(n: int, seed: int, max_atoms: int) -> list[CrystalRecord]:
    """``n`` perturbed copies of bundled structures, cycling through the compositions."""
    records = [r for r in read_records(DATASET) if r.natoms <= max_atoms]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(records), size=n, replace=n > len(records))
    out = []
    for k, index in enumerate(picks):
        structure = records[index].to_structure()
        structure.perturb(0.1)
        structure.apply_strain(rng.uniform(-0.03, 0.03, 3))
        out.append(CrystalRecord.from_structure(structure, id=f"bench-{k}"))
    return out


def generated_structures(
    path: Path, n: int, seed: int, system: ChemicalSystem, limits: ValidityLimits
) -> tuple[list[CrystalRecord], int]:
    """``n`` valid generated structures of a samples file, and how many distinct ones.

    The valid structures are shuffled (seeded) so that ``n`` below their number draws from
    every composition, not from the first ones the generator wrote; fewer than ``n`` are
    cycled (ids ``<id>~<repeat>``).
    """
    if not path.is_file():
        raise PipelineInputError(f"--samples {path}: no such file")
    valid = [r for r in read_records(path) if check_record(r, system, limits).status == VALID]
    if not valid:
        raise PipelineInputError(f"{path}: no structure passes the validity checks")
    order = np.random.default_rng(seed).permutation(len(valid))
    picked = []
    for k in range(n):
        record = valid[order[k % len(valid)]]
        repeat = k // len(valid)
        picked.append(
            record
            if repeat == 0
            else CrystalRecord.from_structure(
                record.to_structure(), id=f"{record.id}~{repeat}", source=record.source
            )
        )
    return picked, min(n, len(valid))


def timed(relax, *args, **kwargs):
    """``relax(*args, **kwargs)``, its wall-clock and its CPU seconds.

    The CPU time of this process is what other jobs on a shared machine disturb least
    (with one thread it is the time the relaxation itself ran).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    results = relax(*args, **kwargs)
    return results, time.perf_counter() - wall, time.process_time() - cpu


@exit_on_input_error
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=16, help="structures")
    parser.add_argument(
        "--samples",
        type=Path,
        default=None,
        help="generated structures (a sample stage .json.gz); default: perturbed"
        " bundled structures",
    )
    parser.add_argument("--chemsys", default="Mg-Mn-O", help="of the samples' validity checks")
    parser.add_argument("--potential", default="chgnet", choices=list(POTENTIALS))
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument(
        "--max-atoms", type=int, default=16, help="largest bundled cell drawn (without --samples)"
    )
    parser.add_argument("--batch-atoms", type=int, default=None)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (more only helps on an otherwise idle machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    reuse_freed_memory()  # as the relax jobs do; both relaxers alike
    spec = PotentialSpec(args.potential, args.checkpoint, default_device())
    if args.n < 1:
        raise PipelineInputError("--n must be at least 1")
    if args.samples is None:
        records = perturbed_structures(args.n, args.seed, args.max_atoms)
        source, distinct = "bundled, perturbed", args.n
    else:
        records, distinct = generated_structures(
            args.samples,
            args.n,
            args.seed,
            ChemicalSystem.parse(args.chemsys),
            ValidityLimits.from_settings(default_settings().screen),
        )
        source = str(args.samples)
    atoms = sum(r.natoms for r in records)
    settings = RelaxSettings(fmax=args.fmax, max_steps=args.max_steps)

    load_before = os.getloadavg()[0]
    with contextlib.redirect_stdout(sys.stderr):  # CHGNet announces itself on stdout
        model, calculator = batched_model(spec), ase_calculator(spec)
    batched, batched_s, batched_cpu_s = timed(
        relax_batched, records, model, settings, args.batch_atoms, progress=False
    )
    sequential, sequential_s, sequential_cpu_s = timed(
        relax_sequential, records, calculator, settings, progress=False
    )

    # Same status after the same number of steps: both relaxers took the same path, so
    # their energies must agree (converged or stopped at the step limit alike).
    same_path = [
        (b, s)
        for b, s in zip(batched, sequential)
        if b.status == s.status
        and b.steps == s.steps
        and np.isfinite(b.energy_per_atom)
        and np.isfinite(s.energy_per_atom)
    ]
    differences = [abs(b.energy_per_atom - s.energy_per_atom) * 1000 for b, s in same_path]
    steps = sum(r.steps for r in batched)
    print(
        json.dumps(
            {
                "potential": describe(spec),
                "device": spec.device,
                "threads": args.threads,
                "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "source": source,
                "structures": args.n,
                "distinct_structures": distinct,
                "atoms": atoms,
                "max_steps": args.max_steps,
                "structure_steps": [steps, sum(r.steps for r in sequential)],
                "batched_s": round(batched_s, 1),
                "sequential_s": round(sequential_s, 1),
                "batched_cpu_s": round(batched_cpu_s, 1),
                "sequential_cpu_s": round(sequential_cpu_s, 1),
                "batched_structures_per_s": round(args.n / batched_s, 3),
                "sequential_structures_per_s": round(args.n / sequential_s, 3),
                "batched_atoms_per_s": round(atoms / batched_s, 2),
                "sequential_atoms_per_s": round(atoms / sequential_s, 2),
                "speedup": round(sequential_s / batched_s, 2),
                "speedup_cpu": round(sequential_cpu_s / batched_cpu_s, 2),
                "converged_batched": sum(r.ok for r in batched),
                "converged_sequential": sum(r.ok for r in sequential),
                "energy_compared": len(differences),
                "median_energy_difference_meV_per_atom": round(float(np.median(differences)), 3)
                if differences
                else None,
                "max_energy_difference_meV_per_atom": round(float(max(differences)), 3)
                if differences
                else None,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
