"""CLI of the data stage: ``python -m pipeline.stages.data --help``."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from monty.serialization import dumpfn
from pymatgen.core import Composition
from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem
from pipeline.cli import add_system_arguments, system_and_caps
from pipeline.datasets.bundled import load_bundled
from pipeline.datasets.elements import elemental_reference
from pipeline.datasets.filtering import EXCLUDED, Rejection, hold_out, split_usable
from pipeline.datasets.materials_project import THERMO_TYPES
from pipeline.datasets.summary import composition_summary, plot_composition_distribution
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import CrystalRecord, make_ids_unique, write_records
from pipeline.screen.coverage import binaries_without_compounds
from pipeline.settings import setting_argument
from pipeline.symmetry import summarize_table, symmetry_table

SOURCES = ("bundled", "mp", "cif_dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.data",
        description="Load crystals from a source, keep the usable ones, write the canonical"
        " dataset, the hull reference phases, a per-composition summary and a plot.",
    )
    setting_argument(parser, "--source", "data.source", choices=SOURCES)
    add_system_arguments(parser)
    setting_argument(
        parser,
        "--bundled-dataset",
        "data.bundled.dataset",
        type=Path,
        help="the bundled training set (relative to the working directory)",
    )
    setting_argument(
        parser,
        "--bundled-references",
        "data.bundled.references",
        type=Path,
        help="the bundled hull reference phases (relative to the working directory)",
    )
    parser.add_argument("--cif-dir", type=Path, help="folder of CIFs (source cif_dir)")
    setting_argument(
        parser,
        "--mp-require-all-elements",
        "data.mp.require_all_elements",
        action=argparse.BooleanOptionalAction,
        help="train only on structures with every element",
    )
    setting_argument(
        parser,
        "--mp-reference-ehull",
        "data.mp.reference_e_above_hull",
        type=float,
        help="MP phases within this E_hull (eV/atom) become hull references",
    )
    setting_argument(
        parser,
        "--mp-thermo-type",
        "data.mp.thermo_type",
        choices=THERMO_TYPES,
        help="the MP hull the entries come from: GGA_GGA+U (MP2020-corrected) or R2SCAN",
    )
    setting_argument(
        parser,
        "--exclude-formulas",
        "data.exclude_formulas",
        nargs="*",
        metavar="FORMULA",
        help="leave every structure of these reduced formulas out (a hold-out)",
    )
    parser.add_argument("--out-dataset", type=Path, required=True)
    parser.add_argument(
        "--out-known",
        type=Path,
        help="every usable structure, held-out formulas included: the system's known phases,"
        " which the complete hull is built from",
    )
    parser.add_argument("--out-references", type=Path, required=True)
    parser.add_argument("--out-summary", type=Path, required=True)
    parser.add_argument("--out-rejected", type=Path, required=True)
    parser.add_argument("--out-plot", type=Path, required=True)
    parser.add_argument(
        "--out-symmetry",
        type=Path,
        help="space groups (symprec 0.1 and 0.01 Å) and crystal system of every usable structure",
    )
    parser.add_argument(
        "--out-mp-entries",
        type=Path,
        required=True,
        help="MP2020-compatible Materials Project entries of the system"
        " (an empty list unless the source is mp)",
    )
    return parser


def load_source(
    args: argparse.Namespace, system: ChemicalSystem
) -> tuple[list[CrystalRecord], list[CrystalRecord], list[Rejection], list]:
    """Records, reference phases, the source's own rejections and its MP entries."""
    if args.source == "bundled":
        records, references = load_bundled(args.bundled_dataset, args.bundled_references)
        return records, references, [], []
    if args.source == "cif_dir":
        from pipeline.datasets.cif_dir import load_cif_dir

        if args.cif_dir is None:
            raise PipelineInputError("data.source is 'cif_dir' but no data.cif_dir is given")
        records, rejected = load_cif_dir(args.cif_dir)
        # User CIFs carry no energies: the bundled textbook phases serve as hull references
        # when they belong to the system.
        _, references = load_bundled(args.bundled_dataset, args.bundled_references)
        references = [r for r in references if not system.foreign_elements(r.species)]
        return records, references, rejected, []
    from pipeline.datasets import materials_project as mp

    query = mp.MaterialsProjectQuery(
        system, args.mp_require_all_elements, args.mp_reference_ehull, args.mp_thermo_type
    )
    docs, entries = mp.fetch(query, mp.api_key_from_env())
    records, references = mp.docs_to_records(docs, query)
    return records, references, [], entries


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = ChemicalSystem.parse(args.chemsys)
    records, references, rejected, mp_entries = load_source(args, system)
    _, caps = system_and_caps(args, (r.species for r in records))
    known, more_rejected = split_usable(
        records, system, caps, require_all_elements=args.source != "cif_dir"
    )
    # Ids are made unique over the known structures, so a hold-out leaves the others' ids
    # (and the hull computed from them) as they are without it.
    renamed = make_ids_unique(known)
    usable, held_out = hold_out(known, args.exclude_formulas)
    rejected += more_rejected + held_out
    pd.DataFrame([asdict(r) for r in rejected], columns=["id", "source", "reason"]).to_csv(
        _parent(args.out_rejected), index=False
    )
    if not usable:
        raise PipelineInputError(
            f"no usable structures from source {args.source!r} for {system}"
            f" ({len(rejected)} rejected, see {args.out_rejected})"
        )
    references += build_missing_elements(system, references)
    for line in reference_report(system, references, usable):
        print(line)
    write_records(usable, args.out_dataset)
    if args.out_known is not None:
        write_records(known, args.out_known)
    write_records(references, args.out_references)
    dumpfn(mp_entries, _parent(args.out_mp_entries))
    summary = composition_summary(usable, system)
    summary.to_csv(_parent(args.out_summary), index=False)
    plot_composition_distribution(summary, system, args.out_plot)
    symmetry = None
    if args.out_symmetry is not None:
        table = symmetry_table(r.to_structure() for r in tqdm(usable, desc="space groups"))
        table.insert(0, "id", [r.id for r in usable])
        table.to_csv(_parent(args.out_symmetry), index=False)
        symmetry = asdict(summarize_table(table))
    print(
        json.dumps(
            {
                "source": args.source,
                "chemsys": str(system),
                "usable": len(usable),
                "rejected": len(rejected),
                "excluded": dict(
                    Counter(
                        r.reason.split(": ")[-1] for r in rejected if r.reason.startswith(EXCLUDED)
                    )
                ),
                "compositions": len(summary),
                "references": len(references),
                "renamed_ids": renamed,
                "caps": caps,
                "symmetry": symmetry,
            }
        )
    )
    return 0


def build_missing_elements(
    system: ChemicalSystem, references: list[CrystalRecord]
) -> list[CrystalRecord]:
    """ASE-built structures of the elements of ``system`` that ``references`` have no
    elemental phase of (:mod:`pipeline.datasets.elements`)."""
    present = {r.species[0] for r in references if len(set(r.species)) == 1}
    return [elemental_reference(el).to_record() for el in system.elements if el not in present]


def reference_report(
    system: ChemicalSystem, references: list[CrystalRecord], usable: list[CrystalRecord]
) -> list[str]:
    """Lines for the log: where the hull's references come from and what is missing."""
    by_source: dict[str, list[str]] = {}
    for record in references:
        label = record.formula if record.source != "ase" else record.id
        if record.provenance.get("approximate"):
            label += " (approximate: ASE has no buildable reference state; add a CIF of it)"
        by_source.setdefault(record.source or "reference", []).append(label)
    lines = [
        f"hull references from {source}: {', '.join(sorted(labels))}"
        for source, labels in sorted(by_source.items())
    ]
    own = sorted({Composition(r.formula).reduced_formula for r in usable})
    lines.append(
        f"from the data set, each formula's lowest-energy relaxed structure can join the hull"
        f" ({len(own)} formulas): {', '.join(own)}"
    )
    missing = binaries_without_compounds(
        system.elements, [r.formula for r in references] + [r.formula for r in usable]
    )
    if missing:
        lines.append(
            f"no compound at all in the binary subsystem(s) {', '.join(missing)}: the E_hull of"
            " candidates containing them is a lower bound (add such structures to the data)"
        )
    return lines


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
