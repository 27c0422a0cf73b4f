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


def parse_command_line_scalars(config: dict[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Turn, in place, text where the schema wants a number, boolean or null into that value.

    Snakemake reads a mapping given on its command line (``--config discovery='{rounds: 3}'``)
    with YAML's base loader, which leaves every scalar text: ``'3'``. Where the schema rejects
    such text for its type and the text, read as YAML, is a value the schema accepts, the
    value replaces it. Returns the dotted keys changed.
    """
    validator = jsonschema.Draft202012Validator(schema)
    changed = []
    for error in validator.iter_errors(config):
        if error.validator != "type" or not isinstance(error.instance, str) or not error.path:
            continue
        try:
            value = yaml.safe_load(error.instance)
        except yaml.YAMLError:
            continue
        if isinstance(value, str) or not jsonschema.Draft202012Validator(error.schema).is_valid(
            value
        ):
            continue
        *parents, last = error.path
        holder = config
        for key in parents:
            holder = holder[key]
        holder[last] = value
        changed.append(".".join(map(str, error.path)))
    return changed


def check_config(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Raise :class:`PipelineInputError` listing every problem of ``config``."""
    problems = config_problems(config, load_schema(schema_path))
    if problems:
        raise PipelineInputError("invalid configuration: " + "; ".join(problems))


# Settings keyed by element symbol. Snakemake merges an overlay config into config.yaml key
# by key, so the defaults' entries (Mg, Mn, ...) survive a change of chemsys: only the
# entries of the system's own elements are kept.
ELEMENT_KEYED_SETTINGS = (("encoding", "max_atoms"), ("compositions", "oxidation_states"))


def restrict_to_system(config: dict[str, Any]) -> list[str]:
    """Drop, in place, element-keyed settings of elements outside ``config["chemsys"]``.

    Returns
    -------
    list[str]
        One note per setting that lost entries, naming them, for the user to read.
    """
    elements = [el for el in str(config["chemsys"]).split("-") if el]
    notes = []
    for section, key in ELEMENT_KEYED_SETTINGS:
        values = config.get(section, {}).get(key)
        if not values:
            continue
        foreign = [el for el in values if el not in elements]
        if foreign:
            config[section][key] = {el: v for el, v in values.items() if el in elements}
            notes.append(
                f"{section}.{key}: ignoring {', '.join(foreign)} (not in chemsys"
                f" {config['chemsys']}); kept {', '.join(config[section][key]) or 'none'}"
            )
    return notes
