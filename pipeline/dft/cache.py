"""DFT results cached per structure and setting: a content hash -> one JSON file.

The key hashes the structure (lattice, species, fractional coordinates wrapped into [0, 1) and
rounded to 1e-6, so a structure read back from a file finds its entry), the Materials Project
parameters it was computed with (U values, initial moments), the calculator settings and the
GPAW and PAW-setup versions. A cache reads from its own folder first, then from shipped
folders (``resources/dft/``: reference calculations with their provenance), and writes to its
own folder only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from pipeline.dft.gpaw_calc import DftEnergy, DftSettings, gpaw_versions
from pipeline.dft.mp_inputs import MpParameters
from pipeline.errors import PipelineInputError

DECIMALS = 6
PROVENANCE = "provenance.json"  # the index of a shipped folder, not an entry


def structure_key(structure: Structure) -> dict[str, Any]:
    """The structure as hashed: lattice (Å), species and wrapped fractional coordinates."""
    frac = np.round(np.mod(structure.frac_coords, 1.0), DECIMALS) % 1.0
    return {
        "lattice": np.round(structure.lattice.matrix, DECIMALS).tolist(),
        "species": [site.specie.symbol for site in structure],
        "frac_coords": frac.tolist(),
    }


def calculation_key(
    structure: Structure,
    parameters: MpParameters,
    settings: DftSettings,
    versions: dict[str, str] | None = None,
) -> str:
    """SHA-256 of the structure, MP parameters, settings and code versions."""
    content = {
        "structure": structure_key(structure),
        "hubbard": [dataclasses.asdict(h) for h in parameters.hubbard],
        "magmoms": [round(m, 4) for m in parameters.magmoms],
        "settings": settings.key(),
        "versions": versions if versions is not None else gpaw_versions(),
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class DftCache:
    """Cached single points: ``<folder>/<key>.json``, shipped folders read as well."""

    def __init__(self, folder: str | Path, shipped: Sequence[str | Path] = ()) -> None:
        self.folder = Path(folder)
        self.shipped = [Path(p) for p in shipped]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def find(self, key: str) -> Path | None:
        """The file holding ``key``: the own folder first, then the shipped ones."""
        for folder in (self.folder, *self.shipped):
            candidate = folder / f"{key}.json"
            if candidate.is_file():
                return candidate
        return None

    def get(self, key: str) -> DftEnergy | None:
        """The cached converged result of ``key``, or None (a failed one is computed again:
        ``max_iterations`` may have been raised since)."""
        path = self.find(key)
        if path is None:
            return None
        result = read_entry(path).result
        return result if result.converged else None

    def put(
        self,
        key: str,
        name: str,
        structure: Structure,
        parameters: MpParameters,
        settings: DftSettings,
        result: DftEnergy,
    ) -> Path:
        """Store one result with what made it; returns the file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {
            "key": key,
            "name": name,
            "formula": structure.composition.formula.replace(" ", ""),
            "structure": structure_key(structure),
            "hubbard": [dataclasses.asdict(h) for h in parameters.hubbard],
            "magmoms": list(parameters.magmoms),
            "settings": settings.key(),
            "versions": gpaw_versions(),
            "result": {**dataclasses.asdict(result), "kpoint_mesh": list(result.kpoint_mesh)},
            "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        path = self.path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=1, allow_nan=True))
        tmp.replace(path)  # atomic: an interrupted run leaves no half-written entry
        return path


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """A cached file: its name (what was computed), structure and result."""

    name: str
    structure: Structure
    result: DftEnergy


def ship(
    cache: str | Path, names: set[str], folder: str | Path, source: str | Path, command: str
) -> list[Path]:
    """Copy the converged entries of ``cache`` computed for ``names`` into ``folder`` (a
    shipped cache) and index them in ``folder/provenance.json``: the structures' source file
    (with its SHA-256), the command, and per entry its name, formula, size, CPU and wall time.
    Returns the copies."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copied, index = [], []
    for path in sorted(Path(cache).glob("*.json")):
        if path.name == PROVENANCE:
            continue
        entry = read_entry(path)
        if entry.name in names and entry.result.converged:
            target = folder / path.name
            target.write_text(path.read_text())
            copied.append(target)
            index.append(
                {
                    "file": path.name,
                    "name": entry.name,
                    "formula": entry.structure.composition.reduced_formula,
                    "natoms": entry.result.natoms,
                    "energy_per_atom": round(entry.result.energy_per_atom, 6),
                    "cpu_s": round(entry.result.cpu_s, 1),
                    "wall_s": round(entry.result.wall_s, 1),
                }
            )
    provenance = {
        "structures": str(source),
        "structures_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
        "command": command,
        "shipped": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": gpaw_versions(),
        "entries": sorted(index, key=lambda item: item["name"]),
    }
    (folder / PROVENANCE).write_text(json.dumps(provenance, indent=1) + "\n")
    return copied


def read_entry(path: str | Path) -> CacheEntry:
    """One cache file."""
    try:
        data = json.loads(Path(path).read_text())
        result = dict(data["result"])
        result["kpoint_mesh"] = tuple(result["kpoint_mesh"])
        structure = Structure(
            data["structure"]["lattice"],
            data["structure"]["species"],
            data["structure"]["frac_coords"],
        )
        return CacheEntry(data["name"], structure, DftEnergy(**result))
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise PipelineInputError(f"{path}: not a DFT cache entry ({exc})") from None
