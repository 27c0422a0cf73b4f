"""Stage validate: keep the generated crystals worth relaxing, say why others were not.

Checks, in order, each rejection with its reason in the table:

1. elements outside the chemical system;
2. structure: every interatomic distance >= ``--min-distance`` Å and a volume per atom
   within ``--min-volume-per-atom`` .. ``--max-volume-per-atom`` Å^3;
3. charge neutrality with common oxidation states (pymatgen);
4. duplicates within the batch (pymatgen ``StructureMatcher``; the first one is kept).

Unique valid structures are compared with the training data: ``novel`` is False for a
structure that matches one (``known_as`` names it). All of them go on to the prescreen
(:mod:`pipeline.stages.prescreen`), which chooses the ones worth relaxing.
Run ``python -m pipeline.stages.validate --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.dedup import find_matches
from pipeline.screen.validity import (
    ValidityLimits,
    charge_problem,
    element_problem,
    min_interatomic_distance,
    structural_problem,
)
from pipeline.settings import default

VALID, REJECTED = "valid", "rejected"
COLUMNS = [
    "id",
    "model",
    "formula",
    "status",
    "reason",
    "novel",
    "known_as",
    "min_distance",
    "volume_per_atom",
]


@dataclass
class Verdict:
    """One row of the validation table."""

    id: str
    model: str
    formula: str
    status: str = VALID
    reason: str = ""
    novel: bool | None = None
    known_as: str = ""
    min_distance: float = float("nan")
    volume_per_atom: float = float("nan")


def check_record(record: CrystalRecord, system: ChemicalSystem, limits: ValidityLimits) -> Verdict:
    """The structural and chemical checks of one record (no deduplication)."""
    structure = record.to_structure()
    verdict = Verdict(id=record.id, model=record.source, formula=record.formula)
    verdict.volume_per_atom = structure.volume / len(structure)
    verdict.min_distance = min_interatomic_distance(structure)
    reason = (
        element_problem(structure, system)
        or structural_problem(structure, limits)
        or charge_problem(structure)
    )
    if reason:
        verdict.status, verdict.reason = REJECTED, reason
    return verdict


def validate(
    candidates: Sequence[CrystalRecord],
    training: Sequence[CrystalRecord],
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
    matches = find_matches(
        [(r.id, r.to_structure()) for r, _ in passing],
        [(r.id, r.to_structure()) for r in training],
        progress=progress,
    )
    for (_, verdict), match in zip(passing, matches):
        if match.duplicate_of is not None:
            verdict.status, verdict.reason = REJECTED, f"duplicate of {match.duplicate_of}"
        else:
            verdict.novel = match.known_as is None
            verdict.known_as = match.known_as or ""
    return [r for r, v in passing if v.status == VALID], verdicts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--samples",
        type=Path,
        nargs="+",
        required=True,
        help="generated structures, one dataset file per model",
    )
    parser.add_argument(
        "--training",
        type=Path,
        required=True,
        help="training dataset, to tell novel from known structures",
    )
    parser.add_argument("--chemsys", default=default("chemsys"))
    parser.add_argument(
        "--min-distance", type=float, default=default("screen.min_distance"), help="Å"
    )
    parser.add_argument(
        "--min-volume-per-atom", type=float, default=default("screen.min_volume_per_atom")
    )
    parser.add_argument(
        "--max-volume-per-atom", type=float, default=default("screen.max_volume_per_atom")
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="unique valid structures (.json.gz)"
    )
    parser.add_argument("--out-table", type=Path, required=True, help="validation.csv")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = ChemicalSystem.parse(args.chemsys)
    limits = ValidityLimits(args.min_distance, args.min_volume_per_atom, args.max_volume_per_atom)
    candidates = [record for path in args.samples for record in read_records(path)]
    training = read_records(args.training)
    unique, verdicts = validate(candidates, training, system, limits, progress=True)
    write_records(unique, args.out)
    args.out_table.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([vars(v) for v in verdicts], columns=COLUMNS)
    table.to_csv(args.out_table, index=False)
    counts = Counter(v.status for v in verdicts)
    print(
        json.dumps(
            {
                "candidates": len(candidates),
                **counts,
                "novel": sum(v.novel is True for v in verdicts),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
