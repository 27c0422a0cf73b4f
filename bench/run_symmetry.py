"""Symmetry and stability of each generator's samples in a finished workflow directory.

Per model of ``results/samples/<model>/samples.json.gz``: how many samples, the fraction not
P1 (spglib via :func:`pipeline.symmetry.space_group` at 0.1 and 0.01 Å), the same for its
converged relaxed structures (``results/screen/relax/<potential>/relaxed.json.gz``), and its relaxation and
E_hull rates (``relax_status.csv``, ``hull.csv``: within 0.08 and 0.2 eV/atom, per relaxation
tried). Prints one JSON line. Run after ``snakemake`` with several ``train.models``::

    python bench/run_symmetry.py --run /path/to/workdir
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from pipeline.records import read_records
from pipeline.symmetry import LOOSE_SYMPREC, STRICT_SYMPREC, space_group


def non_p1(structures: list, symprec: float) -> float | None:
    if not structures:
        return None
    return round(sum(not space_group(s, symprec).is_p1 for s in structures) / len(structures), 3)


def summary(run: Path, potential: str = "chgnet") -> dict[str, dict[str, object]]:
    screen = run / "results" / "screen"
    model_of = pd.read_csv(screen / "validation.csv").set_index("id")["model"].to_dict()
    relax = screen / "relax" / potential
    status = pd.read_csv(relax / "relax_status.csv")
    status["model"] = status["id"].map(model_of)
    hull = pd.read_csv(screen / "hull.csv")
    relaxed = read_records(relax / "relaxed.json.gz")
    out: dict[str, dict[str, object]] = {}
    for samples_path in sorted((run / "results" / "samples").glob("*/samples.json.gz")):
        model = samples_path.parent.name
        raw = [r.to_structure() for r in read_records(samples_path)]
        mine = [r.to_structure() for r in relaxed if model_of.get(r.id) == model]
        tried = status[status["model"] == model]
        e_hull = hull.loc[hull["model"] == model, "e_above_hull"]
        out[model] = {
            "samples": len(raw),
            "non_p1_raw": non_p1(raw, LOOSE_SYMPREC),
            "non_p1_raw_strict": non_p1(raw, STRICT_SYMPREC),
            "relax_tried": len(tried),
            "relaxed": len(mine),
            "non_p1_relaxed": non_p1(mine, LOOSE_SYMPREC),
            "non_p1_relaxed_strict": non_p1(mine, STRICT_SYMPREC),
            "within_0.08_per_tried": round(float((e_hull <= 0.08).sum() / max(len(tried), 1)), 3),
            "within_0.2_per_tried": round(float((e_hull <= 0.2).sum() / max(len(tried), 1)), 3),
            "best_e_hull": round(float(e_hull.min()), 4) if len(e_hull) else None,
            "median_e_hull": round(float(e_hull.median()), 4) if len(e_hull) else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the workflow directory")
    args = parser.parse_args(argv)
    print(json.dumps({"bench": "run_symmetry", "run": str(args.run), "models": summary(args.run)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
