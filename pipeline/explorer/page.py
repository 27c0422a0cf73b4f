"""Write the explorer's static page set: templates, vendored libraries, the data as a script,
and the per-structure downloads.

The page must open from disk (``file://``) with no server and no network, where a browser
refuses to read local files from a script; so the data travel as ``data.js``, which sets
``window.EXPLORER_DATA``, and every library is a local ``<script>``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar
from tqdm import tqdm

from pipeline.explorer.nearest import Nearest
from pipeline.explorer.table import Column
from pipeline.explorer.ternary import TernaryHull, ternary_xy
from pipeline.records import CrystalRecord
from pipeline.screen.criteria import Criteria

PACKAGE_DIR = Path(__file__).parent
TEMPLATES = PACKAGE_DIR / "templates"
VENDOR = PACKAGE_DIR / "vendor"
UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(record_id: str) -> str:
    """A file name for ``record_id`` that any file system and URL takes as it is."""
    return UNSAFE_FILE_CHARACTERS.sub("_", record_id)


def json_value(value: Any) -> Any:
    """A table cell as JSON: NaN and missing as null, numpy scalars as Python ones."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), 6) if math.isfinite(value) else None
    return value


def write_structure_files(record: CrystalRecord, folder: Path) -> dict[str, str]:
    """POSCAR and CIF of ``record`` under ``folder``; their paths relative to the page."""
    structure = record.to_structure()
    stem = file_stem(record.id)
    folder.mkdir(parents=True, exist_ok=True)
    Poscar(structure, comment=record.id).write_file(folder / f"{stem}.vasp")
    (folder / f"{stem}.cif").write_text(str(CifWriter(structure)))
    return {"poscar": f"{folder.name}/{stem}.vasp", "cif": f"{folder.name}/{stem}.cif"}


def zip_folder(source: Path, target: Path) -> None:
    """``source``'s files in a zip archive ``target``, paths relative to ``source``'s parent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source.parent))


def structure_entry(record: CrystalRecord, folder: Path) -> dict[str, Any]:
    """What the page keeps of one structure: its CIF text (for the viewer) and file links."""
    files = write_structure_files(record, folder)
    return {
        "formula": Composition(record.formula).reduced_formula,
        "source": record.source,
        "cif": (folder / Path(files["cif"]).name).read_text(),
        "files": files,
    }


def build_data(
    table: pd.DataFrame,
    columns: Sequence[Column],
    relaxed: Sequence[CrystalRecord],
    known: dict[str, CrystalRecord],
    nearest: Sequence[Nearest],
    hull: TernaryHull,
    criteria: Criteria,
    chemsys: str,
    out_dir: Path,
    dft_ready: Path | None,
) -> dict[str, Any]:
    """The page's data (``window.EXPLORER_DATA``); writes the download files on the way."""
    keys = [c.key for c in columns]
    rows = [[json_value(v) for v in row] for row in table[keys].itertuples(index=False)]
    nearest_by_id = {n.candidate_id: n for n in nearest}
    structures: dict[str, Any] = {}
    for record in tqdm(relaxed, desc="structure files", unit="structure"):
        entry = structure_entry(record, out_dir / "structures")
        if len(hull.elements) == 3:
            x, y = ternary_xy(Composition(record.formula), hull.elements)
            entry["xy"] = [round(x, 5), round(y, 5)]
        match = nearest_by_id.get(record.id)
        entry["nearest"] = (
            {"id": match.known_id, "how": match.how, "distance": json_value(match.distance)}
            if match and match.known_id
            else None
        )
        exported = dft_ready / record.id if dft_ready is not None else None
        if exported is not None and exported.is_dir():
            archive = f"dft_ready/{file_stem(record.id)}.zip"
            zip_folder(exported, out_dir / archive)
            entry["files"]["dft_ready"] = archive
        structures[record.id] = entry
    shown = sorted({n.known_id for n in nearest if n.known_id})
    known_entries = {}
    for known_id in shown:
        entry = structure_entry(known[known_id], out_dir / "known")
        entry["energy_per_atom"] = json_value(known[known_id].properties.get("energy_per_atom"))
        known_entries[known_id] = entry
    return {
        "meta": {
            "chemsys": chemsys,
            "elements": hull.elements,
            # the export's verdict thresholds, drawn in the plots
            "thresholds": {
                "e_above_hull": criteria.synthesizable,
                "band_gap_min": criteria.band_gap_min,
                "band_gap_max": criteria.band_gap_max,
                "band_gap_level": criteria.band_gap_level,
                "delta_g_pbx": criteria.max_delta_g_pbx,
            },
            "count": len(table),
        },
        "columns": [asdict(c) for c in columns],
        "rows": rows,
        "structures": structures,
        "known": known_entries,
        "hull": asdict(hull),
    }


def write_page(data: dict[str, Any], out_dir: Path) -> Path:
    """Templates, vendored libraries with their licences, and ``data.js`` into ``out_dir``;
    returns the path of ``index.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for template in TEMPLATES.iterdir():
        shutil.copy(template, out_dir / template.name)
    shutil.copytree(VENDOR, out_dir / "vendor", dirs_exist_ok=True)
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # "</" would end an inline script early if the file were ever inlined; harmless escaped.
    payload = payload.replace("</", "<\\/")
    (out_dir / "data.js").write_text(f"window.EXPLORER_DATA = {payload};\n")
    return out_dir / "index.html"
