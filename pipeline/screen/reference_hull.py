"""The complete hull of a dataset: every formula's lowest-energy structure, relaxed.

The hull a candidate is measured against holds the system's reference phases and, for
every reduced formula of the training data, its lowest-energy structure relaxed with the
same potential as the candidates. Which structure of a formula is lowest is only known
after relaxing: the training structures may be unrelaxed prototypes (the bundled set is
built by element substitution), whose single-point energies rank polymorphs only roughly.
So, for any dataset:

1. a single-point energy of every training structure (one batched pass);
2. per reduced formula, the ``per_formula`` lowest *distinct* structures by that energy
   (supercells and duplicates of one structure collapse with ``StructureMatcher``);
3. relaxation of those and of the reference phases;
4. the hull of everything relaxed: pymatgen's ``PhaseDiagram`` keeps, per formula, the
   lowest relaxed polymorph.

The result depends only on the inputs, the potential (name, package version, checkpoint)
and the relaxation settings. Their :func:`hull_fingerprint` names it, so a hull computed
once (e.g. shipped in ``resources/hull/``) is reused exactly when recomputing it would
give the same thing (:func:`find_shipped`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, read_records
from pipeline.screen.convex_hull import hull_entries
from pipeline.screen.dedup import default_matcher, matches, prepare
from pipeline.screen.relaxation import RelaxSettings

# Bump when the procedure above changes in a way that changes its result.
PROCEDURE_VERSION = 1
PROVENANCE_SUFFIX = ".provenance.json"
RECORDS_SUFFIX = ".json.gz"


def lowest_distinct_per_formula(
    records: Sequence[CrystalRecord],
    energies: Sequence[float],
    per_formula: int,
) -> list[CrystalRecord]:
    """Per reduced formula, the ``per_formula`` lowest-energy structures that differ.

    Parameters
    ----------
    records
        Training structures.
    energies
        Single-point energy per atom of each record (eV/atom); NaN never qualifies.
    per_formula
        Distinct structures kept per formula (``StructureMatcher``: a supercell of a kept
        structure is the same structure).

    Returns
    -------
    The chosen records, grouped by formula (formulas sorted), lowest energy first.
    """
    if per_formula < 1:
        raise PipelineInputError("hull polymorphs per formula must be at least 1")
    if len(records) != len(energies):
        raise ValueError("one energy per record")
    by_formula: dict[str, list[tuple[float, str, CrystalRecord]]] = defaultdict(list)
    for record, energy in zip(records, energies):
        if math.isfinite(energy):
            formula = Composition(record.formula).reduced_formula
            by_formula[formula].append((energy, record.id, record))
    matcher = default_matcher()
    chosen: list[CrystalRecord] = []
    for formula in sorted(by_formula):
        kept = []
        for _, _, record in sorted(by_formula[formula], key=lambda item: item[:2]):
            prepared = prepare(record.to_structure())
            if not any(matches(prepared, other, matcher) for other in kept):
                kept.append(prepared)
                chosen.append(record)
            if len(kept) == per_formula:
                break
    return chosen


def records_digest(records: Sequence[CrystalRecord]) -> str:
    """SHA-256 of the structures (ids, species, lattices, coordinates to 1e-6)."""
    canonical = [
        [
            r.id,
            r.species,
            [[round(x, 6) for x in row] for row in r.lattice],
            [[round(x, 6) for x in row] for row in r.frac_coords],
        ]
        for r in sorted(records, key=lambda r: r.id)
    ]
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


@dataclass(frozen=True)
class HullInputs:
    """Everything the relaxed hull depends on."""

    potential: str  # pipeline.screen.potentials.describe: name, package version, checkpoint
    references_digest: str
    training_digest: str
    per_formula: int
    fmax: float
    max_steps: int
    procedure_version: int = PROCEDURE_VERSION

    @classmethod
    def of(
        cls,
        potential: str,
        references: Sequence[CrystalRecord],
        training: Sequence[CrystalRecord],
        per_formula: int,
        settings: RelaxSettings,
    ) -> HullInputs:
        return cls(
            potential=potential,
            references_digest=records_digest(references),
            training_digest=records_digest(training),
            per_formula=per_formula,
            fmax=settings.fmax,
            max_steps=settings.max_steps,
        )

    def fingerprint(self) -> str:
        """SHA-256 of these inputs: equal fingerprints, equal hulls."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class HullProvenance:
    """How a relaxed hull was made; written beside it as ``<name>.provenance.json``."""

    inputs: HullInputs
    fingerprint: str
    energy_scale: str
    created: str  # UTC date and time
    command: str
    wall_seconds: float
    device: str
    relaxed: int
    failed: int

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")


def read_provenance(path: Path) -> dict:
    """A provenance file as a dict (its ``fingerprint`` is what :func:`find_shipped` checks)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PipelineInputError(f"{path}: not a readable provenance file ({exc})") from None
    if not isinstance(data, dict) or "fingerprint" not in data:
        raise PipelineInputError(f"{path}: provenance without a fingerprint")
    return data


def find_shipped(directory: Path | None, fingerprint: str) -> Path | None:
    """The relaxed hull in ``directory`` whose provenance carries ``fingerprint``, if any."""
    if directory is None or not directory.is_dir():
        return None
    for provenance in sorted(directory.glob(f"*{PROVENANCE_SUFFIX}")):
        if read_provenance(provenance).get("fingerprint") == fingerprint:
            records = provenance.with_name(
                provenance.name.removesuffix(PROVENANCE_SUFFIX) + RECORDS_SUFFIX
            )
            if records.is_file():
                return records
    return None


def load_shipped(path: Path) -> list[CrystalRecord]:
    """The relaxed references of a shipped hull."""
    return read_records(path)


HULL_PHASE_COLUMNS = [
    "id",
    "formula",
    "reduced_formula",
    "origin",
    "energy_per_atom",
    "formation_energy_per_atom",
    "e_above_hull",
    "lowest_of_formula",
    "on_hull",
    "potential",
]


def hull_phase_table(references: Sequence[CrystalRecord], oxygen_reference: str) -> pd.DataFrame:
    """Every relaxed reference with its place on the hull they make.

    ``origin`` says where a phase came from (the record's ``source``: ``reference`` for
    the reference phases, the dataset's name for training structures); ``on_hull`` marks
    the phases that make the hull, ``lowest_of_formula`` each formula's lowest polymorph.
    """
    entries = hull_entries(references, oxygen_reference)  # on the potential's energy scale
    diagram = PhaseDiagram(entries)
    stable = {entry.name for entry in diagram.stable_entries}
    lowest: dict[str, tuple[float, str]] = {}
    for record in references:
        formula = Composition(record.formula).reduced_formula
        key = (record.properties["energy_per_atom"], record.id)
        lowest[formula] = min(lowest.get(formula, key), key)
    rows = []
    for record, entry in zip(references, entries):
        formula = Composition(record.formula).reduced_formula
        rows.append(
            {
                "id": record.id,
                "formula": record.formula,
                "reduced_formula": formula,
                "origin": record.source,
                "energy_per_atom": record.properties["energy_per_atom"],
                "formation_energy_per_atom": diagram.get_form_energy_per_atom(entry),
                "e_above_hull": diagram.get_e_above_hull(entry, allow_negative=True),
                "lowest_of_formula": lowest[formula][1] == record.id,
                "on_hull": record.id in stable,
                "potential": record.provenance.get("potential", ""),
            }
        )
    table = pd.DataFrame(rows, columns=HULL_PHASE_COLUMNS)
    return table.sort_values(["on_hull", "reduced_formula"], ascending=[False, True])
