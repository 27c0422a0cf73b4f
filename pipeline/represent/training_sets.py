"""Training sets of the point-cloud and CrysTens representations, built from records.

:func:`pointcloud_dataset` (with :func:`composition_table`, its composition classes) and
:func:`crystens_dataset` encode every record of a dataset into the arrays that
:mod:`pipeline.formats` saves; the graph's and the Wyckoff representation's counterparts are
:func:`pipeline.represent.graph.graph_dataset` and :func:`pipeline.represent.wyckoff.encode_record`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem, composition_label
from pipeline.errors import PipelineInputError
from pipeline.formats import CrysTensDataset, EncodedDataset
from pipeline.records import CrystalRecord
from pipeline.represent import crystens
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


def crystens_dataset(
    records: Sequence[CrystalRecord], system: ChemicalSystem, progress: bool = False
) -> CrysTensDataset:
    """Encode and normalise every record (space groups from spglib)."""
    if not records:
        raise PipelineInputError("nothing to encode: the dataset is empty")
    x = np.zeros((len(records), *crystens.SHAPE), dtype=np.float32)
    space_group = np.zeros(len(records), dtype=np.int64)
    for i, record in enumerate(tqdm(records, desc="CrysTens", disable=not progress)):
        foreign = system.foreign_elements(record.species)
        if foreign:
            raise PipelineInputError(f"{record.id}: elements {foreign} are not in {system}")
        space_group[i] = crystens.space_group_number(record)
        x[i] = crystens.normalize(crystens.encode(record, space_group=space_group[i]))
    counts = np.array(
        [[Counter(r.species).get(el, 0) for el in system.elements] for r in records], dtype=np.int64
    )
    return CrysTensDataset(
        elements=tuple(system.elements),
        x=x,
        space_group=space_group,
        counts=counts,
        ids=[r.id for r in records],
        parents=[r.parent or r.id for r in records],
    )
