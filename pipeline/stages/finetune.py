"""CLI of the finetune stage (discovery rounds): ``python -m pipeline.stages.finetune --help``.

A learned source (a model whose class ``finetunes``) continues from the previous round's
``model.pt`` (``--parent``: its weights, with its options) for ``--steps`` optimiser steps on
the round's training set (``--data``: the training set with every structure confirmed so far,
encoded), so the round samples from a model that has seen what was found. A model that learns
nothing (or cannot continue), or a round in which nothing new was confirmed (``--confirmed``
empty), or ``--steps 0``, keeps the previous round's model: it is copied. Writes ``model.pt``,
``model.json``, ``losses.csv`` and ``loss_curve.png`` into ``--out-dir``, as the train stage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.models import registry
from pipeline.models.base import TrainJob
from pipeline.models.model_files import info_path, load_model
from pipeline.models.training import DEVICES, LossLog, resolve_device, write_loss_log
from pipeline.records import read_records
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help=f"one of {sorted(registry.MODELS)}")
    parser.add_argument("--parent", type=Path, required=True, help="previous round's model.pt")
    parser.add_argument(
        "--data", type=Path, help="the round's encoded training set (a model that fine-tunes)"
    )
    parser.add_argument(
        "--confirmed", type=Path, required=True, help="the structures the last round confirmed"
    )
    setting_argument(parser, "--steps", "discovery.finetune_steps", type=int)
    setting_argument(parser, "--seed", "seed", type=int)
    setting_argument(parser, "--device", "train.device", choices=DEVICES)
    setting_argument(parser, "--threads", "train.threads", type=int, help="CPU threads for torch")
    setting_argument(
        parser, "--checkpoint-every", "train.checkpoint_every", type=int, metavar="STEPS"
    )
    parser.add_argument("--out-dir", type=Path, required=True)
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps < 0 or args.checkpoint_every < 1:
        raise PipelineInputError("--steps must be >= 0 and --checkpoint-every >= 1")
    if not args.parent.is_file():
        raise PipelineInputError(f"previous round's model not found: {args.parent}")
    model = registry.create(args.model)
    parent = load_model(args.parent, model.name)
    confirmed = read_records(args.confirmed)
    job = TrainJob(
        data=args.data or args.parent,
        out_dir=args.out_dir,
        options={**parent.options, "steps": args.steps},
        seed=args.seed,
        device=resolve_device(args.device),
        checkpoint_every=args.checkpoint_every,
        init_from=args.parent,
    )
    kept = (
        f"{model.name} learns nothing from data" if not model.finetunes
        else "nothing new was confirmed" if not confirmed
        else "--steps 0" if args.steps == 0
        else ""
    )  # fmt: skip
    if not kept and args.data is None:
        raise PipelineInputError(f"{model.name} fine-tunes: give the round's --data")
    print(json.dumps({"model": model.name, "confirmed": len(confirmed), "kept": kept or None}))
    if kept:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.parent, job.model_path)
        shutil.copyfile(info_path(args.parent), info_path(job.model_path))
        write_loss_log(job, LossLog(), f"{model.name}: previous round's model ({kept})")
        return 0
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model.train(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
