"""GPAW PBE(+U) single points at the Materials Project's settings of U and initial moments.

Spin-polarised from MP's ferromagnetic initial moments, U values (Dudarev) on the shells MP
puts them on, PBE; plane waves (``mode: pw``, cutoff ``ecut``) or atomic orbitals (``lcao``,
``basis``); a Γ-centred k-mesh of ``kpoint_density`` points per Å⁻¹ (or MPRelaxSet's own mesh).
One process, BLAS on one thread: the machine is shared (docs/dft.md).

GPAW is optional (GPL-3, ``pip install -e ".[dft]"``) and imported only when a calculation runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from pipeline.dft.mp_inputs import MpParameters
from pipeline.errors import PipelineInputError
from pipeline.settings import defaults_from_config

MODES = ("pw", "lcao")
XC = "PBE"


@dataclass(frozen=True)
@defaults_from_config("dft")
class DftSettings:
    """The calculator's settings (config.yaml ``dft``, the defaults' one home); all but
    ``max_iterations`` enter the cache key."""

    mode: str
    ecut: float
    basis: str
    kpoint_density: float | None
    smearing: float
    max_iterations: int

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PipelineInputError(f"dft.mode {self.mode!r}: choose one of {MODES}")
        if self.kpoint_density is not None and self.kpoint_density <= 0:
            raise PipelineInputError("dft.kpoint_density must be positive (or null)")

    def key(self) -> dict[str, Any]:
        """What identifies a calculation at these settings (mode-specific fields only)."""
        key: dict[str, Any] = {
            "xc": XC,
            "mode": self.mode,
            "kpoint_density": self.kpoint_density,
            "smearing": self.smearing,
            "spin": "ferromagnetic start, MP moments",
        }
        key.update({"ecut": self.ecut} if self.mode == "pw" else {"basis": self.basis})
        return key

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> DftSettings:
        """Settings from the ``dft`` config section (keys of other settings are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})


@dataclass(frozen=True)
class DftEnergy:
    """One converged (or failed) single point."""

    energy: float  # eV, whole cell, extrapolated to zero smearing; NaN if not converged
    natoms: int
    magnetic_moment: float  # μB per cell
    iterations: int
    converged: bool
    kpoint_mesh: tuple[int, int, int]
    wall_s: float
    cpu_s: float
    error: str = ""

    @property
    def energy_per_atom(self) -> float:
        return self.energy / self.natoms


def gpaw_versions() -> dict[str, str]:
    """Versions of GPAW and of its PAW setups (part of every cache key)."""
    versions = {}
    for package in ("gpaw", "gpaw-data"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def require_gpaw() -> None:
    """A one-line error unless GPAW and its setups are installed."""
    missing = [p for p, v in gpaw_versions().items() if v == "not installed"]
    if missing:
        raise PipelineInputError(
            f"{' and '.join(missing)} not installed: the DFT check needs the [dft] extra"
            " (docs/dft.md: apt-get install libxc-dev; CC=g++ pip install -e '.[dft]')"
        )


def kpoint_mesh(
    structure: Structure, parameters: MpParameters, settings: DftSettings
) -> tuple[int, int, int]:
    """The Γ-centred mesh: ``kpoint_density`` points per Å⁻¹ of each reciprocal vector
    (2π included), else the mesh of MP's relaxation set."""
    if settings.kpoint_density is None:
        return parameters.kpoint_mesh
    lengths = structure.lattice.reciprocal_lattice.abc  # 2π/a-scaled
    mesh = [max(1, math.ceil(settings.kpoint_density * b - 1e-9)) for b in lengths]
    return mesh[0], mesh[1], mesh[2]


# GPAW's own bounds on the cell angles (degrees): outside them it warns that results may be
# wrong; such cells also need far more k-points and grid points than their reduced form.
CELL_ANGLES = (40.0, 140.0)


def gpaw_cell(structure: Structure) -> Structure:
    """``structure`` itself when GPAW takes its cell as it is, else its Niggli-reduced cell
    (the same crystal, sites in the same order). A reasonable cell is never changed, so
    calculations cached for it stay valid."""
    low, high = CELL_ANGLES
    if all(low < angle < high for angle in structure.lattice.angles):
        return structure
    return structure.get_reduced_structure("niggli")


def single_point(
    structure: Structure,
    parameters: MpParameters,
    settings: DftSettings,
    log: str | Path | None = None,
) -> DftEnergy:
    """The PBE(+U) energy of ``structure`` at MP's U values and initial moments (on
    :func:`gpaw_cell`'s cell).

    A calculation that does not converge in ``max_iterations`` comes back with
    ``converged=False``, its error and a NaN energy rather than raising.
    """
    require_gpaw()
    from gpaw import GPAW, PW, KohnShamConvergenceError
    from threadpoolctl import threadpool_limits

    structure = gpaw_cell(structure)
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.set_initial_magnetic_moments(list(parameters.magmoms))
    mesh = kpoint_mesh(structure, parameters, settings)
    options: dict[str, Any] = {
        "mode": PW(settings.ecut) if settings.mode == "pw" else "lcao",
        "xc": XC,
        "kpts": {"size": mesh, "gamma": True},
        "spinpol": True,
        "occupations": {"name": "fermi-dirac", "width": settings.smearing},
        "maxiter": settings.max_iterations,
        "txt": str(log) if log else None,
    }
    if settings.mode == "lcao":
        options["basis"] = settings.basis
    if parameters.hubbard:
        options["setups"] = {h.element: f":{h.shell},{h.u}" for h in parameters.hubbard}
    from gpaw.new.symmetry import SymmetryAnalysisBug

    atoms.calc = GPAW(**options)
    wall, cpu = time.perf_counter(), time.process_time()
    energy, moment, error = math.nan, math.nan, ""
    with threadpool_limits(limits=1):
        try:
            try:
                energy = float(atoms.get_potential_energy())
            except SymmetryAnalysisBug:
                # GPAW's symmetry analysis gives up on some generated cells: the same
                # calculation without point-group symmetry (more k-points, same energy)
                atoms.calc = GPAW(**options, symmetry={"point_group": False})
                energy = float(atoms.get_potential_energy())
            moment = float(atoms.get_magnetic_moment())
        except KohnShamConvergenceError as exc:
            error = f"SCF not converged in {settings.max_iterations} iterations ({exc})"
    iterations = _iterations(atoms.calc)
    return DftEnergy(
        energy=energy,
        natoms=len(structure),
        magnetic_moment=moment,
        iterations=iterations,
        converged=not error and bool(np.isfinite(energy)),
        kpoint_mesh=mesh,
        wall_s=time.perf_counter() - wall,
        cpu_s=time.process_time() - cpu,
        error=error,
    )


def _iterations(calc: Any) -> int:
    """SCF iterations of the last calculation (-1 where this GPAW does not say)."""
    for getter in ("get_number_of_iterations",):
        if hasattr(calc, getter):
            try:
                return int(getattr(calc, getter)())
            except (TypeError, ValueError, AttributeError):
                break
    return -1
