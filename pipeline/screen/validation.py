"""Which generated crystals are worth relaxing, and why the others are not.

Every generator hands over everything it generated; the checks here are the same for all
of them, so their rates share one denominator (:mod:`pipeline.quality`). In order, each
rejection with its reason:

1. elements outside the chemical system;
2. structure: every interatomic distance >= ``min_distance`` Å (``structurally_valid``) and
   a volume per atom within the sane range;
3. duplicates among the same generator's structurally valid samples (the first is kept;
   ``duplicate_of`` names it);
4. charge neutrality with common oxidation states (pymatgen).

Each unique structurally valid sample is looked up in the known-structure index
(:mod:`pipeline.screen.known`): ``known_as`` names the known structure it is, ``new`` is
True when it is none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.dedup import duplicates, prepare
from pipeline.screen.known import KnownIndex
from pipeline.screen.validity import (
    ValidityLimits,
    charge_problem,
    element_problem,
    min_interatomic_distance,
    structural_problem,
)

VALID, REJECTED = "valid", "rejected"


@dataclass
class Verdict:
    """One row of the validation table (``validation.csv``)."""

    id: str
    model: str
    formula: str
    status: str = VALID
    reason: str = ""
    structurally_valid: bool = False
    duplicate_of: str = ""
    known_as: str = ""
    new: bool | None = None  # unique, structurally valid and no known structure
    min_distance: float = float("nan")
    volume_per_atom: float = float("nan")


COLUMNS = list(Verdict.__dataclass_fields__)


def check_record(record: CrystalRecord, system: ChemicalSystem, limits: ValidityLimits) -> Verdict:
    """The element and structural checks of one record (no deduplication, no charge)."""
    structure = record.to_structure()
    verdict = Verdict(id=record.id, model=record.source, formula=record.formula)
    verdict.volume_per_atom = structure.volume / len(structure)
    verdict.min_distance = min_interatomic_distance(structure)
    verdict.structurally_valid = bool(verdict.min_distance >= limits.min_distance)
    reason = element_problem(structure, system) or structural_problem(structure, limits)
    if reason:
        verdict.status, verdict.reason = REJECTED, reason
    return verdict


def validate(
    candidates: Sequence[CrystalRecord],
    known: KnownIndex,
    system: ChemicalSystem,
    limits: ValidityLimits,
    progress: bool = False,
) -> tuple[list[CrystalRecord], list[Verdict]]:
    """Validate ``candidates``: the unique valid records and a verdict for every candidate."""
    ids = Counter(r.id for r in candidates)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise PipelineInputError(f"candidate ids must be unique; repeated: {repeated[:5]}")
    verdicts = [
        check_record(r, system, limits)
        for r in tqdm(candidates, desc="validity", unit="structure", disable=not progress)
    ]
    passing = [(r, v) for r, v in zip(candidates, verdicts) if v.status == VALID]
    prepared = [
        prepare(r.to_structure())
        for r, _ in tqdm(passing, desc="reduce", unit="structure", disable=not progress)
    ]
    first_of = duplicates(prepared, [r.id for r, _ in passing], [r.source for r, _ in passing])
    for (record, verdict), cell, duplicate_of in zip(passing, prepared, first_of):
        if duplicate_of is not None:
            verdict.status, verdict.reason = REJECTED, f"duplicate of {duplicate_of}"
            verdict.duplicate_of = duplicate_of
            continue
        verdict.known_as = known.known_as(cell) or ""
        verdict.new = not verdict.known_as
        charge = charge_problem(record.to_structure())
        if charge:
            verdict.status, verdict.reason = REJECTED, charge
    return [r for r, v in passing if v.status == VALID], verdicts
