"""Data augmentation of a training set: supercells, random translations and axis swaps
(Kim et al. 2020).

Every augmented structure is the same crystal as its parent up to the operation:

* ``supercell``: the parent doubled along one, two or three axes, kept only while every
  element's atom count stays within the encoding's caps;
* ``translate``: every atom shifted by one random fraction of the cell (wrapped);
* ``swap``: two lattice vectors exchanged together with the matching fractional
  coordinate columns.

:func:`augment` tops compositions up to ``per_composition`` structures (originals and
supercells first, then translated or swapped copies); a composition with more is subsampled.
"""

from __future__ import annotations

import itertools
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem, composition_label
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord

OPERATIONS = ("supercell", "translate", "swap")
SUPERCELL_SCALINGS = [
    s for s in itertools.product((1, 2), repeat=3) if s != (1, 1, 1)
]  # one, two or all three axes doubled
AXIS_PAIRS = [(0, 1), (0, 2), (1, 2)]


@dataclass(frozen=True)
class AugmentationPlan:
    """How many structures per composition, which operations (``augment`` of config.yaml),
    and the seed."""

    per_composition: int
    operations: tuple[str, ...]
    seed: int

    def __post_init__(self) -> None:
        unknown = sorted(set(self.operations) - set(OPERATIONS))
        if unknown:
            raise PipelineInputError(f"unknown augmentation operations {unknown}; use {OPERATIONS}")
        if self.per_composition < 1:
            raise PipelineInputError("augment.per_composition must be at least 1")


def supercell(record: CrystalRecord, scaling: Sequence[int]) -> CrystalRecord:
    """The parent repeated ``scaling[i]`` times along lattice vector ``i``."""
    structure = record.to_structure()
    structure.make_supercell(list(scaling))
    tag = "x".join(str(s) for s in scaling)
    return CrystalRecord.from_structure(
        structure, id=f"{record.id}~sc{tag}", source="augment:supercell", parent=record.id
    )


def translate(record: CrystalRecord, shift: np.ndarray, tag: str) -> CrystalRecord:
    """Every atom moved by the fractional vector ``shift``, wrapped into the cell."""
    coords = (np.asarray(record.frac_coords) + shift) % 1.0
    return CrystalRecord(
        id=f"{record.id}~tr{tag}",
        lattice=record.lattice,
        species=list(record.species),
        frac_coords=coords.tolist(),
        source="augment:translate",
        parent=record.id,
    )


def swap_axes(record: CrystalRecord, axes: tuple[int, int], tag: str) -> CrystalRecord:
    """Lattice vectors ``axes`` exchanged, with the matching coordinate columns."""
    order = [0, 1, 2]
    order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
    lattice = np.asarray(record.lattice)[order]
    coords = np.asarray(record.frac_coords)[:, order]
    return CrystalRecord(
        id=f"{record.id}~sw{axes[0]}{axes[1]}{tag}",
        lattice=lattice.tolist(),
        species=list(record.species),
        frac_coords=coords.tolist(),
        source="augment:swap",
        parent=record.id,
    )


def composition_key(record: CrystalRecord, system: ChemicalSystem) -> str:
    return composition_label(system.elements, [record.species.count(el) for el in system.elements])


def augment(
    records: Sequence[CrystalRecord],
    system: ChemicalSystem,
    caps: Mapping[str, int],
    settings: AugmentationPlan,
    progress: bool = False,
) -> list[CrystalRecord]:
    """Augment ``records`` to ``settings.per_composition`` structures per composition.

    Deterministic for a given seed: each composition draws from its own random stream,
    seeded by the settings' seed and the composition, so adding data for one composition
    does not change the augmentation of another.
    """
    pools: dict[str, list[CrystalRecord]] = defaultdict(list)
    for record in records:
        pools[composition_key(record, system)].append(record)
    if "supercell" in settings.operations:
        for record in records:
            counts = Counter(record.species)
            for scaling in SUPERCELL_SCALINGS:
                factor = int(np.prod(scaling))
                if all(n * factor <= caps.get(el, 0) for el, n in counts.items()):
                    bigger = supercell(record, scaling)
                    pools[composition_key(bigger, system)].append(bigger)
    copy_operations = [op for op in settings.operations if op != "supercell"]
    out: list[CrystalRecord] = []
    for key in tqdm(sorted(pools), desc="augment", unit="composition", disable=not progress):
        rng = np.random.default_rng([settings.seed, zlib.crc32(key.encode())])
        pool = pools[key]
        if len(pool) >= settings.per_composition:
            # Originals before supercells, then a seeded choice among each kind.
            originals = [r for r in pool if r.parent is None]
            derived = [r for r in pool if r.parent is not None]
            ranked = [originals[i] for i in rng.permutation(len(originals))] + [
                derived[i] for i in rng.permutation(len(derived))
            ]
            out.extend(ranked[: settings.per_composition])
            continue
        out.extend(pool)
        for k in range(settings.per_composition - len(pool)):
            if not copy_operations:
                break
            parent = pool[int(rng.integers(len(pool)))]
            operation = copy_operations[int(rng.integers(len(copy_operations)))]
            if operation == "translate":
                out.append(translate(parent, rng.random(3), tag=str(k)))
            else:
                axes = AXIS_PAIRS[int(rng.integers(len(AXIS_PAIRS)))]
                out.append(swap_axes(parent, axes, tag=f"-{k}"))
    return out
