"""Every generator of the pipeline on the same data and step budget: quality and speed.

    python bench/generators.py [--steps 200] [--per-composition 32] [--targets 2]
                               [--models ccgan cvae graph_diffusion crystens_ddpm ...]

Runs the real workflow (``snakemake``) in a temporary folder on the bundled Mg-Mn-O data:
for each model, ``train`` with ``--steps`` optimiser steps (the CVAE: ``--steps`` for each
of its two phases), then ``sample`` for the same ``--targets`` known compositions. Scores
the raw (unrelaxed) samples with :mod:`pipeline.quality`: CDVAE structural and SMACT
compositional validity, uniqueness and novelty (``StructureMatcher`` among the samples and
against the training set), and the Kolmogorov-Smirnov statistic of each lattice
parameter against the training set. Prints one JSON line, one entry per model, with the
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

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.models.registry import MODELS  # noqa: E402
from pipeline.quality import evaluate_model  # noqa: E402
from pipeline.screen.dedup import prepare  # noqa: E402
from pipeline.records import read_records  # noqa: E402

STEP_KEYS = {"cvae": ("autoencoder_steps", "cvae_steps")}


def budget_config(models: list[str], steps: int, per_composition: int, targets: int) -> dict:
    """The overrides of ``config.yaml`` that give every model the same budget."""
    return {
        "augment": {"per_composition": 10},
        "train": {"models": models, "device": "auto", "checkpoint_every": max(steps, 1),
                  **{m: {key: steps for key in STEP_KEYS.get(m, ("steps",))} for m in models}},
        "sample": {"targets": "known", "max_targets": targets,
                   "per_composition": per_composition},
    }


def snakemake(workdir: Path, configfile: Path, target: str) -> float:
    """Build ``target`` with the repository's workflow; the wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
                    str(workdir), "--configfile", str(configfile), "--cores", "2", target],
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=sorted(MODELS), choices=sorted(MODELS))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--per-composition", type=int, default=32)
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        configfile = workdir / "bench.yaml"
        configfile.write_text(yaml.safe_dump(
            budget_config(args.models, args.steps, args.per_composition, args.targets)))
        snakemake(workdir, configfile, "results/data/dataset.json.gz")
        training = [r.to_structure() for r in read_records(workdir / "results/data/dataset.json.gz")]
        training_prepared = [prepare(s) for s in training]
        figures = {}
        for model in args.models:
            train_s = snakemake(workdir, configfile, f"results/train/{model}/model.pt")
            sample_s = snakemake(workdir, configfile, f"results/samples/{model}/samples.json.gz")
            samples = read_records(workdir / f"results/samples/{model}/samples.json.gz")
            quality = evaluate_model(model, samples, samples, {}, training, training_prepared)
            figures[model] = {
                "train_s": round(train_s, 1), "sample_s": round(sample_s, 1),
                "kept": len(samples),
                "samples_per_s": round(len(samples) / sample_s, 2) if sample_s else math.nan,
                **{k: v for k, v in asdict(quality).items()
                   if k in ("structural_validity", "compositional_validity", "validity",
                            "uniqueness", "novelty", "lattice_ks")},
            }
    print(json.dumps({"bench": "generators", "steps": args.steps, "targets": args.targets,
                      "per_composition": args.per_composition, "models": figures}))


if __name__ == "__main__":
    main()
