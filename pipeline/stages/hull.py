"""Stage hull: energy above the convex hull, self-consistent with the potential.

``references``: the complete hull of the dataset with one potential: the reference phases
and, per reduced formula of the training data, the ``--per-formula`` lowest structures by
single-point energy, all relaxed (see :mod:`pipeline.screen.reference_hull`). The result
depends on the inputs, the potential and the relaxation settings only; a hull with the same
fingerprint found in ``--shipped`` (e.g. ``resources/hull``) is used instead of recomputing.
``ehull``: build the hull (pymatgen ``PhaseDiagram``) of the relaxed references and give
every relaxed candidate its E_hull (eV/atom); the phases that make the hull go to
``--out-phases``. With Materials Project entries also E_hull on the MP hull (MP2020
corrections where the potential's energies lack them); with ``--second-opinion`` another
potential's E_hull at the same geometry (``e_above_hull_<potential>``, ``agrees``); with
``--consensus`` potentials also their E_hull from their own relaxations, a candidate
passing only where all of them put it within ``--e-hull-max``.
Run ``python -m pipeline.stages.hull references --help`` or ``... ehull --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from monty.serialization import loadfn
from pymatgen.core import Element

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import RELAX_STATUS_COLUMNS
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.convex_hull import (
    HullResult,
    e_above_hull,
    mp_corrections_note,
    mp_e_above_hull,
    pd_entry,
    phase_diagram,
    potential_name,
)
from pipeline.screen.coverage import (
    binaries_without_compounds,
    elements_of,
    uncovered_subsystems_of,
    with_nonmetal,
)
from pipeline.screen.modes import (
    add_relax_arguments,
    relax_options,
    relax_records,
    single_point_records,
)
from pipeline.screen.potentials import describe, energy_scale
from pipeline.screen.reference_hull import (
    PROVENANCE_SUFFIX,
    RECORDS_SUFFIX,
    HullInputs,
    HullProvenance,
    find_shipped,
    hull_phase_table,
    lowest_distinct_per_formula,
)
from pipeline.screen.relaxation import summarize
from pipeline.settings import default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.hull",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    refs = commands.add_parser("references", help="relax the hull's reference structures")
    refs.add_argument("--references", type=Path, required=True, help="reference phases")
    refs.add_argument("--dataset", type=Path, required=True, help="training structures")
    refs.add_argument(
        "--per-formula",
        type=int,
        required=True,
        help="distinct training structures relaxed per reduced formula, lowest single point first",
    )
    refs.add_argument(
        "--shipped",
        type=Path,
        default=None,
        help="folder of relaxed hulls (<name>.json.gz + .provenance.json) to reuse on a match",
    )
    add_relax_arguments(refs)
    refs.add_argument("--out", type=Path, required=True, help="relaxed references (.json.gz)")
    refs.add_argument("--out-status", type=Path, required=True, help="status table (.csv)")
    refs.add_argument(
        "--out-provenance", type=Path, required=True, help="how the hull was made (.json)"
    )

    ehull = commands.add_parser("ehull", help="E_hull of the relaxed candidates")
    ehull.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates")
    ehull.add_argument("--references-relaxed", type=Path, required=True)
    ehull.add_argument(
        "--mp-entries",
        type=Path,
        default=None,
        help="Materials Project entries (monty JSON); empty list: skipped",
    )
    ehull.add_argument(
        "--consensus",
        nargs=3,
        action="append",
        default=[],
        metavar=("POTENTIAL", "RELAXED", "REFERENCES"),
        help="another potential's relaxed candidates and references",
    )
    ehull.add_argument(
        "--second-opinion",
        nargs=3,
        default=None,
        metavar=("POTENTIAL", "ENERGIES", "REFERENCES"),
        help="another potential's single-point energies of the relaxed candidates, and its"
        " own relaxed references: e_above_hull_<POTENTIAL> and agrees",
    )
    ehull.add_argument(
        "--e-hull-max",
        type=float,
        default=default("screen.e_hull.metastable"),
        help="a candidate passes within this E_hull, eV/atom",
    )
    ehull.add_argument(
        "--e-hull-synthesizable",
        type=float,
        default=default("screen.e_hull.synthesizable"),
        help="flagged synthesizable within this E_hull, eV/atom",
    )
    ehull.add_argument("--out", type=Path, required=True, help="hull.csv")
    ehull.add_argument(
        "--out-phases", type=Path, required=True, help="the references and which make the hull"
    )
    return parser


def run_references(args: argparse.Namespace, command: str) -> dict:
    started = time.monotonic()
    spec, settings = relax_options(args)
    references = read_records(args.references)
    training = read_records(args.dataset)
    potential = describe(spec)
    inputs = HullInputs.of(potential, references, training, args.per_formula, settings)
    fingerprint = inputs.fingerprint()
    shipped = find_shipped(args.shipped, fingerprint)
    if shipped is not None:
        return _copy_shipped(shipped, args)

    energies = single_point_records(training, spec, args.mode, args.batch_atoms)
    chosen = lowest_distinct_per_formula(training, energies, args.per_formula)
    single_point = dict(zip((r.id for r in training), energies))
    records = references + chosen
    results = relax_records(records, spec, settings, args.mode, args.batch_atoms)
    relaxed = [res.to_record(rec, potential) for rec, res in zip(records, results) if res.ok]
    write_records(relaxed, args.out)
    args.out_status.parent.mkdir(parents=True, exist_ok=True)
    status = pd.DataFrame([r.table_row(potential) for r in results], columns=RELAX_STATUS_COLUMNS)
    status.insert(1, "origin", [r.source for r in records])
    status["single_point_energy_per_atom"] = [single_point.get(r.id, math.nan) for r in records]
    status.to_csv(args.out_status, index=False)
    counts = summarize(results)
    HullProvenance(
        inputs=inputs,
        fingerprint=fingerprint,
        energy_scale=energy_scale(spec.name).description,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        wall_seconds=round(time.monotonic() - started, 1),
        device=spec.device,
        relaxed=counts["relaxed"],
        failed=counts["failed"],
    ).write(args.out_provenance)
    return {
        "references": len(records),
        **counts,
        "potential": potential,
        "relaxed_by_source": references_by_source(relaxed),
        "shipped": "",
    }


def _copy_shipped(shipped: Path, args: argparse.Namespace) -> dict:
    """Use a shipped hull: its records, status table and provenance, unchanged."""
    stem = shipped.name.removesuffix(RECORDS_SUFFIX)
    records = read_records(shipped)
    write_records(records, args.out)
    for suffix, out in ((".status.csv", args.out_status), (PROVENANCE_SUFFIX, args.out_provenance)):
        out.parent.mkdir(parents=True, exist_ok=True)
        source = shipped.with_name(stem + suffix)
        if not source.is_file():
            raise PipelineInputError(f"shipped hull {shipped} lacks its {source.name}")
        shutil.copyfile(source, out)
    return {"references": len(records), "shipped": str(shipped)}


HULL_COLUMNS = [
    "id",
    "formula",
    "model",
    "energy_per_atom",
    "e_above_hull",
    "decomposition",
    "potential",
    "energy_scale",
]


def references_by_source(records: list[CrystalRecord]) -> dict[str, list[str]]:
    """Formulas of the relaxed references per source (``ase``, ``cif``, ``reference``, ...)."""
    sources: dict[str, set[str]] = {}
    for record in records:
        sources.setdefault(record.source or "reference", set()).add(record.formula)
    return {source: sorted(formulas) for source, formulas in sorted(sources.items())}


def hull_table(
    candidates: list[CrystalRecord],
    references: list[CrystalRecord],
    e_hull_max: float,
    e_hull_synthesizable: float,
) -> pd.DataFrame:
    """E_hull of every candidate against the hull of ``references`` (NaN without an energy)."""
    diagram = phase_diagram(references)
    rows = []
    for record in candidates:
        energy = record.properties.get("energy_per_atom", math.nan)
        result = (
            e_above_hull(diagram, pd_entry(record))
            if math.isfinite(energy)
            else HullResult(math.nan, "")
        )
        potential = record.provenance.get("potential", "")
        rows.append(
            {
                "id": record.id,
                "formula": record.formula,
                "model": record.source,
                "energy_per_atom": energy,
                "e_above_hull": result.e_above_hull,
                "decomposition": result.decomposition,
                "potential": potential,
                "energy_scale": energy_scale(potential.split()[0]).description if potential else "",
            }
        )
    table = pd.DataFrame(rows, columns=HULL_COLUMNS)
    table["synthesizable"] = table["e_above_hull"] <= e_hull_synthesizable
    table["passes_hull"] = table["e_above_hull"] <= e_hull_max
    return table


def add_coverage(table: pd.DataFrame, references: list[CrystalRecord]) -> None:
    """Add ``missing_binaries`` and ``e_above_hull_is_lower_bound``, printing the gaps.

    A binary subsystem with a non-metal and no compound among the relaxed references leaves
    the hull too high there: E_hull of a candidate containing both elements is a lower bound.
    """
    formulas = [r.formula for r in references]
    # electropositive first, as formulas are written: Sr-O, not O-Sr
    elements = sorted({el for f in formulas for el in elements_of(f)}, key=lambda e: Element(e).X)
    missing = binaries_without_compounds(elements, formulas)
    if missing:
        print(
            "no compound among the hull references in the binary subsystem(s)"
            f" {', '.join(missing)}; E_hull is a lower bound where one exists (with a non-metal:"
            " missing_binaries in the table)"
        )
    flagged = with_nonmetal(missing)
    table["missing_binaries"] = [
        " ".join(uncovered_subsystems_of(f, flagged)) for f in table["formula"]
    ]
    table["e_above_hull_is_lower_bound"] = table["missing_binaries"] != ""


def add_consensus(
    table: pd.DataFrame, potential: str, relaxed: Path, references: Path, e_hull_max: float
) -> None:
    """Add ``e_above_hull_<potential>`` and narrow ``passes_hull`` to agreement."""
    other = hull_table(read_records(relaxed), read_records(references), e_hull_max, e_hull_max)
    by_id = dict(zip(other["id"], other["e_above_hull"]))
    column = f"e_above_hull_{potential}"
    table[column] = [by_id.get(i, math.nan) for i in table["id"]]
    # NaN (the other potential failed to relax it) never passes.
    table["passes_hull"] &= table[column].le(e_hull_max)


def add_second_opinion(
    table: pd.DataFrame,
    potential: str,
    energies: list[CrystalRecord],
    references: list[CrystalRecord],
    thresholds: tuple[float, ...],
) -> None:
    """Add ``e_above_hull_<potential>`` (another potential's energy at the same geometry,
    on its own hull) and ``agrees``: both E_hull on the same side of every threshold.

    The second opinion informs and never filters; a structure the second potential could
    not evaluate has NaN and does not agree.
    """
    other = hull_table(energies, references, max(thresholds), min(thresholds))
    by_id = dict(zip(other["id"], other["e_above_hull"]))
    column = f"e_above_hull_{potential}"
    table[column] = [by_id.get(i, math.nan) for i in table["id"]]
    agrees = table[column].notna() & table["e_above_hull"].notna()
    for threshold in thresholds:
        agrees &= table["e_above_hull"].le(threshold) == table[column].le(threshold)
    table["agrees"] = agrees


def run_ehull(args: argparse.Namespace) -> dict:
    candidates = read_records(args.relaxed)
    references = read_records(args.references_relaxed)
    table = hull_table(candidates, references, args.e_hull_max, args.e_hull_synthesizable)
    if args.mp_entries is not None:
        mp_entries = _load_mp_entries(args.mp_entries)
        if mp_entries:
            table["e_above_hull_mp"] = mp_e_above_hull(candidates, mp_entries)
            table["mp_corrections"] = [mp_corrections_note(potential_name(r)) for r in candidates]
    add_coverage(table, references)
    for potential, relaxed, references_path in args.consensus:
        add_consensus(table, potential, Path(relaxed), Path(references_path), args.e_hull_max)
    summary = {}
    if args.second_opinion is not None:
        potential, energies, references_path = args.second_opinion
        add_second_opinion(
            table,
            potential,
            read_records(energies),
            read_records(references_path),
            (args.e_hull_max, args.e_hull_synthesizable),
        )
        summary["agrees"] = int(table["agrees"].sum())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    args.out_phases.parent.mkdir(parents=True, exist_ok=True)
    phases = hull_phase_table(references)
    phases["energy_scale"] = [
        energy_scale(p.split()[0]).description if p else "" for p in phases["potential"]
    ]
    phases.to_csv(args.out_phases, index=False)
    return {
        "candidates": len(table),
        "passes_hull": int(table["passes_hull"].sum()),
        "synthesizable": int(table["synthesizable"].sum()),
        "hull_phases": int(phases["on_hull"].sum()),
        **summary,
    }


def _load_mp_entries(path: Path) -> list:
    if not path.is_file():
        raise PipelineInputError(f"Materials Project entries not found: {path}")
    try:
        entries = loadfn(path)
    except (ValueError, OSError, EOFError) as exc:  # JSONDecodeError is a ValueError
        raise PipelineInputError(f"{path}: not a monty JSON list of entries ({exc})") from None
    if not isinstance(entries, list):
        raise PipelineInputError(f"{path}: expected a JSON list of entries")
    return entries


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command == "references":
        summary = run_references(args, " ".join(["python -m pipeline.stages.hull", *argv]))
    else:
        summary = run_ehull(args)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
