"""The CrysTens consistency metrics of Alverson et al. (2024), Tables 1 and 2, per model.

    python bench/crystens_quality.py [--structures 512] [--steps 300] [--samples 64]
                                     [--models crystens_ddpm crystens_gan crystens_wgan]
                                     [--device auto] [--threads 1] [--configfile my.yaml]

Encodes ``--structures`` bundled Mg-Mn-O structures (every ``k``-th, so all compositions
are represented), trains every model on the same tensors with its ``config.yaml`` options
(``train.<model>``, ``sample.<model>``, updated from ``--configfile`` if given; ``--steps``
overrides the length), draws ``--samples`` tensors from each and reconstructs
them. Prints one JSON line: per model the fraction of tensors that decode and, averaged over
those, the paper's Table 1 variances (repeated lattice lengths, angles, space group,
coordinates; physical units) and Table 2 disagreements (own vs relative coordinates,
distance channel vs reconstructed distances), then for each metric the models from best
(lowest) to worst, to compare with the paper's ranking (diffusion < WGAN < GAN), and the
training and sampling seconds. The real tensors' metrics are all zero by construction.
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

from pipeline.chemsys import ChemicalSystem  # noqa: E402
from pipeline.formats import save_crystens  # noqa: E402
from pipeline.models import crystens_ddpm, registry  # noqa: E402
from pipeline.models.base import (  # noqa: E402
    TrainJob,
    latent_seed,  # noqa: E402
    options_from_mapping,
)
from pipeline.models.training import resolve_device  # noqa: E402
from pipeline.records import read_records  # noqa: E402
from pipeline.represent import crystens  # noqa: E402
from pipeline.represent.crystens import crystens_dataset  # noqa: E402

MODELS = ("crystens_ddpm", "crystens_gan", "crystens_wgan")
METRICS = (
    "var_lattice_lengths",
    "var_lattice_angles",
    "var_space_group",
    "var_coordinates",
    "coordinate_disagreement",
    "distance_mismatch",
    "distance_mismatch_per_pair",
)


def generated_tensors(
    name: str, model_path: Path, config: dict, n: int, device: torch.device
) -> np.ndarray:
    model = registry.create(name)
    if name == "crystens_ddpm":
        opts = options_from_mapping(crystens_ddpm.SampleOptions, config["sample"][name], name)
        generate, _ = model.tensor_sampler(model_path, opts, device)
        batch = opts.batch_size
    else:
        generate, _ = model.tensor_sampler(model_path, device)
        batch = config["sample"][name]["batch_size"]
    seeds = [latent_seed(0, i) for i in range(n)]
    return np.concatenate([generate(seeds[i : i + batch]) for i in range(0, n, batch)])


def quality(tensors: np.ndarray, elements: tuple[str, ...]) -> dict[str, float]:
    """Decodable fraction and the mean of each metric over the decodable tensors."""
    rows = []
    for tensor in tensors:
        try:
            rows.append(crystens.reconstruct(tensor, elements).quality.as_dict())
        except crystens.DecodeError:
            continue
    out = {"decodable_fraction": len(rows) / len(tensors)}
    out.update({m: float(np.mean([r[m] for r in rows])) if rows else None for m in METRICS})
    out["mean_atoms"] = float(np.mean([r["n_atoms"] for r in rows])) if rows else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--structures", type=int, default=512)
    parser.add_argument("--steps", type=int, default=None, help="training steps of every model")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--configfile",
        type=Path,
        help="YAML whose train/sample model sections update config.yaml's",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for these small networks)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if args.configfile:
        extra = yaml.safe_load(args.configfile.read_text())
        for section in ("train", "sample"):
            for name, options in (extra.get(section) or {}).items():
                config[section][name] = {**config[section].get(name, {}), **options}
    system = ChemicalSystem.parse(config["chemsys"])
    records = read_records(REPO / "resources" / "datasets" / "mgmno_kim2020.json.gz")
    records = records[:: max(1, len(records) // args.structures)][: args.structures]

    result: dict = {
        "device": str(device),
        "structures": len(records),
        "samples": args.samples,
        "steps": args.steps,
        "configfile": str(args.configfile or ""),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "crystens.npz"
        save_crystens(crystens_dataset(records, system), data)
        for name in args.models:
            options = dict(config["train"][name])
            if args.steps:
                options["steps"] = args.steps
            job = TrainJob(
                data=data,
                out_dir=Path(tmp) / name,
                options=options,
                seed=config["seed"],
                device=device,
                checkpoint_every=10**9,
            )
            start = time.perf_counter()
            registry.create(name).train(job)
            trained = time.perf_counter()
            tensors = generated_tensors(name, job.model_path, config, args.samples, device)
            sampled = time.perf_counter()
            result["models"][name] = {
                **quality(tensors, tuple(system.elements)),
                "train_s": round(trained - start, 1),
                "sample_s": round(sampled - trained, 1),
            }
    result["ranking"] = {
        m: sorted(
            (n for n in result["models"] if result["models"][n][m] is not None),
            key=lambda n: result["models"][n][m],
        )
        for m in METRICS
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
