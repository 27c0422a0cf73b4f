"""Every file format the stages exchange, with its reader and writer.

| file | type | read / write |
| --- | --- | --- |
| ``*.json.gz`` structures | list of :class:`~pipeline.records.CrystalRecord` | :func:`~pipeline.records.read_records` / ``write_records`` |
| ``results/encoded/pointcloud.npz`` | :class:`EncodedDataset` | :func:`load_encoded` / :func:`save_encoded` |
| ``results/encoded/pointcloud_properties.npz`` | :class:`LabelledDataset` | :func:`load_labelled` / :func:`save_labelled` |
| ``results/encoded/crystens.npz`` | :class:`CrysTensDataset` | :func:`load_crystens` / :func:`save_crystens` |
| ``results/encoded/graph.npz`` | :class:`GraphDataset` | :func:`load_graph_dataset` / :func:`save_graph_dataset` |
| ``results/encoded/wyckoff.npz`` | Wyckoff crystals | :func:`pipeline.represent.wyckoff.load_wyckoff_dataset` |
| screen tables (``*.csv``) | ``pandas.DataFrame`` | :func:`read_table`; relax status columns :data:`RELAX_STATUS_COLUMNS` |

The ``.npz`` files are written atomically by :func:`pipeline.arrays.save_arrays`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.arrays import load_arrays, save_arrays
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.represent.pointcloud import PointCloudEncoding

# ----------------------------------------------------------------------------- point clouds


@dataclass
class EncodedDataset:
    """Point clouds and labels of a dataset, as saved by :func:`save_encoded`."""

    encoding: PointCloudEncoding
    x: np.ndarray
    counts: np.ndarray
    composition_class: np.ndarray
    compositions: list[str]
    ids: list[str]
    parents: list[str]

    @property
    def condition(self) -> np.ndarray:
        return self.encoding.count_onehot(self.counts)

    def __len__(self) -> int:
        return len(self.x)


def save_encoded(data: EncodedDataset, path: str | Path) -> None:
    save_arrays(
        path,
        x=data.x,
        counts=data.counts,
        condition=data.condition,
        composition_class=data.composition_class,
        compositions=np.array(data.compositions),
        ids=np.array(data.ids),
        parents=np.array(data.parents),
        elements=np.array(data.encoding.elements),
        caps=np.array(data.encoding.caps),
    )


def load_encoded(path: str | Path) -> EncodedDataset:
    """Read an ``.npz`` written by :func:`save_encoded`."""
    f = load_arrays(path, "point-cloud dataset", marker="composition_class")
    encoding = PointCloudEncoding(
        tuple(str(e) for e in f["elements"]), tuple(int(c) for c in f["caps"])
    )
    return EncodedDataset(
        encoding=encoding,
        x=f["x"],
        counts=f["counts"],
        composition_class=f["composition_class"],
        compositions=[str(s) for s in f["compositions"]],
        ids=[str(s) for s in f["ids"]],
        parents=[str(s) for s in f["parents"]],
    )


# ----------------------------------------------------------------------------- labelled point clouds

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


# ----------------------------------------------------------------------------- CrysTens


@dataclass
class CrysTensDataset:
    """Normalised CrysTens of a dataset with their labels (see the module doc)."""

    elements: tuple[str, ...]
    x: np.ndarray
    space_group: np.ndarray
    counts: np.ndarray
    ids: list[str]
    parents: list[str]

    def __len__(self) -> int:
        return len(self.x)


def save_crystens(data: CrysTensDataset, path: str | Path) -> None:
    save_arrays(
        path,
        x=data.x,
        space_group=data.space_group,
        counts=data.counts,
        ids=np.array(data.ids),
        parents=np.array(data.parents),
        elements=np.array(data.elements),
    )


def load_crystens(path: str | Path) -> CrysTensDataset:
    """Read an ``.npz`` written by :func:`save_crystens`."""
    f = load_arrays(path, "CrysTens dataset", marker="space_group")
    return CrysTensDataset(
        elements=tuple(str(e) for e in f["elements"]),
        x=f["x"],
        space_group=f["space_group"],
        counts=f["counts"],
        ids=[str(s) for s in f["ids"]],
        parents=[str(s) for s in f["parents"]],
    )


# ----------------------------------------------------------------------------- crystal graphs


@dataclass
class GraphDataset:
    """Crystals as concatenated node arrays, as saved by :func:`save_graph_dataset`."""

    elements: tuple[str, ...]
    species: np.ndarray
    frac_coords: np.ndarray
    num_atoms: np.ndarray
    lattice: np.ndarray
    band_gap: np.ndarray
    ids: list[str]
    parents: list[str]

    def __len__(self) -> int:
        return len(self.num_atoms)

    def records(self) -> list[CrystalRecord]:
        """The crystals as records (``properties["band_gap"]`` set)."""
        starts = np.concatenate([[0], np.cumsum(self.num_atoms)])
        return [
            CrystalRecord(
                id=self.ids[k],
                lattice=self.lattice[k].tolist(),
                species=[self.elements[s] for s in self.species[starts[k] : starts[k + 1]]],
                frac_coords=self.frac_coords[starts[k] : starts[k + 1]].tolist(),
                parent=self.parents[k],
                properties={"band_gap": float(self.band_gap[k])},
            )
            for k in range(len(self))
        ]


def save_graph_dataset(data: GraphDataset, path: str | Path) -> None:
    save_arrays(
        path,
        species=data.species,
        frac_coords=data.frac_coords,
        num_atoms=data.num_atoms,
        lattice=data.lattice,
        band_gap=data.band_gap,
        ids=np.array(data.ids),
        parents=np.array(data.parents),
        elements=np.array(data.elements),
    )


def load_graph_dataset(path: str | Path) -> GraphDataset:
    """Read an ``.npz`` written by :func:`save_graph_dataset`."""
    f = load_arrays(path, "graph dataset", marker="num_atoms")
    return GraphDataset(
        elements=tuple(str(e) for e in f["elements"]),
        species=f["species"],
        frac_coords=f["frac_coords"],
        num_atoms=f["num_atoms"],
        lattice=f["lattice"],
        band_gap=f["band_gap"],
        ids=[str(s) for s in f["ids"]],
        parents=[str(s) for s in f["parents"]],
    )


# ----------------------------------------------------------------------------- tables

# Columns the symmetrise-and-rerelax step adds (pipeline.screen.symmetrise).
SYMMETRISE_COLUMNS = (
    "symmetrised",
    "energy_per_atom_first",
    "space_group_first",
    "energy_per_atom_symmetrised",
    "space_group_symmetrised",
)
RELAX_STATUS_COLUMNS = [
    "id",
    "status",
    "reason",
    "steps",
    "energy_per_atom",
    "max_force",
    "volume_ratio",
    "potential",
    *SYMMETRISE_COLUMNS,
]


def read_table(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    """A screen table (CSV) with its ``id`` column as strings, naming missing columns."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"table not found: {path}")
    table = pd.read_csv(path, dtype={"id": str})
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise PipelineInputError(f"{path}: missing columns {missing}")
    return table


# hull.csv's column of the main potential's E_hull of a repeated relaxation (rattled start)
REPEAT_E_HULL = "e_above_hull_repeat"


def second_opinion_column(potential: str) -> str:
    """hull.csv's column of another potential's E_hull at the main potential's geometry."""
    return f"e_above_hull_{potential}"


def consensus_column(potential: str) -> str:
    """hull.csv's column of another potential's E_hull from its own relaxation."""
    return f"e_above_hull_{potential}_relaxed"


def as_flag(column: pd.Series) -> pd.Series:
    """A boolean column as a CSV round trip leaves it (True, False, "True" or empty): empty is
    False."""
    return column.map(lambda v: str(v).strip().lower() == "true").astype(bool)


def is_blank(column: pd.Series) -> pd.Series:
    """Missing or empty text (a CSV round trip turns '' into NaN)."""
    return column.isna() | column.astype(str).str.strip().isin(["", "nan", "None"])
