"""CLI of the report stage: ``python -m pipeline.stages.report --help``.

Draws the screen's plots from its tables and the export's verdict (``passes`` in
candidates.csv; the thresholds drawn are those of its criteria.json) and, when the DFT check
ran (``--dft-check``), its verdict joined by id (ML against DFT E_hull, ``dft_agrees``); the
rule registers them with Snakemake's ``report()`` so ``snakemake --report report.html``
collects them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.chemsys import ChemicalSystem
from pipeline.dft.verdicts import join_verdicts, read_verdicts
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import read_table
from pipeline.records import read_records
from pipeline.report_plots import (
    plot_e_hull_histogram,
    plot_gap_vs_pourbaix,
    plot_lattice_distributions,
    plot_ml_vs_dft,
    plot_ternary_hull,
)
from pipeline.screen.criteria import Criteria
from pipeline.screen.thermochemistry import OXYGEN_REFERENCES
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.report",
        description="Plots of the screen: E_hull histogram, ternary hull with candidates,"
        " band gap vs Delta G_pbx, lattice parameters generated vs training.",
    )
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    parser.add_argument("--candidates", type=Path, required=True, help="candidates.csv of export")
    parser.add_argument(
        "--references", type=Path, required=True, help="relaxed hull references (.json.gz)"
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    parser.add_argument("--training", type=Path, required=True, help="training dataset (.json.gz)")
    parser.add_argument(
        "--criteria", type=Path, required=True, help="the export's criteria.json (thresholds)"
    )
    setting_argument(
        parser,
        "--oxygen-reference",
        "screen.oxygen_reference",
        choices=OXYGEN_REFERENCES,
        help="the hull's oxygen reference (the ternary plot's hull)",
    )
    parser.add_argument(
        "--dft-check",
        type=Path,
        help="the DFT check's dft_check.csv (dft.check): its verdict is drawn to --out-dft",
    )
    parser.add_argument("--out-e-hull", type=Path, required=True)
    parser.add_argument("--out-ternary", type=Path, required=True)
    parser.add_argument("--out-gap-pourbaix", type=Path, required=True)
    parser.add_argument("--out-lattice", type=Path, required=True)
    parser.add_argument("--out-dft", type=Path, help="ML vs DFT E_hull (with --dft-check)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.dft_check is None) != (args.out_dft is None):
        raise PipelineInputError("--dft-check and --out-dft go together")
    system = ChemicalSystem.parse(args.chemsys)
    criteria = Criteria.read(args.criteria)
    candidates = read_table(
        args.candidates,
        ["id", "model", "formula", "e_above_hull", "band_gap", "delta_g_pbx", "passes"],
    )
    plot_e_hull_histogram(
        candidates,
        {"synthesizable": criteria.synthesizable, "metastable": criteria.metastable},
        args.out_e_hull,
        models=candidates["model"],
    )
    plot_ternary_hull(
        read_records(args.references),
        candidates,
        system.elements,
        args.out_ternary,
        criteria.synthesizable,
        args.oxygen_reference,
    )
    plot_gap_vs_pourbaix(
        candidates,
        (criteria.band_gap_min, criteria.band_gap_max),
        criteria.max_delta_g_pbx,
        criteria.band_gap_level,
        args.out_gap_pourbaix,
    )
    if args.dft_check is not None:
        thresholds = {"synthesizable": criteria.synthesizable, "metastable": criteria.metastable}
        checked = join_verdicts(candidates, read_verdicts(args.dft_check))
        drawn = plot_ml_vs_dft(checked, thresholds, args.out_dft)
        print(
            f"DFT check: {len(drawn)} candidates with a DFT E_hull,"
            f" the ML verdict agrees on {int(drawn['dft_agrees'].sum())}"
        )
    ks = plot_lattice_distributions(
        [r.to_structure() for r in read_records(args.relaxed)],
        [r.to_structure() for r in read_records(args.training)],
        args.out_lattice,
    )
    print(
        "K-S statistics, relaxed candidates vs training:",
        ", ".join(f"{k} {v:.3f}" for k, v in ks.items()),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
