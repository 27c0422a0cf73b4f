"""DFT energies on the Materials Project's corrected GGA/GGA+U scale (MP2020).

pymatgen's ``MaterialsProject2020Compatibility`` corrects a GGA(+U) energy by the anion
(oxide, peroxide, superoxide, ...) and the GGA/GGA+U mixing (per U-corrected metal) terms,
told the run type and U values through the entry's ``parameters``, as for an MP calculation
of the structure. The corrections were fitted to VASP PBE(+U) energies; that they carry over to
GPAW's PAW setups and its +U projectors is an approximation (docs/dft.md): in a reaction among
oxides of one anion type with every U metal U-corrected on both sides they cancel exactly.
"""

from __future__ import annotations

from pymatgen.core import Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedStructureEntry

from pipeline.dft.mp_inputs import MpParameters
from pipeline.errors import PipelineInputError


def mp2020_entry(
    structure: Structure, energy: float, parameters: MpParameters, entry_id: str
) -> ComputedStructureEntry:
    """The MP2020-corrected entry of a GGA(+U) energy (eV per cell) of ``structure``."""
    entry = ComputedStructureEntry(
        structure,
        energy,
        entry_id=entry_id,
        parameters={
            "run_type": parameters.run_type,
            "hubbards": parameters.hubbards,
            "is_hubbard": bool(parameters.hubbard),
        },
    )
    processed = MaterialsProject2020Compatibility(check_potcar=False).process_entries(
        [entry], verbose=False
    )
    if not processed:
        raise PipelineInputError(f"{entry_id}: MP2020 compatibility rejected the entry")
    return processed[0]
