"""Training throughput of the composition-conditioned GAN: real samples per second.

    python bench/train_throughput.py [--device auto] [--scale default|paper] [--steps 60]

Encodes the bundled Mg-Mn-O structures, trains ``--steps`` generator steps and, to leave
start-up out, a short run of ``--steps // 5``; the difference gives the rate. Prints one
JSON line: device, scale, threads, steps/s and real samples/s (each generator step takes
``critic_steps`` batches of real samples).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.chemsys import ChemicalSystem  # noqa: E402
from pipeline.formats import save_encoded  # noqa: E402
from pipeline.models import registry  # noqa: E402
from pipeline.models.base import TrainJob  # noqa: E402
from pipeline.models.training import resolve_device  # noqa: E402
from pipeline.records import read_records  # noqa: E402
from pipeline.represent.pointcloud import PointCloudEncoding  # noqa: E402
from pipeline.represent.pointcloud_dataset import pointcloud_dataset  # noqa: E402


def options(scale: str) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if scale == "paper":
        config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    return dict(config["train"]["ccgan"])


def timed_run(data: Path, out: Path, opts: dict, steps: int, device: torch.device) -> float:
    job = TrainJob(
        data=data,
        out_dir=out,
        options={**opts, "steps": steps},
        seed=0,
        device=device,
        checkpoint_every=10**9,
    )
    start = time.perf_counter()
    registry.create("ccgan").train(job)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--scale", default="default", choices=["default", "paper"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    opts = options(args.scale)
    system = ChemicalSystem.parse("Mg-Mn-O")
    records = read_records(REPO / "resources" / "datasets" / "mgmno_kim2020.json.gz")
    encoding = PointCloudEncoding.for_system(system, {"Mg": 8, "Mn": 8, "O": 12})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pointcloud.npz"
        save_encoded(pointcloud_dataset(records, encoding), data)
        short = max(1, args.steps // 5)
        t_short = timed_run(data, Path(tmp) / "short", opts, short, device)
        t_long = timed_run(data, Path(tmp) / "long", opts, args.steps, device)
    steps_per_s = (args.steps - short) / (t_long - t_short)
    print(
        json.dumps(
            {
                "bench": "train_throughput",
                "model": "ccgan",
                "device": str(device),
                "device_name": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else "cpu",
                "scale": args.scale,
                "threads": args.threads,
                "amp": bool(opts.get("amp")) and device.type == "cuda",
                "batch_size": opts["batch_size"],
                "critic_steps": opts["critic_steps"],
                "steps_per_s": round(steps_per_s, 2),
                "samples_per_s": round(steps_per_s * opts["batch_size"] * opts["critic_steps"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
