"""Ingest a folder of user CIF files."""

from __future__ import annotations

import warnings
from pathlib import Path

from pymatgen.core import Structure

from pipeline.datasets.filtering import Rejection
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord

CIF_SOURCE = "cif"


def load_cif_dir(folder: str | Path) -> tuple[list[CrystalRecord], list[Rejection]]:
    """Parse every ``*.cif`` in ``folder``; unparsable or disordered files are rejected.

    Returns the parsed records (id: the file name without ``.cif``) and the rejections
    with their reasons. Chemistry and size checks happen later, in
    :func:`pipeline.datasets.filtering.split_usable`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineInputError(f"CIF folder not found: {folder}")
    paths = sorted(folder.glob("*.cif"))
    if not paths:
        raise PipelineInputError(f"no *.cif files in {folder}")
    records: list[CrystalRecord] = []
    rejected: list[Rejection] = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_file(path)
        except Exception as exc:  # pymatgen raises many types for malformed CIFs
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            rejected.append(Rejection(path.stem, CIF_SOURCE, f"unparsable CIF: {message}"))
            continue
        if not structure.is_ordered:
            rejected.append(Rejection(path.stem, CIF_SOURCE, "partial occupancy (disordered)"))
            continue
        records.append(CrystalRecord.from_structure(structure, id=path.stem, source=CIF_SOURCE))
    return records, rejected
