"""Representations of crystals as tensors for the generative models.

What every representation shares lives here: the error a tensor that is no crystal raises,
and the cell built from lattice lengths and angles with its sanity checks.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice


class DecodeError(ValueError):
    """A tensor that does not describe a crystal (NaN, degenerate cell, no atoms)."""


def lattice_from_parameters(lengths: np.ndarray, angles: np.ndarray) -> Lattice:
    """The cell of lengths (Å) and angles (degrees); :class:`DecodeError` if there is none."""
    if np.any(lengths < 1.0) or np.any(angles <= 0.0) or np.any(angles >= 180.0):
        raise DecodeError(f"degenerate cell: lengths {lengths}, angles {angles}")
    try:
        lattice = Lattice.from_parameters(*lengths, *angles)
    except ValueError as exc:
        raise DecodeError(f"impossible cell angles {angles}: {exc}") from None
    if not np.isfinite(lattice.volume) or lattice.volume < 1.0:
        raise DecodeError(f"degenerate cell: volume {lattice.volume:.3g} Å^3")
    return lattice
