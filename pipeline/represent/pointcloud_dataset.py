"""The point-cloud training set built from records: :func:`pointcloud_dataset` encodes every
record (:class:`~pipeline.represent.pointcloud.PointCloudEncoding`) into the arrays that
:func:`pipeline.formats.save_encoded` writes, and :func:`composition_table` lists its
composition classes. (Apart from :mod:`pipeline.represent.pointcloud` because
:mod:`pipeline.formats` imports that module.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.chemsys import composition_label
from pipeline.errors import PipelineInputError
from pipeline.formats import EncodedDataset
from pipeline.records import CrystalRecord
from pipeline.represent.pointcloud import PointCloudEncoding


def pointcloud_dataset(
    records: Sequence[CrystalRecord], encoding: PointCloudEncoding
) -> EncodedDataset:
    """Encode every record; composition classes are numbered in sorted label order."""
    if not records:
        raise PipelineInputError("nothing to encode: the dataset is empty")
    x = np.stack([encoding.encode(r) for r in records]).astype(np.float32)
    counts = np.stack([encoding.atom_counts(r.species) for r in records])
    labels = [composition_label(encoding.elements, c) for c in counts]
    compositions = sorted(set(labels), key=lambda s: (len(s), s))
    index = {label: i for i, label in enumerate(compositions)}
    return EncodedDataset(
        encoding=encoding,
        x=x,
        counts=counts,
        composition_class=np.array([index[label] for label in labels], dtype=np.int64),
        compositions=compositions,
        ids=[r.id for r in records],
        parents=[r.parent or r.id for r in records],
    )


def composition_table(data: EncodedDataset) -> pd.DataFrame:
    """One row per composition class: index, label, atoms per element, structures."""
    n_per_class = np.bincount(data.composition_class, minlength=len(data.compositions))
    rows = []
    for i, label in enumerate(data.compositions):
        counts = data.counts[data.composition_class == i][0]
        rows.append(
            {
                "class": i,
                "composition": label,
                **{f"n_{el}": int(n) for el, n in zip(data.encoding.elements, counts)},
                "n_structures": int(n_per_class[i]),
            }
        )
    return pd.DataFrame(rows)
