"""Structures for the screening tests: perturbed bundled ones, and deliberately bad ones."""

from __future__ import annotations

import numpy as np

from pipeline.records import CrystalRecord


def perturbed(
    record: CrystalRecord, new_id: str, seed: int, distance: float = 0.08, strain: float = 0.03
) -> CrystalRecord:
    """``record`` with every atom moved ``distance`` Å and the axes strained up to ``strain``."""
    rng = np.random.default_rng(seed)
    structure = record.to_structure()
    structure.perturb(distance)
    structure.apply_strain(rng.uniform(-strain, strain, 3))
    return CrystalRecord.from_structure(structure, id=new_id, source="test-generator")


def overlapping(record: CrystalRecord, new_id: str) -> CrystalRecord:
    """``record`` with its second atom placed 0.1 Å from its first."""
    structure = record.to_structure()
    shift = np.array([0.1, 0.0, 0.0]) @ structure.lattice.inv_matrix
    structure.replace(1, structure[1].specie, structure[0].frac_coords + shift)
    return CrystalRecord.from_structure(structure, id=new_id, source="test-generator")
