"""The Materials Project's choices for one structure, read from pymatgen's ``MPRelaxSet``.

The U values (Dudarev, on the d shell of the transition metals of oxides and fluorides), the
ferromagnetic initial moments and the k-point mesh that the exported VASP set uses
(:func:`pipeline.candidates.vasp.mp_relax_set`), so that the GPAW check and MP2020's
corrections see the same run type as a Materials Project calculation of the structure.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from pymatgen.core import Structure

from pipeline.candidates.vasp import mp_relax_set
from pipeline.errors import PipelineInputError

ORBITALS = {0: "s", 1: "p", 2: "d", 3: "f"}


@dataclass(frozen=True)
class HubbardU:
    """A U value (eV) on one shell (``s``, ``p``, ``d`` or ``f``) of an element."""

    element: str
    shell: str
    u: float


@dataclass(frozen=True)
class MpParameters:
    """What ``MPRelaxSet`` sets for a structure: U values, initial moments and k-mesh."""

    hubbard: tuple[HubbardU, ...]
    magmoms: tuple[float, ...]
    kpoint_mesh: tuple[int, int, int]

    @property
    def hubbards(self) -> dict[str, float]:
        """``{element: U}``, the form of MP2020's ``parameters["hubbards"]``."""
        return {h.element: h.u for h in self.hubbard}

    @property
    def run_type(self) -> str:
        """``GGA+U`` where a U applies, else ``GGA`` (MP2020's ``run_type``)."""
        return "GGA+U" if self.hubbard else "GGA"


def mp_parameters(structure: Structure) -> MpParameters:
    """The U values, initial moments (one per site) and k-mesh of MP's relaxation set."""
    input_set = mp_relax_set(structure)
    with warnings.catch_warnings():
        # pymatgen warns that a metal is relaxed with ISMEAR = -5; this is MP's set as it is.
        warnings.simplefilter("ignore")
        incar = input_set.incar
        mesh = input_set.kpoints.kpts[0]
    symbols = input_set.poscar.site_symbols
    hubbard = []
    if incar.get("LDAU"):
        for element, u, shell in zip(symbols, incar["LDAUU"], incar["LDAUL"]):
            if u:
                if int(shell) not in ORBITALS:
                    raise PipelineInputError(f"{element}: U on an unknown shell (LDAUL={shell})")
                hubbard.append(HubbardU(element, ORBITALS[int(shell)], float(u)))
    magmoms = tuple(float(m) for m in incar.get("MAGMOM", [0.0] * len(structure)))
    if len(magmoms) != len(structure):
        raise PipelineInputError("MPRelaxSet gave non-collinear or per-species moments")
    return MpParameters(tuple(hubbard), magmoms, (int(mesh[0]), int(mesh[1]), int(mesh[2])))
