"""The explorer's page set and database from the screen's files: what the explorer stage writes.

:func:`write_explorer` merges the screen's tables (``candidates.csv`` first: it carries the
verdict; then, when the DFT check ran, its ``dft_check.csv``: the DFT verdict keyed by id), adds space groups and the known structure shown beside each candidate, and writes
the static page set and the ASE database (:mod:`pipeline.explorer.page`,
:mod:`pipeline.explorer.database`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.chemsys import ChemicalSystem
from pipeline.explorer.database import write_database
from pipeline.explorer.nearest import find_nearest
from pipeline.explorer.page import build_data, write_page
from pipeline.explorer.table import (
    add_space_groups,
    merge_tables,
    ordered_columns,
    read_optional_table,
)
from pipeline.explorer.ternary import ternary_hull
from pipeline.records import read_records
from pipeline.screen.criteria import Criteria


@dataclass(frozen=True)
class ExplorerInputs:
    """The screen's files the explorer shows (None: a table the run did not write)."""

    relaxed: Path  # relaxed structures
    candidates: Path  # candidates.csv, with the verdict
    criteria: Path  # the export's criteria.json
    references: Path  # the hull's relaxed phases
    known: Path  # the data stage's known.json.gz
    chemsys: str
    oxygen_reference: str  # the hull's (screen.oxygen_reference)
    hull: Path | None = None
    properties: Path | None = None
    pourbaix: Path | None = None
    validation: Path | None = None
    relax_status: Path | None = None
    dft_ready: Path | None = None
    dft_check: Path | None = None  # dft_check.csv (dft.check): the DFT verdict by id


def write_explorer(inputs: ExplorerInputs, out_dir: Path, out_db: Path) -> Path:
    """Write the page set into ``out_dir`` and the database to ``out_db``; returns the page."""
    system = ChemicalSystem.parse(inputs.chemsys)
    relaxed = read_records(inputs.relaxed)
    references = read_records(inputs.references)
    known_structures = read_records(inputs.known)
    candidates = read_optional_table(inputs.candidates)
    table = merge_tables(
        relaxed,
        [
            candidates,
            read_optional_table(inputs.dft_check),
            read_optional_table(inputs.hull),
            read_optional_table(inputs.properties),
            read_optional_table(inputs.pourbaix),
            read_optional_table(inputs.validation),
            read_optional_table(inputs.relax_status),
        ],
    )
    table = add_space_groups(table, relaxed)
    matched = candidates.dropna(subset=["known_as"])
    known_as = dict(zip(matched["id"], matched["known_as"].astype(str)))
    nearest = find_nearest(relaxed, references, known_structures, known_as)
    table["nearest_id"] = table["id"].map({n.candidate_id: n.known_id for n in nearest})
    table["nearest_how"] = table["id"].map({n.candidate_id: n.how for n in nearest})

    for stale in ("structures", "known", "dft_ready"):  # files of structures no longer here
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    data = build_data(
        table=table,
        columns=ordered_columns(table),
        relaxed=relaxed,
        known={r.id: r for r in known_structures} | {r.id: r for r in references},
        nearest=nearest,
        hull=ternary_hull(references, list(system.elements), inputs.oxygen_reference),
        criteria=Criteria.read(inputs.criteria),
        chemsys=inputs.chemsys,
        out_dir=out_dir,
        dft_ready=inputs.dft_ready,
    )
    index = write_page(data, out_dir)
    write_database(relaxed, table, out_db)
    return index
