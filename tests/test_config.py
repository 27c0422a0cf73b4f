import copy
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from pipeline.config import check_config, config_problems, load_schema
from pipeline.errors import PipelineInputError

SCHEMA = REPO / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def default_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_the_shipped_config_is_valid(default_config):
    assert config_problems(default_config, load_schema(SCHEMA)) == []


def test_every_problem_is_reported_with_its_key(default_config):
    config = copy.deepcopy(default_config)
    config["augment"]["per_composition"] = "many"
    config["augment"]["rotate"] = True
    config["data"]["source"] = "ftp"
    del config["seed"]
    assert config_problems(config, load_schema(SCHEMA)) == [
        "(top level): 'seed' is a required property",
        "augment.rotate: unknown key",
        "augment.per_composition: 'many' is not of type 'integer'",
        "data.source: 'ftp' is not one of ['bundled', 'mp', 'cif_dir']",
    ]
    with pytest.raises(PipelineInputError, match="^invalid configuration: "):
        check_config(config, SCHEMA)


@pytest.mark.parametrize("stage", ["data", "augment", "encode"])
def test_each_stage_has_a_cli(stage):
    result = subprocess.run(
        [sys.executable, "-m", f"pipeline.{stage}", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0 and "usage: python -m pipeline." in result.stdout
