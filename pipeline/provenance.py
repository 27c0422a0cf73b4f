"""The computing environment of a run: what a result depends on besides config and seed.

A relaxation follows the floating-point results of the potential, and those depend on the
installed releases (torch, the potentials' packages), on the BLAS/LAPACK libraries and the
CPU kernels they pick at run time (OpenBLAS and MKL choose code paths by instruction set),
and on the threads a reduction is split over. Two installs of one commit can therefore
relax a few structures into different minima (docs/results.md). :func:`environment_record`
collects these facts, and how the installed releases differ from the pinned ones of
``constraints.txt``, so a run's short list can be traced to the environment that made it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The releases the screen's numbers depend on (distribution names).
SCIENTIFIC_STACK = (
    "crystal-htvs",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "pymatgen",
    "spglib",
    "ase",
    "chgnet",
    "sevenn",
    "torch-sim-atomistic",
    "matgl",
    "cgcnn2",
    "torch-geometric",
    "pyxtal",
    "smact",
    "scikit-learn",
    "diffusers",
    "mp-api",
    "snakemake",
    "threadpoolctl",
)
# Variables that set thread counts or kernel choices of the math libraries.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
)


@dataclass
class EnvironmentRecord:
    """Python, CPU, math libraries, threads and package releases of one process."""

    recorded_at: str
    python: str
    executable: str
    platform: str
    cpu_model: str
    cpu_count: int
    packages: dict[str, str]
    numpy_blas: dict[str, str]
    torch_blas: dict[str, str]
    torch_threads: int
    torch_interop_threads: int
    thread_pools: list[dict[str, object]]
    thread_variables: dict[str, str]
    lock_file: str = ""
    differs_from_lock: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def package_versions(names: tuple[str, ...] = SCIENTIFIC_STACK) -> dict[str, str]:
    """``{distribution: installed version}``; ``not installed`` where it is missing."""
    versions = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def numpy_blas() -> dict[str, str]:
    """The BLAS and LAPACK NumPy was built against, and the SIMD extensions it found."""
    import numpy as np

    config = np.show_config(mode="dicts")
    build = config.get("Build Dependencies", {})
    simd = config.get("SIMD Extensions", {})
    return {
        "blas": f"{build.get('blas', {}).get('name', '?')} {build.get('blas', {}).get('version', '')}",
        "lapack": (
            f"{build.get('lapack', {}).get('name', '?')} {build.get('lapack', {}).get('version', '')}"
        ),
        "simd_found": " ".join(simd.get("found", [])),
    }


def torch_blas() -> dict[str, str]:
    """torch's BLAS/LAPACK (from its build settings), CPU kernel level and parallel backend."""
    import torch

    shown = torch.__config__.show()
    settings = dict(re.findall(r"(BLAS_INFO|LAPACK_INFO)=(\w+)", shown))
    mkl = re.search(r"Math Kernel Library Version ([^\n]+?) for", shown)
    backend = re.search(r"ATen parallel backend: (\S+)", torch.__config__.parallel_info())
    return {
        "blas": settings.get("BLAS_INFO", "?"),
        "lapack": settings.get("LAPACK_INFO", "?"),
        "mkl": mkl.group(1) if mkl else "",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "parallel_backend": backend.group(1) if backend else "?",
    }


def thread_pools() -> list[dict[str, object]]:
    """The BLAS and OpenMP libraries loaded in this process (threadpoolctl): library,
    version, threads and the CPU kernel architecture OpenBLAS chose.

    Sorted by API and library: the order threadpoolctl lists them in is the order they were
    loaded, which differs between a local run and the same rule on a cluster node.
    """
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "num_threads", "architecture")
    pools = [
        {key: pool[key] for key in keys if key in pool} | {"library": Path(pool["filepath"]).name}
        for pool in threadpool_info()
    ]
    return sorted(pools, key=lambda pool: (str(pool["user_api"]), str(pool["library"])))


def canonical_name(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Torch_Sim`` -> ``torch-sim``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a constraints file's ``name==version`` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, pinned = line.split("==", 1)
            pins[canonical_name(name.strip())] = pinned.strip()
    return pins


def meets_pin(installed: str, pinned: str) -> bool:
    """Whether ``installed`` meets ``==pinned``: a pin without a local label (``2.13.0``) is
    met by any build of that release (``2.13.0+cpu``), as pip meets it."""
    return installed == pinned or ("+" not in pinned and installed.split("+", 1)[0] == pinned)


def lock_differences(path: Path) -> dict[str, dict[str, str]]:
    """The pinned packages of ``path`` installed at another release (or not installed)."""
    differences = {}
    for name, pinned in read_lock(path).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if not meets_pin(installed, pinned):
            differences[name] = {"pinned": pinned, "installed": installed}
    return differences


def environment_record(lock: Path | None = None) -> EnvironmentRecord:
    """The environment of this process; with ``lock``, how it differs from those pins."""
    import torch

    return EnvironmentRecord(
        recorded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        executable=sys.executable,
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 0,
        packages=package_versions(),
        numpy_blas=numpy_blas(),
        torch_blas=torch_blas(),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        thread_pools=thread_pools(),
        thread_variables={
            name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ
        },
        lock_file=str(lock) if lock is not None else "",
        differs_from_lock=lock_differences(lock) if lock is not None else {},
    )


def write_environment(record: EnvironmentRecord, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.to_json())
