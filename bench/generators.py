"""Every generator of the pipeline on the same data and step budget: quality and speed.

    python bench/generators.py [--steps 200] [--per-composition 32] [--targets 2]
                               [--max-draws 64] [--models ccgan cvae graph_diffusion ...]

Runs the real workflow (``snakemake``) in a temporary folder on the bundled Mg-Mn-O data:
for each model, ``train`` with ``--steps`` optimiser steps (the CVAE and the graph diffusion:
``--steps`` for each of their two phases), then ``sample`` for the same ``--targets`` known
compositions (the unconditional CrysTens models: at most ``--max-draws`` tensors, kept when
they decode to a target's composition; ``asked``/``decoded``/``kept`` come from
``sample_report.csv``). Scores the raw (unrelaxed) samples with :mod:`pipeline.quality` from
the screen's validate stage (``results/screen/validation.csv``, the same checks for every
generator): CDVAE structural and SMACT compositional validity, uniqueness and novelty
(duplicates within the generator, and the known-structure index), fractions of the samples
handed over. Prints one JSON line, one entry per model, with the
training and sampling wall times and samples kept per second.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.formats import read_table  # noqa: E402
from pipeline.models.registry import MODELS  # noqa: E402
from pipeline.quality import evaluate_model  # noqa: E402
from pipeline.records import read_records  # noqa: E402

# Models trained in two phases get the budget for each.
STEP_KEYS = {
    "cvae": ("autoencoder_steps", "cvae_steps"),
    "graph_diffusion": ("steps", "guide_steps"),
}
# Unconditional models draw until each target has its structures or ``max_draws`` are drawn
# (the DDPM: about 3 s per draw on one CPU thread, so the config's 2,000 take hours).
# Nothing is relaxed here: no candidates, no lattice statistics.
NOTHING_RELAXED = pd.DataFrame(
    columns=["id", "model", "metastable", "synthesizable", "new", "known_as", "duplicate_of"]
)
UNCONDITIONAL = ("crystens_ddpm", "crystens_gan", "crystens_wgan")


def budget_config(
    models: list[str], steps: int, per_composition: int, targets: int, max_draws: int
) -> dict:
    """The overrides of ``config.yaml`` that give every model the same budget."""
    return {
        "augment": {"per_composition": 10},
        "train": {
            "models": models,
            "device": "auto",
            "checkpoint_every": max(steps, 1),
            **{m: {key: steps for key in STEP_KEYS.get(m, ("steps",))} for m in models},
        },
        "sample": {
            "target_set": "known",
            "max_targets": targets,
            "per_composition": per_composition,
            **{m: {"max_draws": max_draws} for m in models if m in UNCONDITIONAL},
        },
    }


def finite_or_none(value):
    """``value`` with every NaN replaced by None: JSON has no NaN (a model that keeps no
    sample has no rates)."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def snakemake(workdir: Path, configfile: Path, target: str) -> float:
    """Build ``target`` with the repository's workflow; the wall time in seconds."""
    start = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
            "--configfile",
            str(configfile),
            "--cores",
            "2",
            target,
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode:
        sys.exit(f"snakemake {target} failed (logs in {workdir}/logs):\n{run.stderr[-4000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=sorted(MODELS), choices=sorted(MODELS))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--per-composition", type=int, default=32)
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument(
        "--max-draws",
        type=int,
        default=64,
        help="tensors each unconditional (CrysTens) model may draw",
    )
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        configfile = workdir / "bench.yaml"
        configfile.write_text(
            yaml.safe_dump(
                budget_config(
                    args.models, args.steps, args.per_composition, args.targets, args.max_draws
                )
            )
        )
        snakemake(workdir, configfile, "results/data/dataset.json.gz")
        training = [
            r.to_structure() for r in read_records(workdir / "results/data/dataset.json.gz")
        ]
        figures = {}
        for model in args.models:
            train_s = snakemake(workdir, configfile, f"results/train/{model}/model.pt")
            sample_s = snakemake(workdir, configfile, f"results/samples/{model}/samples.json.gz")
            samples = read_records(workdir / f"results/samples/{model}/samples.json.gz")
            report = pd.read_csv(workdir / f"results/samples/{model}/sample_report.csv")
            # the screen's validate stage measures validity, uniqueness and novelty alike for
            # every generator; nothing is relaxed here
            snakemake(workdir, configfile, "results/screen/validation.csv")
            validation = read_table(
                workdir / "results/screen/validation.csv", ["model", "structurally_valid", "new"]
            )
            quality = evaluate_model(
                model, validation[validation["model"] == model], NOTHING_RELAXED, [], training
            )
            figures[model] = finite_or_none(
                {
                    "train_s": round(train_s, 1),
                    "sample_s": round(sample_s, 1),
                    "asked": int(report["asked"].sum()),
                    "decoded": int(report["decoded"].sum()),
                    "kept": len(samples),
                    "samples_per_s": round(len(samples) / sample_s, 2),
                    **{
                        k: v
                        for k, v in asdict(quality).items()
                        if k
                        in (
                            "structural_validity",
                            "compositional_validity",
                            "validity",
                            "uniqueness",
                            "novelty",
                            "lattice_ks",
                        )
                    },
                }
            )
    print(
        json.dumps(
            {
                "bench": "generators",
                "steps": args.steps,
                "targets": args.targets,
                "per_composition": args.per_composition,
                "max_draws": args.max_draws,
                "models": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
