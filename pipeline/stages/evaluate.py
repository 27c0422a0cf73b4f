"""CLI of the quality evaluation: ``python -m pipeline.stages.evaluate --help``.

Validity, uniqueness, novelty, stability and lattice statistics of each generator's samples
(``pipeline.quality``), counted from the screen's own tables (validation.csv for every sample,
candidates.csv with the export's verdict for every relaxed one; the thresholds from the
export's criteria.json), written to ``metrics.json`` beside Kim et al.'s (2020) figures for
the same screen, and as an HTML table for the report.
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
from pipeline.formats import as_flag, read_table, second_opinion_column
from pipeline.quality import KIM2020_REFERENCE, KIM2020_THRESHOLDS, evaluate_model
from pipeline.records import read_records
from pipeline.report_plots import plot_crystal_systems
from pipeline.screen.criteria import Criteria
from pipeline.symmetry import SYMMETRY_COLUMNS, SymmetrySummary, summarize_table, symmetry_table


def table_columns(metastable: float, synthesizable: float) -> dict[str, str]:
    """Metric key -> column label of the metrics table, thresholds as configured."""
    meta, synth = f"E_hull <= {metastable:g}", f"E_hull <= {synthesizable:g}"
    return {
        "n_generated": "generated",
        "validity": "valid (CDVAE)",
        "uniqueness": "unique",
        "novelty": "unique & novel",
        "fraction_e_hull_le_metastable": f"{meta} (of generated)",
        "fraction_e_hull_le_synthesizable": f"{synth} (of generated)",
        "sun_rate": "S.U.N.",
        "count_new_e_hull_le_synthesizable_verdict_unstable": "of which verdict not robust",
        "n_relaxed": "relaxed",
        "fraction_of_relaxed_e_hull_le_metastable": f"{meta} (of relaxed)",
        "fraction_of_relaxed_e_hull_le_synthesizable": f"{synth} (of relaxed)",
        "n_rediscovered": "rediscovered",
        "n_new": "new unique relaxed",
        "fraction_new_e_hull_le_metastable": f"{meta} (of new, as Kim 2020)",
        "fraction_new_e_hull_le_synthesizable": f"{synth} (of new, as Kim 2020)",
        "non_p1_fraction_raw": "non-P1 (raw)",
        "non_p1_fraction_relaxed": "non-P1 (relaxed)",
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
    parser.add_argument(
        "--validation", type=Path, required=True, help="validation.csv: every sample's checks"
    )
    parser.add_argument("--relaxed", type=Path, required=True, help="relaxed candidates (.json.gz)")
    parser.add_argument(
        "--candidates", type=Path, required=True, help="candidates.csv, with the verdict"
    )
    parser.add_argument(
        "--criteria", type=Path, required=True, help="the export's criteria.json (thresholds)"
    )
    parser.add_argument("--training", type=Path, required=True, help="training dataset (.json.gz)")
    parser.add_argument(
        "--training-symmetry",
        type=Path,
        help="space groups of the training structures (the data stage's symmetry.csv);"
        " computed from --training when not given",
    )
    parser.add_argument("--out", type=Path, required=True, help="metrics (.json)")
    parser.add_argument("--out-table", type=Path, required=True, help="metrics table (.html)")
    parser.add_argument(
        "--out-symmetry", type=Path, help="space group of every raw and relaxed sample (.csv)"
    )
    parser.add_argument(
        "--out-plot",
        type=Path,
        help="crystal systems of training, raw and relaxed structures per model (.png)",
    )
    return parser


def symmetry_of(records: list, model: str, stage: str) -> pd.DataFrame:
    """The space-group columns of ``records`` with their id, model and stage (raw/relaxed)."""
    table = symmetry_table(r.to_structure() for r in records)
    table.insert(0, "stage", stage)
    table.insert(0, "model", model)
    table.insert(0, "id", [r.id for r in records])
    return table


def metrics_table(
    models: dict[str, dict],
    metastable: float,
    synthesizable: float,
    training: SymmetrySummary | None = None,
) -> pd.DataFrame:
    """The headline figures of each model and of Kim et al. (2020), one row each.

    Kim et al. relaxed every generated structure with DFT and counted the new ones; their
    rates stand in the "of new" columns, and their generated counts as both denominators.
    Their thresholds are 0.2 and 0.08 eV/atom: with other thresholds their row is left out.
    """
    columns = table_columns(metastable, synthesizable)
    rows = [
        {"model": name, **{label: m.get(key) for key, label in columns.items()}}
        for name, m in models.items()
    ]
    if training is not None:
        rows.append(
            {
                "model": "training set",
                columns["n_generated"]: training.n_structures,
                columns["non_p1_fraction_raw"]: training.non_p1_fraction,
            }
        )
    if (metastable, synthesizable) == KIM2020_THRESHOLDS:
        for name, ref in KIM2020_REFERENCE.items():
            if isinstance(ref, dict):
                rows.append(
                    {
                        "model": f"Kim 2020 ({name.replace('_', ' ')})",
                        columns["n_generated"]: ref["structures"],
                        columns["n_relaxed"]: ref["structures"],
                        columns["fraction_new_e_hull_le_metastable"]: ref["fraction_e_hull_le_0.2"],
                        columns["fraction_new_e_hull_le_synthesizable"]: ref[
                            "fraction_e_hull_le_0.08"
                        ],
                    }
                )
    return pd.DataFrame(rows, columns=["model", *columns.values()])


def second_opinion_summary(candidates: pd.DataFrame, criteria: Criteria) -> dict:
    """How many relaxed structures the second opinion evaluated, and the fraction of them
    the verdict says it agrees on (``agrees`` in candidates.csv)."""
    if not criteria.second_opinion:
        return {}
    evaluated = candidates[second_opinion_column(criteria.second_opinion)].notna()
    agrees = as_flag(candidates["agrees"])
    return {
        "potential": criteria.second_opinion,
        "evaluated": int(evaluated.sum()),
        "agrees": int(agrees.sum()),
        "fraction_agrees": float(agrees.sum() / evaluated.sum()) if evaluated.any() else None,
    }


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
    validation = read_table(
        args.validation, ["id", "model", "formula", "structurally_valid", "new"]
    )
    candidates = read_table(
        args.candidates,
        ["id", "model", "metastable", "synthesizable", "new", "known_as", "duplicate_of"],
    )
    criteria = Criteria.read(args.criteria)
    training = [r.to_structure() for r in read_records(args.training)]
    if args.training_symmetry is not None:
        training_symmetry = read_table(args.training_symmetry, ["id", *SYMMETRY_COLUMNS])
    else:
        training_symmetry = symmetry_table(training)
    symmetry = {"training": summarize_table(training_symmetry)}
    symmetry_tables = []
    models = {}
    for model in tqdm(sorted(samples_by_model), desc="evaluate", unit="model"):
        relaxed = relaxed_by_model.get(model, [])
        quality = evaluate_model(
            model,
            validation[validation["model"] == model],
            candidates[candidates["model"] == model],
            [r.to_structure() for r in relaxed],
            training,
        )
        models[model] = asdict(quality)
        for stage, records in (("raw", samples_by_model[model]), ("relaxed", relaxed)):
            table = symmetry_of(records, model, stage)
            symmetry_tables.append(table)
            symmetry[f"{model} {stage}"] = summarize_table(table)
            models[model][f"symmetry_{stage}"] = asdict(symmetry[f"{model} {stage}"])
            models[model][f"non_p1_fraction_{stage}"] = symmetry[f"{model} {stage}"].non_p1_fraction
    metrics = {
        "models": models,
        "second_opinion": second_opinion_summary(candidates, criteria),
        "criteria": asdict(criteria),
        "training_structures": len(training),
        # spglib at symprec 0.1 Å (non_p1_fraction_strict: 0.01 Å), pipeline.symmetry
        "training_symmetry": asdict(symmetry["training"]),
        "kim2020_reference": KIM2020_REFERENCE,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(metrics, indent=1, allow_nan=True))
    args.out_table.parent.mkdir(parents=True, exist_ok=True)
    args.out_table.write_text(
        metrics_table(
            models, criteria.metastable, criteria.synthesizable, symmetry["training"]
        ).to_html(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-")
    )
    if args.out_symmetry is not None:
        args.out_symmetry.parent.mkdir(parents=True, exist_ok=True)
        pd.concat(symmetry_tables, ignore_index=True).to_csv(args.out_symmetry, index=False)
    if args.out_plot is not None:
        plot_crystal_systems(symmetry, args.out_plot)
    if metrics["second_opinion"]:
        print(f"second opinion: {metrics['second_opinion']}")
    for name, m in models.items():
        print(
            f"{name}: {m['n_generated']} generated, validity {m['validity']:.3f},"
            f" {m['n_new']} new unique relaxed, E_hull<={criteria.synthesizable:g} of new"
            f" {m['fraction_new_e_hull_le_synthesizable']:.3f}, S.U.N. {m['sun_rate']:.3f},"
            f" non-P1 raw {m['non_p1_fraction_raw']:.3f}, relaxed {m['non_p1_fraction_relaxed']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
