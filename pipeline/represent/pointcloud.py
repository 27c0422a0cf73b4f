"""The point-cloud representation of Kim et al., ACS Cent. Sci. 6, 1412 (2020).

A crystal becomes a ``(2 + sum(caps), 3)`` array:

* row 0: lattice lengths a, b, c divided by :data:`LENGTH_SCALE` (30 Å);
* row 1: lattice angles alpha, beta, gamma divided by :data:`ANGLE_SCALE` (180°);
* then one block of rows per element, in the chemical system's order, ``caps[el]`` rows
  each: the fractional coordinates of that element's atoms, rescaled to
  ``f' = (10 f + 2.5) / 15`` so that they lie in [1/6, 5/6), followed by zero rows.

Because a real atom's rescaled coordinates are at least 1/6, even an atom at the
origin cannot be confused with padding; a row is an atom when all three values exceed
:data:`ATOM_THRESHOLD` (1/12, halfway between padding and the smallest real value).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError, lattice_from_parameters

LENGTH_SCALE = 30.0
ANGLE_SCALE = 180.0
COORD_SCALE = 10.0 / 15.0
COORD_OFFSET = 2.5 / 15.0
ATOM_THRESHOLD = COORD_OFFSET / 2.0
LATTICE_ROWS = 2


@dataclass(frozen=True)
class PointCloudEncoding:
    """The layout of the point cloud for one chemical system and its atom caps."""

    elements: tuple[str, ...]
    caps: tuple[int, ...]

    @classmethod
    def for_system(cls, system: ChemicalSystem, caps: Mapping[str, int]) -> PointCloudEncoding:
        return cls(tuple(system.elements), tuple(int(caps[el]) for el in system.elements))

    @property
    def n_rows(self) -> int:
        return LATTICE_ROWS + sum(self.caps)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, 3)

    def element_slices(self) -> dict[str, slice]:
        """The rows of each element's block."""
        out, start = {}, LATTICE_ROWS
        for el, cap in zip(self.elements, self.caps):
            out[el] = slice(start, start + cap)
            start += cap
        return out

    def atom_counts(self, species: Sequence[str]) -> np.ndarray:
        counts = Counter(species)
        return np.array([counts.get(el, 0) for el in self.elements], dtype=np.int64)

    @property
    def condition_size(self) -> int:
        """Length of :meth:`count_onehot`: ``cap + 1`` classes (0..cap atoms) per element."""
        return sum(cap + 1 for cap in self.caps)

    def count_onehot(self, counts: np.ndarray) -> np.ndarray:
        """Per-element one-hot atom counts, concatenated: the composition condition.

        ``counts`` has shape ``(..., n_elements)``; the result ``(..., condition_size)``.
        """
        counts = np.asarray(counts, dtype=np.int64)
        blocks = [
            np.eye(cap + 1, dtype=np.float32)[counts[..., i]] for i, cap in enumerate(self.caps)
        ]
        return np.concatenate(blocks, axis=-1)

    def encode(self, record: CrystalRecord) -> np.ndarray:
        """The point cloud of ``record`` (float64); atoms keep their order within an element."""
        foreign = sorted(set(record.species) - set(self.elements))
        if foreign:
            raise PipelineInputError(f"{record.id}: elements {foreign} are not in {self.elements}")
        lattice = Lattice(record.lattice)
        x = np.zeros(self.shape)
        x[0] = np.asarray(lattice.abc) / LENGTH_SCALE
        x[1] = np.asarray(lattice.angles) / ANGLE_SCALE
        frac = np.mod(np.asarray(record.frac_coords, dtype=float), 1.0)
        frac[frac >= 1.0] = 0.0  # -1e-17 % 1.0 == 1.0 in floating point
        species = np.asarray(record.species)
        for el, cap, rows in zip(self.elements, self.caps, self.element_slices().values()):
            coords = frac[species == el]
            if len(coords) > cap:
                raise PipelineInputError(
                    f"{record.id}: {len(coords)} {el} atoms exceed the cap {cap}"
                )
            x[rows][: len(coords)] = coords * COORD_SCALE + COORD_OFFSET
        return x

    def decode(self, x: np.ndarray, id: str = "decoded") -> CrystalRecord:
        """The crystal of point cloud ``x``; raises :class:`DecodeError` if there is none."""
        x = np.asarray(x, dtype=float)
        if x.shape != self.shape:
            raise DecodeError(f"expected shape {self.shape}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise DecodeError("non-finite values")
        lengths = x[0] * LENGTH_SCALE
        angles = x[1] * ANGLE_SCALE
        lattice = lattice_from_parameters(lengths, angles)
        species: list[str] = []
        coords: list[np.ndarray] = []
        for el, rows in self.element_slices().items():
            block = x[rows]
            atoms = block[np.all(block > ATOM_THRESHOLD, axis=1)]
            species.extend([el] * len(atoms))
            coords.extend(np.mod((atoms - COORD_OFFSET) / COORD_SCALE, 1.0))
        if not species:
            raise DecodeError("no atoms")
        return CrystalRecord(
            id=id,
            lattice=lattice.matrix.tolist(),
            species=species,
            frac_coords=np.asarray(coords).tolist(),
        )

    def decode_structure(self, x: np.ndarray) -> Structure:
        return self.decode(x).to_structure()
