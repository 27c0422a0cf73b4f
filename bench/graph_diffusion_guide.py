"""How much of the band gap a trained graph_diffusion guide knows, by noise level; one JSON line.

    python bench/graph_diffusion_guide.py --model results/train/graph_diffusion/model.pt \\
        [--data results/encoded/graph.npz] [--crystals 400] [--steps 0 5 20 50 80 100]

For ``--crystals`` training crystals (a fixed random choice) noised to each diffusion step
``t``: ``r2``, the fraction of the band gap's variance the guide explains, and ``r2_within``
and ``corr_within``, the same for the gap's deviation from the mean of its composition
(reduced formula). Steering keeps the composition, so only the spread within a composition
can be steered: ``r2_within`` is what decides how well it works.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.formats import load_graph_dataset  # noqa: E402
from pipeline.models.graph_diffusion import load_trained, training_graphs  # noqa: E402


def minus_composition_means(values: np.ndarray, compositions: list[tuple]) -> np.ndarray:
    """``values`` less the mean of the values of the same composition."""
    out = values.copy()
    for composition in set(compositions):
        same = np.array([c == composition for c in compositions])
        out[same] -= values[same].mean()
    return out


def explained(predicted: np.ndarray, actual: np.ndarray) -> float:
    return round(float(1.0 - ((predicted - actual) ** 2).mean() / actual.var()), 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("results/encoded/graph.npz"))
    parser.add_argument("--crystals", type=int, default=400)
    parser.add_argument("--steps", nargs="*", type=int, default=[0, 5, 20, 50, 80, 100])
    args = parser.parse_args()
    torch.set_num_threads(1)

    model, encoding = load_trained(args.model, torch.device("cpu"))
    graphs = training_graphs(load_graph_dataset(args.data))
    chosen = np.random.default_rng(1).choice(
        len(graphs), min(args.crystals, len(graphs)), replace=False
    )
    batches = [
        Batch.from_data_list([graphs[i] for i in chosen[s : s + 50]])
        for s in range(0, len(chosen), 50)
    ]
    compositions = []
    for i in chosen:
        counts = np.bincount(graphs[i].species.numpy(), minlength=len(encoding.elements))
        compositions.append(tuple(np.round(counts / counts.sum(), 3)))
    actual = np.array([float(graphs[i].band_gap) for i in chosen])
    actual_within = minus_composition_means(actual, compositions)

    torch.manual_seed(0)
    figures = {}
    for step in (s for s in args.steps if 0 <= s <= model.schedule.timesteps):
        predicted = []
        for batch in batches:
            t = torch.full((len(batch.ptr) - 1,), step)
            with torch.no_grad():
                x, _, _ = model.noised(batch, t)
                predicted.append(model.band_gap(x, t).numpy())
        predicted = np.concatenate(predicted)
        predicted_within = minus_composition_means(predicted, compositions)
        figures[step] = {
            "r2": explained(predicted, actual),
            "r2_within": explained(predicted_within, actual_within),
            "corr_within": round(float(np.corrcoef(predicted_within, actual_within)[0, 1]), 3),
        }
    print(
        json.dumps(
            {
                "bench": "graph_diffusion_guide",
                "model": str(args.model),
                "crystals": len(chosen),
                "by_step": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
