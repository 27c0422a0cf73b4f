"""Symmetrise-and-re-relax on real structures with CHGNet: never raises the energy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from pipeline.records import CrystalRecord
from pipeline.screen.modes import relax_records
from pipeline.screen.potentials import PotentialSpec
from pipeline.screen.relaxation import RelaxSettings
from pipeline.screen.symmetrise import refined_cell, symmetrise_and_rerelax
from pipeline.symmetry import STRICT_SYMPREC, space_group

pytestmark = pytest.mark.slow
SPEC = PotentialSpec("chgnet", "0.3.0", "cpu")
# Loose enough that the first relaxation stops short of the symmetric minimum.
SETTINGS = RelaxSettings(fmax=0.2, max_steps=60)


@pytest.fixture(scope="module")
def shaken(bundled_records) -> list[CrystalRecord]:
    """Three small symmetric bundled crystals, every atom moved 0.04 Å in a random direction:
    symmetric at 0.1 Å, P1 at 0.01 Å."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    picked, formulas = [], set()
    for record in bundled_records:
        structure = record.to_structure()
        if record.natoms > 7 or record.formula in formulas:
            continue
        if space_group(structure, STRICT_SYMPREC).number <= 2:
            continue
        formulas.add(record.formula)
        directions = rng.normal(size=(len(structure), 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        moved = Structure(
            structure.lattice,
            structure.species,
            structure.cart_coords + 0.04 * directions,
            coords_are_cartesian=True,
        )
        picked.append(CrystalRecord.from_structure(moved, id=record.id))
        if len(picked) == 3:
            return picked
    raise AssertionError("the bundled set has fewer than 3 small symmetric formulas")


def test_symmetrise_and_rerelax_never_raises_the_energy(shaken):
    results = relax_records(shaken, SPEC, SETTINGS, "batched", progress=False)
    assert all(r.ok for r in results)
    first = [r.energy_per_atom for r in results]
    outcomes = symmetrise_and_rerelax(shaken, results, SPEC, SETTINGS, "batched", progress=False)
    assert sum(o.tried for o in outcomes) >= 2  # the relaxed cells are symmetric only at 0.1 Å
    assert any(o.symmetrised for o in outcomes)
    for before, after, outcome, record in zip(first, results, outcomes, shaken):
        assert after.ok and after.energy_per_atom <= before
        assert outcome.energy_per_atom_first == before
        kept = outcome.energy_per_atom_symmetrised if outcome.symmetrised else before
        assert after.energy_per_atom == kept
        assert after.structure.composition.reduced_formula == (
            record.to_structure().composition.reduced_formula
        )
        if outcome.symmetrised:
            # The kept structure is the symmetric one: its group at 0.1 Å is not P1.
            assert space_group(after.structure).number == outcome.space_group_symmetrised > 1


def symmetry_operations(structure: Structure) -> int:
    return len(SpacegroupAnalyzer(structure, symprec=STRICT_SYMPREC).get_symmetry_operations())


def test_sequential_rerelaxation_keeps_the_refined_symmetry(shaken):
    records = shaken[1:2]
    results = relax_records(records, SPEC, SETTINGS, "sequential", progress=False)
    refined = refined_cell(results[0].structure)
    assert space_group(results[0].structure, STRICT_SYMPREC).number == 1
    assert space_group(refined, STRICT_SYMPREC).number > 1
    first = results[0].energy_per_atom
    (outcome,) = symmetrise_and_rerelax(
        records, results, SPEC, SETTINGS, "sequential", progress=False
    )
    assert outcome.tried and outcome.symmetrised
    assert results[0].energy_per_atom <= first
    # FixSymmetry: every symmetry operation of the refined cell survives the re-relaxation
    # (the relaxed cell may gain more).
    assert symmetry_operations(results[0].structure) >= symmetry_operations(refined)
