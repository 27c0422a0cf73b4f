"""One home for every setting: config.yaml, shipped in the package, read as one typed object.

Every default of a stage's command line and of a model's options comes from config.yaml; the
schema's choices are the registry's models and the potentials the screen builds; a
non-editable install of the package runs a stage from anywhere with those defaults.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLED_REFERENCES, REPO

import pipeline.models
import pipeline.stages
from pipeline.errors import PipelineInputError
from pipeline.models.registry import MODELS
from pipeline.screen.potential_names import POTENTIALS
from pipeline.settings import (
    CONFIG_FILE,
    SCHEMA_FILE,
    Settings,
    default,
    default_config,
    default_settings,
)
from pipeline.settings.schema import load_schema, parse_command_line_scalars

STAGES = sorted(m.name for m in pkgutil.iter_modules(pipeline.stages.__path__))


def parsers(parser: argparse.ArgumentParser):
    """A parser and the parsers of its subcommands."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_the_packaged_config_is_the_workflows():
    assert CONFIG_FILE.resolve() == (REPO / "config.yaml").resolve()
    assert SCHEMA_FILE.resolve() == (REPO / "schemas/config.schema.yaml").resolve()
    assert default_config() == yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("stage", STAGES)
def test_every_default_of_a_stage_is_a_config_value(stage):
    """A stage option either has no default (None, False, required) or takes a config value
    through ``setting_argument``: a literal default written in a stage fails here."""
    module = importlib.import_module(f"pipeline.stages.{stage}")
    checked = 0
    for parser in parsers(module.build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            path = getattr(action, "setting", None)
            if path is None:
                assert action.default in (None, False, argparse.SUPPRESS), (
                    f"{stage} {action.option_strings}: default {action.default!r} is not"
                    " config.yaml's (use pipeline.settings.setting_argument)"
                )
                continue
            value = default(path)
            if dataclasses.is_dataclass(value):
                value = dataclasses.astuple(value)
            expected = list(value) if isinstance(value, tuple) else value
            given = action.default
            if action.type is not None and isinstance(given, str):
                given, expected = str(given), str(expected)
            assert given == expected, f"{stage} {action.option_strings} vs {path}"
            checked += 1
    assert checked >= 0


def options_classes():
    """Every options dataclass whose defaults come from a config section."""
    for info in pkgutil.iter_modules(pipeline.models.__path__):
        module = importlib.import_module(f"pipeline.models.{info.name}")
        for value in vars(module).values():
            if dataclasses.is_dataclass(value) and hasattr(value, "config_section"):
                yield value


def test_options_dataclasses_name_exactly_their_config_sections_keys():
    classes = {cls.config_section: cls for cls in options_classes()}
    assert len(classes) >= 10  # every model's train and sample options
    for section, cls in classes.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields == set(default(section)), section
        instance = cls()  # every field has its config value as default
        for name, value in default(section).items():
            got = getattr(instance, name)
            assert (list(got) if isinstance(got, tuple) else got) == value, f"{section}.{name}"


def test_every_model_has_its_config_sections():
    config = default_config()
    for model in MODELS:
        if model not in ("pyxtal_random", "substitution"):  # nothing to train
            assert model in config["train"], model
        assert model in config["sample"], model


def test_the_schemas_choices_are_the_registry_and_the_potentials():
    schema = load_schema(SCHEMA_FILE)["properties"]
    assert set(schema["train"]["properties"]["models"]["items"]["enum"]) == set(MODELS)
    screen = schema["screen"]["properties"]
    assert set(screen["potential"]["enum"]) == set(POTENTIALS)
    assert set(screen["second_opinion"]["enum"]) == {*POTENTIALS, None}
    assert set(screen["consensus"]["items"]["enum"]) == set(POTENTIALS)
    assert set(screen["checkpoints"]["properties"]) == set(POTENTIALS)
    assert set(default_settings().screen.checkpoints) == set(POTENTIALS)


def test_the_typed_settings_hold_every_key_and_reject_others():
    settings = default_settings()
    assert (
        settings.screen.e_hull.synthesizable
        == default_config()["screen"]["e_hull"]["synthesizable"]
    )
    assert (
        settings.train.options["wyckoff_diffusion"]
        == default_config()["train"]["wyckoff_diffusion"]
    )
    assert settings.screen.pourbaix.ph_range == tuple(
        default_config()["screen"]["pourbaix"]["ph_range"]
    )
    config = copy.deepcopy(default_config())
    config["screen"]["e_hull"]["stable"] = 0.0
    with pytest.raises(PipelineInputError, match=r"screen.e_hull: unknown keys \['stable'\]"):
        Settings.from_mapping(config)
    del config["screen"]["e_hull"]["stable"], config["screen"]["fmax"]
    with pytest.raises(PipelineInputError, match=r"screen: missing keys \['fmax'\]"):
        Settings.from_mapping(config)


def test_the_discovery_section_is_typed_key_by_key():
    """discovery: every key of config.yaml a field of DiscoverySettings and a schema property,
    and text from --config read as its type (Snakemake's base loader leaves '3')."""
    section = default_config()["discovery"]
    fields = dataclasses.asdict(default_settings().discovery)
    schema = load_schema(SCHEMA_FILE)
    assert fields == section
    assert set(schema["properties"]["discovery"]["properties"]) == set(section)
    assert "discovery" in schema["required"]
    config = copy.deepcopy(default_config())
    config["discovery"] |= {"rounds": "3", "confirm_e_hull": "0.05", "split": "fixed"}
    changed = parse_command_line_scalars(config, schema)
    assert sorted(changed) == ["discovery.confirm_e_hull", "discovery.rounds"]
    assert Settings.from_mapping(config).discovery.rounds == 3
    assert config["discovery"]["confirm_e_hull"] == 0.05
    config["discovery"]["rounds"] = "three"  # not a number: left for the check to name
    assert parse_command_line_scalars(config, schema) == []
    assert config["discovery"]["rounds"] == "three"


@pytest.mark.slow
def test_a_non_editable_install_runs_a_stage_with_the_packaged_defaults(tmp_path):
    """`pip install .` (not editable) into a fresh venv: a stage runs from any folder, its
    defaults (here validate's limits and chemsys) read from the packaged config.yaml."""
    venv = tmp_path / "venv"
    # The scientific stack comes from this environment; the package itself is installed anew.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def stage(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", f"pipeline.stages.{name}", *args],
            capture_output=True,
            text=True,
            cwd=elsewhere,
            env={"PATH": str(venv / "bin"), "HOME": str(tmp_path)},
            timeout=600,
        )

    where = stage("known_index", "--help")
    assert where.returncode == 0 and "usage: python -m pipeline.stages.known_index" in where.stdout
    located = subprocess.run(
        [str(python), "-c", "import pipeline.settings as s; print(s.CONFIG_FILE)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert located.stdout.strip().startswith(str(venv)), located.stdout  # not the checkout
    built = stage("known_index", "--known", str(BUNDLED_REFERENCES), "--out", "known.json.gz")
    assert built.returncode == 0, built.stderr[-2000:]
    assert json.loads(built.stdout.splitlines()[-1])["known_structures"] == 9
    validated = stage(
        "validate",
        "--samples",
        str(BUNDLED_REFERENCES),
        "--known-index",
        "known.json.gz",
        "--out",
        "validated.json.gz",
        "--out-table",
        "validation.csv",
    )
    assert validated.returncode == 0, validated.stderr[-2000:]
    counts = json.loads(validated.stdout.splitlines()[-1])
    # the reference phases are the known structures themselves
    assert counts["candidates"] == 9 and counts["new"] == 0
    assert Path(elsewhere / "validation.csv").is_file()
