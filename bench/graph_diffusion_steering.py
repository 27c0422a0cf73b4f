"""Sample a trained graph_diffusion model with and without band-gap guidance; one JSON line.

    python bench/graph_diffusion_steering.py --model results/train/graph_diffusion/model.pt

For each target band gap, the structures of the target compositions: how many are kept
(no atoms closer than 0.5 Å), their volume per atom, the band gap the model's predictor
gives them and the one CGCNN (the predictor's teacher) gives them. Structure ``i`` of a
target starts from the same noise with and without guidance: ``predicted_shift`` and
``cgcnn_shift`` are the mean changes of the two gaps over these pairs, ``cgcnn_up`` and
``cgcnn_down`` count the pairs where CGCNN's gap rose or fell.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.datasets.cgcnn_labels import teacher_band_gaps  # noqa: E402
from pipeline.models import registry  # noqa: E402
from pipeline.models.base import SampleJob, TargetComposition  # noqa: E402


def mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if len(values) else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--per-composition", type=int, default=16)
    parser.add_argument("--targets", nargs="*", default=["Mg1Mn1O3", "Mg2Mn2O6", "Mg1Mn2O4"])
    parser.add_argument("--band-gaps", nargs="*", type=float, default=[0.0, 3.0])
    parser.add_argument("--guidance-scale", type=float, default=30.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from pymatgen.core import Composition

    targets = [
        TargetComposition(t, {el.symbol: int(n) for el, n in Composition(t).items()})
        for t in args.targets
    ]
    model = registry.create("graph_diffusion")
    figures: dict[str, object] = {
        "per_composition": args.per_composition,
        "targets": args.targets,
        "guidance_scale": args.guidance_scale,
    }
    unguided: dict[str, tuple[float, float]] = {}
    for gap in [None, *args.band_gaps]:
        options = (
            {} if gap is None else {"target_band_gap": gap, "guidance_scale": args.guidance_scale}
        )
        start = time.perf_counter()
        result = model.sample(
            SampleJob(
                model_path=args.model,
                targets=targets,
                per_composition=args.per_composition,
                options=options,
                seed=0,
                device=torch.device("cpu"),
            )
        )
        seconds = time.perf_counter() - start
        records = result.records
        predicted = [r.properties["predicted_band_gap"] for r in records]
        cgcnn = teacher_band_gaps(records).tolist() if records else []
        key = "unguided" if gap is None else f"target_{gap:g}eV"
        figures[key] = {
            "asked": sum(r.asked for r in result.reports),
            "kept": len(records),
            "seconds": round(seconds, 1),
            "volume_per_atom": mean([r.to_structure().volume / r.natoms for r in records]),
            "predicted_gap": mean(predicted),
            "cgcnn_gap": mean(cgcnn),
        }
        if gap is None:
            unguided = {r.id: pair for r, pair in zip(records, zip(predicted, cgcnn))}
            continue
        # Structure i of a target starts from the same noise with and without guidance.
        shifts = [
            (p - unguided[r.id][0], c - unguided[r.id][1])
            for r, p, c in zip(records, predicted, cgcnn)
            if r.id in unguided
        ]
        figures[key].update(
            {
                "paired": len(shifts),
                "predicted_shift": mean([p for p, _ in shifts]),
                "cgcnn_shift": mean([c for _, c in shifts]),
                "cgcnn_up": sum(c > 0 for _, c in shifts),
                "cgcnn_down": sum(c < 0 for _, c in shifts),
            }
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
