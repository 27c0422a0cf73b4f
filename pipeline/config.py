"""Configuration checks: every problem of a config, one line each, naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.errors import PipelineInputError


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def config_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Each schema violation as ``key.path: message``, in a stable order."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.path) or "(top level)"
        if error.validator == "additionalProperties":
            unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            prefix = f"{where}." if error.path else ""
            problems.extend(f"{prefix}{key}: unknown key" for key in unexpected)
        else:
            problems.append(f"{where}: {error.message}")
    return problems


def check_config(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Raise :class:`PipelineInputError` listing every problem of ``config``."""
    problems = config_problems(config, load_schema(schema_path))
    if problems:
        raise PipelineInputError("invalid configuration: " + "; ".join(problems))
