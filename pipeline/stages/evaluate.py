"""CLI of the quality evaluation: ``python -m pipeline.stages.evaluate --help``.

Validity, uniqueness, novelty, stability and lattice statistics of each generator's samples
(``pipeline.quality``), written to ``metrics.json`` beside Kim et al.'s (2020) figures for the
same screen, and as an HTML table for the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.formats import read_table
from pipeline.quality import (
    KIM2020_REFERENCE,
    METASTABLE_E_HULL,
    MIN_DISTANCE,
    SYNTHESIZABLE_E_HULL,
    evaluate_model,
)
from pipeline.records import read_records
from pipeline.screen.dedup import prepare

TABLE_COLUMNS = {
    "n_generated": "generated",
    "validity": "valid (CDVAE)",
    "uniqueness": "unique",
    "novelty": "unique & novel",
    "fraction_e_hull_le_metastable": "E_hull <= 0.2",
    "fraction_e_hull_le_synthesizable": "E_hull <= 0.08",
    "sun_rate": "S.U.N.",
    "n_relaxed": "relaxed",
    "fraction_of_relaxed_e_hull_le_metastable": "E_hull <= 0.2 (of relaxed)",
    "fraction_of_relaxed_e_hull_le_synthesizable": "E_hull <= 0.08 (of relaxed)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.evaluate",
        description="Quality metrics of each generator's samples after relaxation.",
    )
    parser.add_argument(
        "--samples",
        type=Path,
        nargs="+",
        required=True,
        help="samples of each model (.json.gz; the model is each record's source)",
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    parser.add_argument("--hull", type=Path, required=True, help="hull table with e_above_hull")
    parser.add_argument("--training", type=Path, required=True, help="training dataset (.json.gz)")
    parser.add_argument(
        "--metastable",
        type=float,
        default=METASTABLE_E_HULL,
        help="E_hull threshold of 'metastable', eV/atom",
    )
    parser.add_argument(
        "--synthesizable",
        type=float,
        default=SYNTHESIZABLE_E_HULL,
        help="E_hull threshold of 'synthesizable' (and of S.U.N.), eV/atom",
    )
    parser.add_argument("--out", type=Path, required=True, help="metrics (.json)")
    parser.add_argument("--out-table", type=Path, required=True, help="metrics table (.html)")
    return parser


def metrics_table(models: dict[str, dict]) -> pd.DataFrame:
    """The headline figures of each model and of Kim et al. (2020), one row each."""
    rows = [
        {"model": name, **{label: m[key] for key, label in TABLE_COLUMNS.items()}}
        for name, m in models.items()
    ]
    for name, ref in KIM2020_REFERENCE.items():
        if isinstance(ref, dict):
            rows.append(
                {
                    "model": f"Kim 2020 ({name.replace('_', ' ')})",
                    "generated": ref["structures"],
                    "E_hull <= 0.2": ref["fraction_e_hull_le_0.2"],
                    "E_hull <= 0.08": ref["fraction_e_hull_le_0.08"],
                    # They relaxed every structure generated (DFT).
                    "relaxed": ref["structures"],
                    "E_hull <= 0.2 (of relaxed)": ref["fraction_e_hull_le_0.2"],
                    "E_hull <= 0.08 (of relaxed)": ref["fraction_e_hull_le_0.08"],
                }
            )
    return pd.DataFrame(rows, columns=["model", *TABLE_COLUMNS.values()])


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # results/samples/<model>/samples.json.gz: a model that kept nothing is still reported,
    # with zero samples and undefined rates.
    samples_by_model = {path.parent.name: read_records(path) for path in args.samples}
    if not samples_by_model:
        raise PipelineInputError("no samples files given")
    relaxed_by_model = defaultdict(list)
    for record in read_records(args.relaxed):
        relaxed_by_model[record.source].append(record)
    hull = read_table(args.hull, ["id", "e_above_hull"])
    e_above_hull = dict(zip(hull["id"], hull["e_above_hull"].astype(float)))
    training = [r.to_structure() for r in read_records(args.training)]
    training_prepared = [
        prepare(t) for t in tqdm(training, desc="training cells", unit="structure")
    ]
    models = {}
    for model in tqdm(sorted(samples_by_model), desc="evaluate", unit="model"):
        quality = evaluate_model(
            model,
            samples_by_model[model],
            relaxed_by_model.get(model, []),
            e_above_hull,
            training,
            training_prepared,
            metastable=args.metastable,
            synthesizable=args.synthesizable,
        )
        models[model] = asdict(quality)
    metrics = {
        "models": models,
        "thresholds": {
            "min_distance_angstrom": MIN_DISTANCE,
            "metastable_e_hull": args.metastable,
            "synthesizable_e_hull": args.synthesizable,
        },
        "training_structures": len(training),
        "kim2020_reference": KIM2020_REFERENCE,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(metrics, indent=1, allow_nan=True))
    args.out_table.parent.mkdir(parents=True, exist_ok=True)
    args.out_table.write_text(
        metrics_table(models).to_html(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-")
    )
    for name, m in models.items():
        print(
            f"{name}: {m['n_generated']} generated, validity {m['validity']:.3f},"
            f" E_hull<=0.08 {m['fraction_e_hull_le_synthesizable']:.3f}, S.U.N. {m['sun_rate']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
