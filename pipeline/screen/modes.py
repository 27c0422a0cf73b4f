"""Relax, or evaluate as they are, a list of records with a potential: one by one (ASE)
or in batches (torch-sim)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.potential_names import POTENTIALS
from pipeline.screen.potentials import PotentialSpec, ase_calculator, batched_model
from pipeline.screen.relaxation import RelaxResult, RelaxSettings, StepWatch, relax_sequential
from pipeline.settings import setting_argument

RELAX_MODES = ("batched", "sequential")


def relax_records(
    records: Sequence[CrystalRecord],
    spec: PotentialSpec,
    settings: RelaxSettings,
    mode: str = "batched",
    batch_atoms: int | None = None,
    progress: bool = True,
    keep_symmetry: float | None = None,
    keep_unconverged: bool = False,
    watch: StepWatch | None = None,
) -> list[RelaxResult]:
    """Relax ``records`` with the potential ``spec``; one result per record, same order.

    ``keep_symmetry`` (sequential mode only): constrain each relaxation to the space group
    its start has at this tolerance (Å; ASE's ``FixSymmetry``). ``keep_unconverged``: a
    relaxation that reached the step limit keeps its last structure (still failed).
    ``watch``: sees every step of every structure and may stop it
    (:data:`pipeline.screen.relaxation.StepWatch`).
    """
    if mode not in RELAX_MODES:
        raise PipelineInputError(f"unknown relax mode {mode!r}; choose from {RELAX_MODES}")
    if keep_symmetry is not None and mode != "sequential":
        raise PipelineInputError("keeping the symmetry needs relax mode 'sequential'")
    if not records:
        return []
    if mode == "sequential":
        return relax_sequential(
            records,
            ase_calculator(spec),
            settings,
            progress,
            keep_symmetry,
            keep_unconverged,
            watch,
        )
    from pipeline.screen.batched import relax_batched

    return relax_batched(
        records, batched_model(spec), settings, batch_atoms, progress, keep_unconverged, watch
    )


def single_point_records(
    records: Sequence[CrystalRecord],
    spec: PotentialSpec,
    mode: str = "batched",
    batch_atoms: int | None = None,
    progress: bool = True,
) -> list[float]:
    """Energy per atom (eV/atom) of ``records`` as they are; NaN where the potential fails."""
    from pipeline.screen.single_point import energies_batched, energies_sequential

    if mode not in RELAX_MODES:
        raise PipelineInputError(f"unknown relax mode {mode!r}; choose from {RELAX_MODES}")
    if not records:
        return []
    if mode == "sequential":
        return energies_sequential(records, ase_calculator(spec), progress)
    return energies_batched(records, batched_model(spec), batch_atoms, progress)


def add_relax_arguments(parser) -> None:
    """The potential and relaxation options shared by the relax and hull CLIs."""
    group = parser.add_argument_group("potential and relaxation")
    setting_argument(group, "--potential", "screen.potential", choices=POTENTIALS)
    group.add_argument(
        "--checkpoint",
        help="the potential's checkpoint: a name it ships or a path"
        " (default: screen.checkpoints of config.yaml)",
    )
    setting_argument(group, "--mode", "screen.relax_mode", choices=RELAX_MODES)
    setting_argument(group, "--fmax", "screen.fmax", type=float, help="eV/Å")
    setting_argument(group, "--max-steps", "screen.max_steps", type=int)
    setting_argument(
        group,
        "--batch-atoms",
        "screen.batch_atoms",
        type=int,
        help="most atoms per batch (batched mode); null: measured on a GPU, 512 on a CPU",
    )
    setting_argument(group, "--device", "screen.device", help="auto, cpu or cuda")
    group.add_argument(
        "--threads",
        type=int,
        required=True,
        help="torch CPU threads (one per job is fastest when jobs share cores)",
    )


def use_cpu_threads(threads: int) -> None:
    """Run torch and the BLAS/LAPACK libraries under NumPy and SciPy on ``threads`` threads.

    Torch's own setting leaves NumPy's OpenBLAS on one thread per core. ASE's Frechet cell
    filter and pymatgen's lattices solve 3x3 systems thousands of times per relaxation, and
    an OpenBLAS thread pool that waits for busy cores made each solve about 100 times slower
    (24 ms instead of 0.15 ms for one ``expm_frechet`` here with another job running).
    """
    import torch
    from threadpoolctl import threadpool_limits

    if threads < 1:
        raise PipelineInputError("--threads must be at least 1")
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # stays in force: not used as a context manager


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Serve large allocations from the heap, and keep freed heap memory for reuse.

    Every model call of a relaxation allocates and frees the same activation tensors, tens
    of MB for a batch of dense generated crystals (thousands of CHGNet angles each). glibc
    gives each allocation above 128 KiB fresh pages from ``mmap``, which the kernel zeroes
    on first touch, and returns them on ``free``: measured here, CHGNet's energies, forces
    and stresses of 64 generated Mg-Mn-O structures took 276 ms per structure in batches of
    64 (182 in batches of 16) with glibc's defaults, and 114 (105) with this setting, and
    the batch size stopped mattering. The cost is a resident heap at its high-water mark.

    Returns whether the C library took the setting (``False`` where it is not glibc).
    """
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    libc = ctypes.CDLL(library)
    if not hasattr(libc, "mallopt"):
        return False
    taken = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(threshold_bytes))
    taken &= libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(2 * threshold_bytes - 1))
    return bool(taken)


def relax_options(args) -> tuple[PotentialSpec, RelaxSettings]:
    """The potential and settings of :func:`add_relax_arguments`.

    Sets the CPU threads and the allocator (:func:`reuse_freed_memory`) of this process.
    """
    from pipeline.screen.potentials import default_device

    use_cpu_threads(args.threads)
    reuse_freed_memory()
    device = default_device() if args.device == "auto" else args.device
    spec = PotentialSpec(args.potential, args.checkpoint or "", device)
    return spec, RelaxSettings(fmax=args.fmax, max_steps=args.max_steps)
