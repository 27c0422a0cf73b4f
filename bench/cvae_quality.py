"""Quality of the property-conditioned CVAE: autoencoder round trip, samples, conditioning.

Trains the CVAE with ``config.yaml``'s ``train.cvae`` options (or takes ``--model-path``) on
the labelled point clouds of a finished ``training_properties`` run, then prints ONE JSON line:

* ``round_trip``: every training point cloud through both autoencoders and decoded: the
  fraction with the right composition, and for those the largest and mean atom displacement
  (Å, minimum image), lattice-length error (Å) and angle error (degrees);
* ``samples``: for each target of ``targets.csv``, ``--per-target`` random samples asked
  for the 10th and the 90th percentile of the training property: kept fraction, fraction
  with every interatomic distance above 0.5 Å, and CGCNN's prediction of the property for
  the kept samples at the low and the high target (does the condition move the property?).

    python bench/cvae_quality.py                      # after snakemake results/encoded/pointcloud_properties.npz
    python bench/cvae_quality.py --model-path results/train/cvae/model.pt
    python bench/cvae_quality.py --options '{"hidden": 512}'   # other hyperparameters
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.datasets.cgcnn_labels import predict_properties  # noqa: E402
from pipeline.formats import load_labelled  # noqa: E402
from pipeline.models.base import SampleJob, TrainJob, read_targets  # noqa: E402
from pipeline.models.cvae import CVAE, load_trained  # noqa: E402
from pipeline.represent.pointcloud import DecodeError  # noqa: E402


def round_trip(model_path: Path, labelled_path: Path) -> dict[str, float]:
    nets, _ = load_trained(model_path, torch.device("cpu"))
    data = load_labelled(labelled_path).data
    with torch.no_grad():
        clouds = nets.autoencode(torch.from_numpy(data.x).float()).numpy()
    matched, shifts, lengths, angles = 0, [], [], []
    for original, cloud in zip(data.x, clouds):
        before = data.encoding.decode(original)
        try:
            after = data.encoding.decode(cloud)
        except DecodeError:
            continue
        if after.species != before.species:  # same per-element counts, same element order
            continue
        matched += 1
        s0, s1 = before.to_structure(), after.to_structure()
        delta = np.asarray(after.frac_coords) - np.asarray(before.frac_coords)
        delta -= np.round(delta)
        shifts.append(np.linalg.norm(delta @ s1.lattice.matrix, axis=1).max())
        lengths.append(np.abs(np.subtract(s1.lattice.abc, s0.lattice.abc)).max())
        angles.append(np.abs(np.subtract(s1.lattice.angles, s0.lattice.angles)).max())
    return {
        "structures": len(data),
        "composition_match": matched / len(data),
        "max_atom_shift_A": float(np.max(shifts)),
        "mean_max_atom_shift_A": float(np.mean(shifts)),
        "max_length_error_A": float(np.max(lengths)),
        "max_angle_error_deg": float(np.max(angles)),
    }


def samples(
    model_path: Path, labelled_path: Path, targets_path: Path, per_target: int, property_name: str
) -> dict[str, float]:
    values = load_labelled(labelled_path).values(property_name)
    low, high = np.percentile(values, [10, 90])
    out: dict[str, float] = {"target_low": float(low), "target_high": float(high)}
    for tag, value in (("low", low), ("high", high)):
        job = SampleJob(
            model_path=model_path,
            targets=read_targets(targets_path),
            per_composition=per_target,
            options={"target_property": float(value)},
            seed=0,
            device=torch.device("cpu"),
        )
        result = CVAE().sample(job)
        asked = sum(r.asked for r in result.reports)
        separated = [
            r
            for r in result.records
            if r.to_structure().distance_matrix[np.triu_indices(r.natoms, 1)].min() > 0.5
        ]
        predicted = predict_properties(result.records)[property_name]
        out[f"kept_{tag}"] = len(result.records) / asked
        out[f"min_distance_ok_{tag}"] = len(separated) / max(1, len(result.records))
        out[f"cgcnn_mean_{tag}"] = float(predicted.mean())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--labelled", type=Path, default=REPO / "results/encoded/pointcloud_properties.npz"
    )
    parser.add_argument("--targets", type=Path, default=REPO / "results/compositions/targets.csv")
    parser.add_argument("--model-path", type=Path, help="a trained model.pt (default: train one)")
    parser.add_argument("--per-target", type=int, default=32)
    parser.add_argument(
        "--options",
        default="{}",
        help="JSON merged over config.yaml's train.cvae when training here",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = {
        **yaml.safe_load((REPO / "config.yaml").read_text())["train"]["cvae"],
        **json.loads(args.options),
    }
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model_path
        if model_path is None:
            start = time.perf_counter()
            job = TrainJob(
                data=args.labelled,
                out_dir=Path(tmp),
                options=options,
                seed=0,
                device=torch.device("cpu"),
                checkpoint_every=1000,
            )
            CVAE().train(job)
            figures["train_s"] = round(time.perf_counter() - start, 1)
            model_path = job.model_path
        property_name = load_trained(model_path, torch.device("cpu"))[0].options.property
        figures["property"] = property_name
        figures["round_trip"] = round_trip(model_path, args.labelled)
        figures["samples"] = samples(
            model_path, args.labelled, args.targets, args.per_target, property_name
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
