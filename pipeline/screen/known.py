"""Is this structure known? One index of the known structures, one matcher, one answer.

The known structures of a run are the data set with its held-out formulas
(``results/data/known.json.gz``) and the phases of the main potential's hull, relaxed
(``results/hull/<potential>/references_relaxed.json.gz``: reference phases and every
formula's lowest relaxed polymorphs). The ``known_index`` rule reduces each to its
Niggli-reduced primitive cell once and writes them (:meth:`KnownIndex.write`); the validate
stage asks it about the raw samples, the export about the relaxed candidates
(``known_as`` in validation.csv and candidates.csv), and evaluate and the explorer read those
columns. Matching is pymatgen's ``StructureMatcher`` with its default tolerances
(:func:`pipeline.screen.dedup.default_matcher`), the same for duplicates among candidates
(:func:`pipeline.screen.dedup.duplicates`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from tqdm import tqdm

from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.dedup import Prepared, default_matcher, invariants, matches, prepare

Key = tuple[str, int]  # reduced formula, sites of the primitive cell


class KnownIndex:
    """The known structures, reduced once, looked up by formula and primitive size.

    Each entry is a reduced cell as a record; its pymatgen structure is made only when a
    query of its formula and size comes (reading a run's ~3,000 known cells as structures
    would cost more than the queries).
    """

    def __init__(self, cells: Iterable[CrystalRecord]) -> None:
        self.cells: dict[Key, list[CrystalRecord]] = defaultdict(list)
        for cell in cells:
            formula = Composition(cell.formula).reduced_formula
            self.cells[formula, len(cell.species)].append(cell)
        self.prepared: dict[Key, list[tuple[str, Prepared]]] = {}
        self.matcher: StructureMatcher = default_matcher()

    def __len__(self) -> int:
        return sum(len(pool) for pool in self.cells.values())

    @classmethod
    def build(cls, records: Iterable[CrystalRecord], progress: bool = False) -> KnownIndex:
        """Reduce every record. A relaxed hull phase keeps the id of the structure it was
        relaxed from: both geometries are kept under that id."""
        return cls(
            CrystalRecord.from_structure(prepare(record.to_structure()).primitive, record.id)
            for record in tqdm(
                records, desc="known structures", unit="structure", disable=not progress
            )
        )

    def write(self, path: Path) -> None:
        """The reduced cells as a dataset file (ids kept)."""
        write_records([cell for pool in self.cells.values() for cell in pool], path)

    @classmethod
    def read(cls, path: Path) -> KnownIndex:
        """An index written by :meth:`write`; the cells are already reduced."""
        return cls(read_records(path))

    def pool(self, key: Key) -> list[tuple[str, Prepared]]:
        """The known structures of one formula and primitive size, prepared on first use."""
        if key not in self.prepared:
            self.prepared[key] = [
                (cell.id, invariants(cell.to_structure())) for cell in self.cells.get(key, ())
            ]
        return self.prepared[key]

    def known_as(self, prepared: Prepared) -> str | None:
        """The id of the first known structure ``prepared`` matches, or None: new."""
        for known_id, known in self.pool((prepared.formula, prepared.nsites)):
            if matches(prepared, known, self.matcher):
                return known_id
        return None

    def all_known_as(self, prepared: Prepared) -> list[str]:
        """The ids of every known structure ``prepared`` matches (in index order)."""
        return [
            known_id
            for known_id, known in self.pool((prepared.formula, prepared.nsites))
            if matches(prepared, known, self.matcher)
        ]

    def known_as_each(
        self, structures: Sequence[Structure | Prepared], progress: bool = False
    ) -> list[str | None]:
        """:meth:`known_as` of each structure (reduced here unless already prepared)."""
        return [
            self.known_as(s if isinstance(s, Prepared) else prepare(s))
            for s in tqdm(structures, desc="known?", unit="structure", disable=not progress)
        ]
