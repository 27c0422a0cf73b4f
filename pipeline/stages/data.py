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

from pipeline.chemsys import ChemicalSystem
from pipeline.cli import add_system_arguments, system_and_caps
from pipeline.datasets.bundled import load_bundled
from pipeline.datasets.filtering import EXCLUDED, Rejection, split_usable
from pipeline.datasets.summary import composition_summary, plot_composition_distribution
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import CrystalRecord, make_ids_unique, write_records

SOURCES = ("bundled", "mp", "cif_dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.data",
        description="Load crystals from a source, keep the usable ones, write the canonical"
        " dataset, the hull reference phases, a per-composition summary and a plot.",
    )
    parser.add_argument("--source", choices=SOURCES, default="bundled")
    add_system_arguments(parser)
    parser.add_argument(
        "--bundled-dataset", type=Path, default=Path("resources/datasets/mgmno_kim2020.json.gz")
    )
    parser.add_argument(
        "--bundled-references",
        type=Path,
        default=Path("resources/datasets/mgmno_reference_phases.json"),
    )
    parser.add_argument("--cif-dir", type=Path, help="folder of CIFs (source cif_dir)")
    parser.add_argument(
        "--mp-require-all-elements",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train only on structures with every element",
    )
    parser.add_argument(
        "--mp-reference-ehull",
        type=float,
        default=0.0,
        help="MP phases within this E_hull (eV/atom) become hull references",
    )
    parser.add_argument(
        "--exclude-formulas",
        nargs="*",
        default=[],
        metavar="FORMULA",
        help="leave every structure of these reduced formulas out (a hold-out)",
    )
    parser.add_argument("--out-dataset", type=Path, required=True)
    parser.add_argument("--out-references", type=Path, required=True)
    parser.add_argument("--out-summary", type=Path, required=True)
    parser.add_argument("--out-rejected", type=Path, required=True)
    parser.add_argument("--out-plot", type=Path, required=True)
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

    query = mp.MaterialsProjectQuery(system, args.mp_require_all_elements, args.mp_reference_ehull)
    docs, entries = mp.fetch(query, mp.api_key_from_env())
    records, references = mp.docs_to_records(docs, query)
    return records, references, [], entries


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    system = ChemicalSystem.parse(args.chemsys)
    records, references, rejected, mp_entries = load_source(args, system)
    _, caps = system_and_caps(args, (r.species for r in records))
    usable, more_rejected = split_usable(
        records,
        system,
        caps,
        require_all_elements=args.source != "cif_dir",
        exclude_formulas=args.exclude_formulas,
    )
    rejected += more_rejected
    pd.DataFrame([asdict(r) for r in rejected], columns=["id", "source", "reason"]).to_csv(
        _parent(args.out_rejected), index=False
    )
    if not usable:
        raise PipelineInputError(
            f"no usable structures from source {args.source!r} for {system}"
            f" ({len(rejected)} rejected, see {args.out_rejected})"
        )
    renamed = make_ids_unique(usable)
    write_records(usable, args.out_dataset)
    write_records(references, args.out_references)
    dumpfn(mp_entries, _parent(args.out_mp_entries))
    summary = composition_summary(usable, system)
    summary.to_csv(_parent(args.out_summary), index=False)
    plot_composition_distribution(summary, system, args.out_plot)
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
            }
        )
    )
    return 0


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
