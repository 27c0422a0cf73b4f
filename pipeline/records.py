"""The canonical crystal record and the dataset file format (gzipped JSON list).

Every stage reads and writes lists of :class:`CrystalRecord`. One record is one
crystal: its id, cell formula, lattice matrix (rows are vectors, Å), species and
fractional coordinates, plus optional DFT or predicted properties and provenance.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from pipeline.errors import PipelineInputError

REQUIRED_KEYS = ("id", "lattice", "species", "frac_coords")


@dataclass
class CrystalRecord:
    """One crystal structure with provenance and optional properties."""

    id: str
    lattice: list[list[float]]
    species: list[str]
    frac_coords: list[list[float]]
    formula: str = ""
    source: str = ""
    parent: str | None = None
    properties: dict[str, float] = field(default_factory=dict)
    # Text facts about how the record was made, e.g. {"potential": "chgnet ... 0.3.0"}.
    provenance: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.formula:
            self.formula = cell_formula(self.species)

    @classmethod
    def from_structure(
        cls,
        structure: Structure,
        id: str,
        source: str = "",
        parent: str | None = None,
        properties: dict[str, float] | None = None,
    ) -> CrystalRecord:
        """Build a record from an ordered pymatgen structure."""
        if not structure.is_ordered:
            raise PipelineInputError(f"{id}: structure has partial occupancies")
        return cls(
            id=id,
            lattice=structure.lattice.matrix.tolist(),
            species=[site.specie.symbol for site in structure],
            frac_coords=structure.frac_coords.tolist(),
            source=source,
            parent=parent,
            properties=dict(properties or {}),
        )

    def to_structure(self) -> Structure:
        """The pymatgen structure of this record."""
        return Structure(Lattice(self.lattice), self.species, self.frac_coords)

    @property
    def natoms(self) -> int:
        return len(self.species)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> CrystalRecord:
        """Build a record from its JSON form, naming the first missing key if any."""
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise PipelineInputError(f"{where}record {data.get('id', '?')!r} lacks {missing}")
        lattice = np.asarray(data["lattice"], dtype=float)
        coords = np.asarray(data["frac_coords"], dtype=float)
        if lattice.shape != (3, 3) or coords.shape != (len(data["species"]), 3):
            raise PipelineInputError(
                f"{where}record {data['id']!r}: lattice must be 3x3 and frac_coords one row"
                " of 3 per species"
            )
        return cls(
            id=str(data["id"]),
            lattice=lattice.tolist(),
            species=[str(s) for s in data["species"]],
            frac_coords=coords.tolist(),
            formula=str(data.get("formula", "")),
            source=str(data.get("source", "")),
            parent=data.get("parent"),
            properties={k: float(v) for k, v in (data.get("properties") or {}).items()},
            provenance={k: str(v) for k, v in (data.get("provenance") or {}).items()},
        )


def cell_formula(species: Iterable[str]) -> str:
    """Cell formula with counts in order of first appearance, e.g. ``Mg2Mn2O6``."""
    counts: dict[str, int] = {}
    for s in species:
        counts[s] = counts.get(s, 0) + 1
    return "".join(f"{el}{n}" for el, n in counts.items())


def make_ids_unique(records: Iterable[CrystalRecord]) -> int:
    """Rename repeated ids in place (``id``, ``id.2``, ``id.3``, ...); returns how many.

    The bundled set reuses its authors' names for different substitutions (1,253 names for
    2,627 structures); every later stage refers to structures by id, so they must differ.
    """
    seen: dict[str, int] = {}
    renamed = 0
    for record in records:
        n = seen.get(record.id, 0) + 1
        seen[record.id] = n
        if n > 1:
            record.id = f"{record.id}.{n}"
            renamed += 1
    return renamed


def read_records(path: str | Path) -> list[CrystalRecord]:
    """Read a dataset file (``.json`` or ``.json.gz``, a JSON list of records)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"dataset file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise PipelineInputError(f"{path}: not a readable gzip/JSON file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise PipelineInputError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(data, list):
        raise PipelineInputError(f"{path}: expected a JSON list of records")
    return [CrystalRecord.from_dict(item, where=f"{path}: ") for item in data]


def write_records(records: Iterable[CrystalRecord], path: str | Path) -> None:
    """Write records as a gzipped (``.gz``) or plain JSON list, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps([_compact(asdict(r)) for r in records])
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes identical for identical records, so Snakemake's
        # checksum-based rerun detection sees "unchanged" when nothing changed.
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        ):
            gz.write(payload.encode("utf-8"))
    else:
        tmp.write_text(payload, encoding="utf-8")
    tmp.replace(path)


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    if not record.get("provenance"):
        record.pop("provenance", None)
    record["frac_coords"] = [[round(x, 12) for x in row] for row in record["frac_coords"]]
    record["lattice"] = [[round(x, 12) for x in row] for row in record["lattice"]]
    return record
