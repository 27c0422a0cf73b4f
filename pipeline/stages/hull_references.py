"""CLI of the hull's references: ``python -m pipeline.stages.hull_references --help``.

The complete hull of the known structures with one potential: the reference phases and, per
reduced formula, the ``--per-formula`` lowest structures by single-point energy, all relaxed
(:mod:`pipeline.screen.reference_hull`). The result depends on the inputs, the potential and
the relaxation settings only; a hull with the same fingerprint found in ``--shipped`` (e.g.
``resources/hull``) is used instead of recomputing.
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

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import RELAX_STATUS_COLUMNS
from pipeline.records import read_records, write_records
from pipeline.screen.hull_table import references_by_source
from pipeline.screen.modes import (
    add_relax_arguments,
    relax_options,
    relax_records,
    single_point_records,
)
from pipeline.screen.potential_names import energy_scale
from pipeline.screen.potentials import describe
from pipeline.screen.reference_hull import (
    PROVENANCE_SUFFIX,
    RECORDS_SUFFIX,
    HullInputs,
    HullProvenance,
    find_shipped,
    lowest_distinct_per_formula,
)
from pipeline.screen.relaxation import summarize


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.hull_references",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--references", type=Path, required=True, help="reference phases")
    parser.add_argument(
        "--dataset", type=Path, required=True, help="known structures (held-out ones included)"
    )
    parser.add_argument(
        "--per-formula",
        type=int,
        required=True,
        help="distinct structures relaxed per reduced formula, lowest single point first",
    )
    parser.add_argument(
        "--shipped",
        type=Path,
        default=None,
        help="folder of relaxed hulls (<name>.json.gz + .provenance.json) to reuse on a match",
    )
    add_relax_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="relaxed references (.json.gz)")
    parser.add_argument("--out-status", type=Path, required=True, help="status table (.csv)")
    parser.add_argument(
        "--out-provenance", type=Path, required=True, help="how the hull was made (.json)"
    )
    return parser


def relax_hull(args: argparse.Namespace, command: str) -> dict:
    """Relax the hull's structures, or copy a shipped hull with the same fingerprint."""
    started = time.monotonic()
    spec, settings = relax_options(args)
    references = read_records(args.references)
    known = read_records(args.dataset)
    potential = describe(spec)
    inputs = HullInputs.of(potential, references, known, args.per_formula, settings)
    fingerprint = inputs.fingerprint()
    shipped = find_shipped(args.shipped, fingerprint)
    if shipped is not None:
        return copy_shipped(shipped, args)

    energies = single_point_records(known, spec, args.mode, args.batch_atoms)
    chosen = lowest_distinct_per_formula(known, energies, args.per_formula)
    single_point = dict(zip((r.id for r in known), energies))
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


def copy_shipped(shipped: Path, args: argparse.Namespace) -> dict:
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


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = " ".join(["python -m pipeline.stages.hull_references", *argv])
    print(json.dumps(relax_hull(args, command)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
