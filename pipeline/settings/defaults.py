"""Defaults of every stage and options dataclass: the packaged ``config.yaml``, nothing else.

The rules pass each stage the values of its config section; the defaults a stage (or a model's
options dataclass) falls back to when run by hand come from the same ``config.yaml``, shipped
inside the package (``pipeline/settings/config.yaml``), so a non-editable install has them
too and no default is written twice:

* :func:`default_settings`: the typed :class:`~pipeline.settings.typed.Settings` of the file;
* :func:`default`: one value by its dotted path, e.g. ``screen.fmax``;
* :func:`setting_argument`: a CLI option whose default is a config value, remembered on the
  parser so a test can check every default against the file;
* :func:`defaults_from_config`: a model's options dataclass with its section's values.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipeline.errors import PipelineInputError
from pipeline.settings.typed import Settings

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_FILE = PACKAGE_DIR / "config.yaml"
SCHEMA_FILE = PACKAGE_DIR / "config.schema.yaml"

T = TypeVar("T")


@functools.cache
def default_config() -> dict[str, Any]:
    """The packaged ``config.yaml``, as loaded (a mapping; see :func:`default_settings`)."""
    with open(CONFIG_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@functools.cache
def default_settings() -> Settings:
    """The packaged ``config.yaml`` as the typed settings object."""
    return Settings.from_mapping(default_config())


def lookup(settings: Any, path: str) -> Any:
    """The value at the dotted ``path`` of a settings object (sections or mappings)."""
    value = settings
    for key in path.split("."):
        if dataclasses.is_dataclass(value) and hasattr(value, key):
            value = getattr(value, key)
        elif dataclasses.is_dataclass(value) and key in getattr(value, "options", {}):
            value = value.options[key]  # train.<model> / sample.<model>
        elif isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            raise KeyError(f"config.yaml has no {path}")
    return value


def default(path: str) -> Any:
    """``config.yaml``'s value at a dotted ``path``, e.g. ``screen.fmax``."""
    return lookup(default_settings(), path)


def setting_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    path: str,
    **kwargs: Any,
) -> argparse.Action:
    """Add option ``flag`` whose default is ``config.yaml``'s value at ``path``.

    Sequences and sections (e.g. ``screen.band_gap.pbe_to_hse``) become lists, as argparse
    gives them with ``nargs``. The action remembers
    ``path`` (``action.setting``), so tests can check every default of every stage against
    the file, and that no other option carries a default of its own.
    """
    value = default(path)
    if dataclasses.is_dataclass(value):
        value = dataclasses.astuple(value)
    if isinstance(value, tuple):
        value = list(value)
    action = parser.add_argument(flag, default=value, **kwargs)
    action.setting = path  # type: ignore[attr-defined]
    return action


def defaults_from_config(path: str) -> Callable[[type[T]], type[T]]:
    """Class decorator (under ``@dataclass``): every field named in the config section
    ``path`` gets that value as its default (lists as tuples); a field the section does not
    name keeps the default written in the class."""

    def apply(cls: type[T]) -> type[T]:
        section = default(path)
        if dataclasses.is_dataclass(section):  # a typed section (e.g. screen.cascade)
            section = dataclasses.asdict(section)
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
        cls.config_section = path  # type: ignore[attr-defined]  (tests check it against the file)
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
