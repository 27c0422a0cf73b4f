"""Quality of the trained generators after a pipeline run, beside Kim et al. (2020).

Reads a finished run's files (every generator's samples, the relaxed candidates, the hull table,
the training set), computes the figures of ``pipeline.quality`` and prints ONE JSON line: per
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
from pipeline.screen.dedup import prepare  # noqa: E402

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
    sample_files = sorted(results.glob("samples/*/samples.json.gz"))
    needed = [
        results / "screen/relax/chgnet/relaxed.json.gz",
        results / "screen/hull.csv",
        results / "data/dataset.json.gz",
    ]
    missing = [str(p) for p in needed if not p.is_file()] + (
        [] if sample_files else [str(results / "samples/*")]
    )
    if missing:
        print(f"error: run the pipeline first; missing {missing}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    samples, relaxed = defaultdict(list), defaultdict(list)
    for path in sample_files:
        for record in read_records(path):
            samples[record.source or path.parent.name].append(record)
    for record in read_records(results / "screen/relax/chgnet/relaxed.json.gz"):
        relaxed[record.source].append(record)
    hull = read_table(results / "screen/hull.csv", ["id", "e_above_hull"])
    e_above_hull = dict(zip(hull["id"], hull["e_above_hull"].astype(float)))
    training = [r.to_structure() for r in read_records(results / "data/dataset.json.gz")]
    training_prepared = [prepare(t) for t in training]
    figures = {}
    for model in sorted(samples):
        quality = evaluate_model(
            model, samples[model], relaxed.get(model, []), e_above_hull, training, training_prepared
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
