"""Symmetrise relaxed structures and relax them again; keep whichever is lower in energy.

An ML-potential relaxation from a generated (usually P1) structure often stops in a cell that
is symmetric to 0.1 Å but not to 0.01 Å: the higher-symmetry minimum is near, FIRE has not
found it within ``fmax``. For each converged relaxation whose space group at
:data:`pipeline.symmetry.LOOSE_SYMPREC` is higher than at
:data:`pipeline.symmetry.STRICT_SYMPREC` (and not P1), the structure is refined to its
loose space group (spglib's idealised positions and lattice), put back in a cell of the same
number of atoms (the primitive standard cell, else the conventional one, else the
primitive), and relaxed again with the same potential and settings; in sequential mode with
ASE's ``FixSymmetry`` so it keeps the refined group, in batched mode (torch-sim has no
symmetry constraint) freely. The lower of the two energies per atom is kept, so
symmetrising never raises a candidate's energy; :class:`Symmetrisation` records both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from pipeline.formats import SYMMETRISE_COLUMNS
from pipeline.records import CrystalRecord
from pipeline.screen.potentials import PotentialSpec
from pipeline.screen.relaxation import RelaxResult, RelaxSettings, StepWatch
from pipeline.symmetry import ANGLE_TOLERANCE, LOOSE_SYMPREC, STRICT_SYMPREC, space_group

TABLE_COLUMNS = SYMMETRISE_COLUMNS


@dataclass
class Symmetrisation:
    """What symmetrising one relaxed structure gave: the first relaxation's energy and group,
    the symmetrised re-relaxation's (NaN/0 when not tried or failed), which one is kept."""

    id: str
    energy_per_atom_first: float
    space_group_first: int
    tried: bool = False
    energy_per_atom_symmetrised: float = math.nan
    space_group_symmetrised: int = 0
    symmetrised: bool = False  # the symmetrised re-relaxation is kept

    def table_columns(self) -> dict[str, object]:
        """The columns it adds to ``relax_status.csv`` (:data:`TABLE_COLUMNS`)."""
        return {
            "symmetrised": self.symmetrised,
            "energy_per_atom_first": self.energy_per_atom_first,
            "space_group_first": self.space_group_first or math.nan,
            "energy_per_atom_symmetrised": self.energy_per_atom_symmetrised,
            "space_group_symmetrised": self.space_group_symmetrised or math.nan,
        }


def needs_symmetrising(structure: Structure) -> bool:
    """Symmetric at the loose tolerance (not P1) but less so at the strict one."""
    loose = space_group(structure, LOOSE_SYMPREC).number
    return loose != 1 and loose != space_group(structure, STRICT_SYMPREC).number


def refined_cell(structure: Structure, symprec: float = LOOSE_SYMPREC) -> Structure:
    """``structure`` idealised to its space group at ``symprec``, in a cell with as many atoms
    as it has when one of the primitive standard and the conventional cells does."""
    analyzer = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE)
    primitive = analyzer.get_primitive_standard_structure()
    if len(primitive) == len(structure):
        return primitive
    conventional = analyzer.get_conventional_standard_structure()
    return conventional if len(conventional) == len(structure) else primitive


def first_relaxations(results: Sequence[RelaxResult]) -> list[Symmetrisation]:
    """The :class:`Symmetrisation` of each result as it is, nothing tried."""
    return [
        Symmetrisation(r.id, r.energy_per_atom, space_group(r.structure).number if r.ok else 0)
        for r in results
    ]


def symmetrise_and_rerelax(
    records: Sequence[CrystalRecord],
    results: list[RelaxResult],
    spec: PotentialSpec,
    settings: RelaxSettings,
    mode: str = "batched",
    batch_atoms: int | None = None,
    progress: bool = True,
    watch: StepWatch | None = None,
    worth_symmetrising: Callable[[RelaxResult], bool] | None = None,
) -> list[Symmetrisation]:
    """Symmetrise the converged ``results`` of ``records`` that need it and relax them again.

    Where the re-relaxation converges to a lower (or equal) energy per atom, its result
    replaces the first one in ``results`` (in place). Returns one :class:`Symmetrisation`
    per record (for failed first relaxations: nothing tried). ``watch`` sees (and may stop)
    the second relaxations (:data:`pipeline.screen.relaxation.StepWatch`); a converged result
    for which ``worth_symmetrising`` answers False is kept as it is (nothing tried).
    """
    from pipeline.screen.modes import relax_records

    outcomes = first_relaxations(results)
    retry: list[tuple[int, CrystalRecord]] = []
    for index, (record, result) in enumerate(zip(records, results)):
        worth = worth_symmetrising is None or (result.ok and worth_symmetrising(result))
        if result.ok and worth and needs_symmetrising(result.structure):
            refined = CrystalRecord.from_structure(refined_cell(result.structure), id=record.id)
            retry.append((index, refined))
    rerelaxed = relax_records(
        [r for _, r in retry],
        spec,
        settings,
        mode,
        batch_atoms,
        progress,
        keep_symmetry=STRICT_SYMPREC if mode == "sequential" else None,
        watch=watch,
    )
    for (index, _), second in zip(retry, rerelaxed):
        outcome = outcomes[index]
        outcome.tried = True
        if not second.ok:
            continue
        outcome.energy_per_atom_symmetrised = second.energy_per_atom
        outcome.space_group_symmetrised = space_group(second.structure).number
        if second.energy_per_atom <= results[index].energy_per_atom:
            second.steps += results[index].steps
            start = records[index].to_structure()
            second.volume_ratio = (second.structure.volume / len(second.structure)) / (
                start.volume / len(start)
            )
            results[index] = second
            outcome.symmetrised = True
    return outcomes
