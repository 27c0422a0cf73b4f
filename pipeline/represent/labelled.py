"""Point clouds labelled with per-structure properties: ``results/encoded/pointcloud_properties.npz``.

The file holds every array of the point-cloud file (:func:`pipeline.stages.encode.save_encoded`),
so :func:`pipeline.stages.encode.load_encoded` reads it as it is, plus

* ``property_names``: ``(P,)`` column names, e.g. ``formation_energy_per_atom``;
* ``property_values``: ``(N, P)`` float64, row ``i`` for structure ``i`` of the point clouds.

Models conditioned on a property (the CVAE) train on it; the ``training_properties``
stage writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineInputError
from pipeline.stages.encode import EncodedDataset, load_encoded

# The properties the training_properties stage predicts: what a model may be conditioned on.
CONDITION_PROPERTIES = ("formation_energy_per_atom", "band_gap_pbe")


@dataclass
class LabelledDataset:
    """Encoded point clouds and one array of values per property, in the same order."""

    data: EncodedDataset
    properties: dict[str, np.ndarray]

    def values(self, name: str) -> np.ndarray:
        """The ``(N,)`` values of property ``name``."""
        if name not in self.properties:
            raise PipelineInputError(
                f"property {name!r} is not in the labelled data; it has {sorted(self.properties)}"
            )
        return self.properties[name]


def save_labelled(
    encoded: str | Path, properties: Mapping[str, np.ndarray], path: str | Path
) -> None:
    """Copy the point-cloud file ``encoded`` to ``path`` with ``properties`` added.

    Every array of ``properties`` must have one value per structure of ``encoded``.
    """
    path = Path(path)
    with np.load(encoded) as f:
        arrays = {key: f[key] for key in f.files}
    n = len(arrays["x"])
    names = list(properties)
    values = (
        np.column_stack([np.asarray(properties[k], dtype=np.float64) for k in names])
        if names
        else np.zeros((n, 0))
    )
    if values.shape[0] != n:
        raise ValueError(f"{values.shape[0]} property rows for {n} structures")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays, property_names=np.array(names), property_values=values)
    tmp.replace(path)


def load_labelled(path: str | Path) -> LabelledDataset:
    """Read a file written by :func:`save_labelled`."""
    data = load_encoded(path)
    with np.load(path) as f:
        if "property_names" not in f.files:
            raise PipelineInputError(
                f"{path} has no property labels (not written by"
                " python -m pipeline.stages.training_properties)"
            )
        names = [str(s) for s in f["property_names"]]
        values = f["property_values"]
    return LabelledDataset(data, {name: values[:, i] for i, name in enumerate(names)})
