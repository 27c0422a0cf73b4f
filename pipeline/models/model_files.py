"""Model files: the weights of a trained generative model and what sampling needs beside them.

:func:`save_model` writes a state dict of tensors (``model.pt``, loaded with
``weights_only=True``) and beside it a small JSON (``model.json``: the model's name and class,
its options and metadata, the package version, the file format); :func:`load_model` reads both
back and refuses another model's file or another format.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import pipeline
from pipeline.errors import PipelineInputError

MODEL_FORMAT = 1  # the layout :func:`save_model` writes


@dataclass(frozen=True)
class SavedModel:
    """A trained model as :func:`load_model` reads it back."""

    name: str  # registry name
    options: dict[str, Any]  # the options dataclass as a mapping
    metadata: dict[str, Any]  # what sampling needs beside the weights (elements, caps, ...)
    tensors: dict[str, Any]  # state dicts and tensors, as passed to save_model


def info_path(model_path: Path) -> Path:
    """The JSON beside a model file: ``model.pt`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")


def save_model(
    path: Path,
    model: Any,
    options: Any,
    tensors: Mapping[str, Any],
    **metadata: Any,
) -> None:
    """Write ``tensors`` (state dicts, tensors, plain values) to ``path`` and a JSON of
    ``model``'s name and class, ``options`` (a dataclass), ``metadata`` and the package
    version beside it (:func:`info_path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "format": MODEL_FORMAT,
        "model": model.name,
        "class": f"{type(model).__module__}:{type(model).__qualname__}",
        "package_version": pipeline.__version__,
        "options": dataclasses.asdict(options),
        "metadata": metadata,
    }
    torch.save(dict(tensors), path)
    info_path(path).write_text(json.dumps(info, indent=1, default=list) + "\n")


def load_model(path: Path, name: str, device: torch.device | str = "cpu") -> SavedModel:
    """A model file written by :func:`save_model` for the model ``name``, tensors on
    ``device``; another model's file, or one without its JSON, is an input error."""
    path = Path(path)
    try:
        info = json.loads(info_path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PipelineInputError(
            f"{path}: no readable {info_path(path).name} beside it ({exc})"
        ) from None
    if info.get("model") != name:
        raise PipelineInputError(f"{path} is a {info.get('model')!r} model, not {name!r}")
    if info.get("format") != MODEL_FORMAT:
        raise PipelineInputError(
            f"{path}: model file format {info.get('format')}, need {MODEL_FORMAT}"
        )
    tensors = torch.load(path, map_location=device, weights_only=True)
    return SavedModel(name, info["options"], info["metadata"], tensors)
