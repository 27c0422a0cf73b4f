"""The screen's universal ML potentials by name, as ``screen.potential`` spells them, and the
energy scale of each (what its energies are and what every hull does to them).

Kept apart from :mod:`pipeline.screen.potentials` so that stages which only read tables or
build hulls (evaluate, report, explorer) need not import torch and the potentials' packages.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineInputError

POTENTIALS = ("chgnet", "sevennet", "m3gnet")


@dataclass(frozen=True)
class EnergyScale:
    """What a potential's energies are (its training target) and what every hull does to them.

    ``mp2020_included``: the training energies already carried the Materials Project 2020
    corrections (anion, GGA/GGA+U mixing), so its energies are used as they are; otherwise they
    are raw VASP PBE(+U) energies, and every hull entry of the potential (references, training
    polymorphs, candidates) gets the MP2020 corrections (:func:`pipeline.screen.convex_hull.pd_entry`).
    The oxygen reference on top is a setting of the hull (``screen.oxygen_reference``, see
    :mod:`pipeline.screen.thermochemistry`), recorded beside the scale in ``hull.csv``.
    """

    training_target: str
    mp2020_included: bool

    @property
    def corrections(self) -> str:
        """The corrections the hull applies to this potential's energies."""
        if self.mp2020_included:
            return "no correction (MP2020 already in the training target)"
        return (
            "MP2020 anion and GGA/GGA+U mixing corrections applied"
            " (pymatgen MaterialsProject2020Compatibility, U values of MPRelaxSet)"
        )

    @property
    def description(self) -> str:
        """The scale in one line, as ``hull.csv`` records it (``energy_scale``)."""
        return f"{self.training_target}; {self.corrections}"


# CHGNet 0.3.0 was trained on MPtrj energies with MP2020 corrections applied (its
# maintainers: fine-tuning labels must be MP2020-corrected to match the pretraining
# labels, CederGroupHub/chgnet#220 and the fine-tuning notebook of #46); SevenNet-0 and
# -l3i5 and M3GNet learnt raw PBE(+U) MPtrj / MP energies (Matbench Discovery applies MP2020
# to their predictions). Relaxed MgO: CHGNet -6.31, SevenNet-0 -5.98 eV/atom.
ENERGY_SCALES = {
    "chgnet": EnergyScale("MPtrj GGA/GGA+U with MP2020 corrections", mp2020_included=True),
    "sevennet": EnergyScale("MPtrj GGA/GGA+U, uncorrected", mp2020_included=False),
    "m3gnet": EnergyScale("MP-2021.2.8 PBE(+U), uncorrected", mp2020_included=False),
}


def energy_scale(name: str) -> EnergyScale:
    """The energy scale of potential ``name`` (see :data:`ENERGY_SCALES`)."""
    if name not in ENERGY_SCALES:
        raise PipelineInputError(f"unknown potential {name!r}; choose from {POTENTIALS}")
    return ENERGY_SCALES[name]
