"""Quality of the trained generators after a pipeline run, beside Kim et al. (2020).

Reads a finished run's files (validation.csv, candidates.csv with the export's verdict, the
relaxed candidates, the training set), computes the figures of ``pipeline.quality`` as the
evaluate stage does and prints ONE JSON line: per
model the validity, uniqueness, novelty, E_hull fractions, S.U.N. rate and mean lattice K-S
statistic, Kim et al.'s figures for the same screen, and the evaluation's wall time.

    snakemake --cores 2 && python bench/quality.py
    python bench/quality.py --results /path/to/run/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.formats import read_table  # noqa: E402
from pipeline.quality import KIM2020_REFERENCE, evaluate_model  # noqa: E402
from pipeline.records import read_records  # noqa: E402

HEADLINE = (
    "n_generated",
    "validity",
    "uniqueness",
    "novelty",
    "fraction_e_hull_le_metastable",
    "fraction_e_hull_le_synthesizable",
    "sun_rate",
    "n_relaxed",
    "fraction_of_relaxed_e_hull_le_metastable",
    "fraction_of_relaxed_e_hull_le_synthesizable",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "results",
        help="the results/ folder of a finished run",
    )
    args = parser.parse_args()
    results = args.results
    relaxed_files = sorted(results.glob("screen/relax/*/relaxed.json.gz"))
    needed = [
        results / "screen/validation.csv",
        results / "candidates.csv",
        results / "data/dataset.json.gz",
    ]
    missing = [str(p) for p in needed if not p.is_file()] + (
        [] if relaxed_files else [str(results / "screen/relax/*/relaxed.json.gz")]
    )
    if missing:
        print(f"error: run the pipeline first; missing {missing}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    validation = read_table(results / "screen/validation.csv", ["model", "formula"])
    candidates = read_table(results / "candidates.csv", ["id", "model", "new"])
    relaxed = defaultdict(list)
    main_potential = str(candidates["potential"].iloc[0]) if len(candidates) else "chgnet"
    for record in read_records(results / f"screen/relax/{main_potential}/relaxed.json.gz"):
        relaxed[record.source].append(record.to_structure())
    training = [r.to_structure() for r in read_records(results / "data/dataset.json.gz")]
    figures = {}
    for model in sorted(set(validation["model"])):
        quality = evaluate_model(
            model,
            validation[validation["model"] == model],
            candidates[candidates["model"] == model],
            relaxed.get(model, []),
            training,
        )
        figures[model] = {key: getattr(quality, key) for key in HEADLINE}
        figures[model]["mean_lattice_ks"] = float(np.nanmean(list(quality.lattice_ks.values())))
    print(
        json.dumps(
            {
                "models": figures,
                "kim2020": {
                    k: {
                        "fraction_e_hull_le_0.2": v["fraction_e_hull_le_0.2"],
                        "fraction_e_hull_le_0.08": v["fraction_e_hull_le_0.08"],
                    }
                    for k, v in KIM2020_REFERENCE.items()
                    if isinstance(v, dict)
                },
                "training_structures": len(training),
                "wall_s": round(time.perf_counter() - start, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
