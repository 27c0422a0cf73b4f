"""Where a stage's settings come from: the workflow's ``config.yaml`` is the one source.

The rules pass each stage the values of its config section; the defaults a stage (or a model's
options dataclass) falls back to when run by hand are read from the same ``config.yaml``
(:func:`default`, :func:`defaults_from_config`), so no default is written twice.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipeline.errors import PipelineInputError

CONFIG_FILE = Path(__file__).resolve().parent.parent / "config.yaml"

T = TypeVar("T")


@functools.cache
def default_config() -> dict[str, Any]:
    """The workflow's ``config.yaml`` (beside the package), as loaded."""
    with open(CONFIG_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def default(path: str) -> Any:
    """``config.yaml``'s value at a dotted ``path``, e.g. ``screen.e_hull.synthesizable``."""
    value: Any = default_config()
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"config.yaml has no {path}")
        value = value[key]
    return value


def defaults_from_config(path: str) -> Callable[[type[T]], type[T]]:
    """Class decorator (under ``@dataclass``): every field named in the config section
    ``path`` gets that value as its default (lists as tuples); a field the section does not
    name keeps the default written in the class."""

    def apply(cls: type[T]) -> type[T]:
        section = default(path)
        inherited: dict[str, Any] = {}
        for klass in reversed(cls.__mro__[1:]):
            inherited.update(getattr(klass, "__annotations__", {}))
        own = cls.__dict__.get("__annotations__", {})
        annotations = dict(own)
        for name in {**inherited, **own}:
            if name not in section:
                continue
            value = section[name]
            annotations.setdefault(name, inherited.get(name))  # override an inherited field
            if isinstance(value, dict):
                setattr(cls, name, dataclasses.field(default_factory=lambda v=value: dict(v)))
            else:
                setattr(cls, name, tuple(value) if isinstance(value, list) else value)
        cls.__annotations__ = annotations
        return cls

    return apply


def parse_options(text: str) -> dict:
    """A stage's settings given as a JSON object on its command line."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineInputError(f"--options is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise PipelineInputError("--options must be a JSON object")
    return options
