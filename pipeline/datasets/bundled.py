"""The bundled offline data set: Kim et al. (2020) Mg-Mn-O structures and hull references."""

from __future__ import annotations

from pathlib import Path

from pipeline.records import CrystalRecord, read_records

BUNDLED_SOURCE = "kim2020"
REFERENCE_SOURCE = "reference"


def load_bundled(
    dataset: str | Path, references: str | Path
) -> tuple[list[CrystalRecord], list[CrystalRecord]]:
    """Load the bundled training structures and the reference phases for the hull.

    Parameters
    ----------
    dataset
        ``mgmno_kim2020.json.gz``: 2,627 Mg-Mn-O structures, Kim et al.'s training set,
        made by element substitution into Materials Project prototypes and NOT relaxed
        (170 have a nearest neighbour below 1.7 Å): unrelaxed prototypes everywhere.
    references
        ``mgmno_reference_phases.json``: textbook structures of the hull's phases.
    """
    structures = read_records(dataset)
    for record in structures:
        record.source = record.source or BUNDLED_SOURCE
    reference_phases = read_records(references)
    for record in reference_phases:
        record.source = record.source or REFERENCE_SOURCE
    return structures, reference_phases
