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
from pymatgen.core import Structure
from tqdm import tqdm

from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.dedup import Prepared, default_matcher, invariants, matches, prepare

Key = tuple[str, int]  # reduced formula, sites of the primitive cell


class KnownIndex:
    """The known structures, reduced once, looked up by formula and primitive size."""

    def __init__(self, known: Iterable[tuple[str, Prepared]]) -> None:
        self.by_key: dict[Key, list[tuple[str, Prepared]]] = defaultdict(list)
        for known_id, prepared in known:
            self.by_key[prepared.formula, prepared.nsites].append((known_id, prepared))
        self.matcher: StructureMatcher = default_matcher()

    def __len__(self) -> int:
        return sum(len(pool) for pool in self.by_key.values())

    @classmethod
    def build(cls, records: Iterable[CrystalRecord], progress: bool = False) -> KnownIndex:
        """Reduce every record (the first of two with one id is kept)."""
        seen: dict[str, CrystalRecord] = {}
        for record in records:
            seen.setdefault(record.id, record)
        return cls(
            (known_id, prepare(record.to_structure()))
            for known_id, record in tqdm(
                seen.items(), desc="known structures", unit="structure", disable=not progress
            )
        )

    def write(self, path: Path) -> None:
        """The reduced cells as a dataset file (ids kept)."""
        write_records(
            [
                CrystalRecord.from_structure(prepared.primitive, known_id)
                for pool in self.by_key.values()
                for known_id, prepared in pool
            ],
            path,
        )

    @classmethod
    def read(cls, path: Path) -> KnownIndex:
        """An index written by :meth:`write`; the cells are already reduced."""
        return cls((r.id, invariants(r.to_structure())) for r in read_records(path))

    def known_as(self, prepared: Prepared) -> str | None:
        """The id of the first known structure ``prepared`` matches, or None: new."""
        for known_id, known in self.by_key.get((prepared.formula, prepared.nsites), ()):
            if matches(prepared, known, self.matcher):
                return known_id
        return None

    def known_as_each(
        self, structures: Sequence[Structure | Prepared], progress: bool = False
    ) -> list[str | None]:
        """:meth:`known_as` of each structure (reduced here unless already prepared)."""
        return [
            self.known_as(s if isinstance(s, Prepared) else prepare(s))
            for s in tqdm(structures, desc="known?", unit="structure", disable=not progress)
        ]
