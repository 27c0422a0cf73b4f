"""Stage hull: energy above the convex hull, self-consistent with the potential.

``references``: relax the reference phases and a deterministic subset of the training
structures (``--training-structures``: one per reduced formula, smallest cells first)
with the potential; the result depends on the potential and these options only, so
the pipeline keeps it per potential and reuses it across runs.
``ehull``: build the hull (pymatgen ``PhaseDiagram``) of the relaxed references and give
every relaxed candidate its E_hull (eV/atom); with Materials Project entries also
E_hull on the MP hull (MP2020 corrections); with ``--consensus`` potentials also their
E_hull, a candidate passing only where all of them put it within ``--e-hull-max``.
Run ``python -m pipeline.stages.hull references --help`` or ``... ehull --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd
from monty.serialization import loadfn
from pymatgen.core import Element

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import RELAX_STATUS_COLUMNS
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.convex_hull import (
    e_above_hull,
    mp_e_above_hull,
    pd_entry,
    phase_diagram,
    select_hull_training,
)
from pipeline.screen.coverage import (
    binaries_without_compounds,
    elements_of,
    uncovered_subsystems_of,
    with_nonmetal,
)
from pipeline.screen.modes import add_relax_arguments, relax_options, relax_records
from pipeline.screen.potentials import describe
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
        "--training-structures",
        type=int,
        default=default("screen.hull_training_structures"),
        help="how many training structures join the hull (-1: one per reduced formula)",
    )
    add_relax_arguments(refs)
    refs.add_argument("--out", type=Path, required=True)
    refs.add_argument("--out-status", type=Path, required=True)

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
    return parser


def run_references(args: argparse.Namespace) -> dict:
    spec, settings = relax_options(args)
    limit = None if args.training_structures < 0 else args.training_structures
    records = read_records(args.references) + select_hull_training(
        read_records(args.dataset), limit
    )
    results = relax_records(records, spec, settings, args.mode, args.batch_atoms)
    potential = describe(spec)
    relaxed = [res.to_record(rec, potential) for rec, res in zip(records, results) if res.ok]
    write_records(relaxed, args.out)
    args.out_status.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([r.table_row(potential) for r in results], columns=RELAX_STATUS_COLUMNS).to_csv(
        args.out_status, index=False
    )
    return {
        "references": len(records),
        **summarize(results),
        "potential": potential,
        "relaxed_by_source": references_by_source(relaxed),
    }


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
    """E_hull of every candidate against the hull of ``references``."""
    diagram = phase_diagram(references)
    rows = []
    for record in candidates:
        result = e_above_hull(diagram, pd_entry(record))
        rows.append(
            {
                "id": record.id,
                "formula": record.formula,
                "model": record.source,
                "energy_per_atom": record.properties["energy_per_atom"],
                "e_above_hull": result.e_above_hull,
                "decomposition": result.decomposition,
                "potential": record.provenance.get("potential", ""),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "id",
            "formula",
            "model",
            "energy_per_atom",
            "e_above_hull",
            "decomposition",
            "potential",
        ],
    )
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


def run_ehull(args: argparse.Namespace) -> dict:
    candidates = read_records(args.relaxed)
    table = hull_table(
        candidates,
        read_records(args.references_relaxed),
        args.e_hull_max,
        args.e_hull_synthesizable,
    )
    if args.mp_entries is not None:
        mp_entries = _load_mp_entries(args.mp_entries)
        if mp_entries:
            table["e_above_hull_mp"] = mp_e_above_hull(candidates, mp_entries)
    add_coverage(table, read_records(args.references_relaxed))
    for potential, relaxed, references in args.consensus:
        add_consensus(table, potential, Path(relaxed), Path(references), args.e_hull_max)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    return {
        "candidates": len(table),
        "passes_hull": int(table["passes_hull"].sum()),
        "synthesizable": int(table["synthesizable"].sum()),
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
    args = build_parser().parse_args(argv)
    summary = run_references(args) if args.command == "references" else run_ehull(args)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
