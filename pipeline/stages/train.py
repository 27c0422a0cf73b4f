"""Stage train: fit one generative model (``--model``, see :mod:`pipeline.models.registry`).

Writes ``model.pt`` (weights) with ``model.json`` (model, options, version), ``losses.csv``
(one row per step) and ``loss_curve.png`` into ``--out-dir``; checkpoints go to ``--out-dir/checkpoints/`` every ``--checkpoint-every``
steps, and a rerun after an interruption continues from the newest one.
Run ``python -m pipeline.stages.train --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.models import registry
from pipeline.models.base import TrainJob
from pipeline.models.training import DEVICES, resolve_device
from pipeline.settings import parse_options, setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help=f"one of {sorted(registry.MODELS)}")
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="encoded training data of the model's representation (.npz)",
    )
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument(
        "--options",
        help="the model's hyperparameters as a JSON object (config train.<model>);"
        " default: config.yaml's",
    )
    setting_argument(parser, "--seed", "seed", type=int)
    setting_argument(parser, "--device", "train.device", choices=DEVICES)
    setting_argument(parser, "--threads", "train.threads", type=int, help="CPU threads for torch")
    setting_argument(
        parser, "--checkpoint-every", "train.checkpoint_every", type=int, metavar="STEPS"
    )
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.checkpoint_every < 1:
        raise PipelineInputError("--checkpoint-every must be at least 1")
    if not args.data.is_file():
        raise PipelineInputError(f"training data not found: {args.data}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = registry.create(args.model)
    job = TrainJob(
        data=args.data,
        out_dir=args.out_dir,
        options=parse_options(args.options or "{}"),
        seed=args.seed,
        device=resolve_device(args.device),
        checkpoint_every=args.checkpoint_every,
    )
    print(json.dumps({"model": model.name, "device": str(job.device), "options": job.options}))
    model.train(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
