"""Encoded datasets on disk: ``.npz`` files written atomically and read with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import PipelineInputError


def save_arrays(path: str | Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to a compressed ``.npz``; a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_arrays(path: str | Path, what: str, marker: str) -> dict[str, np.ndarray]:
    """Every array of ``path``, which must hold ``marker`` to count as a ``what``."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"{what} not found: {path}")
    with np.load(path) as f:
        if marker not in f.files:
            raise PipelineInputError(f"{path} is not a {what} (no {marker} array)")
        return {name: f[name] for name in f.files}
