import copy
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from pipeline.errors import PipelineInputError
from pipeline.records import read_records
from pipeline.settings.schema import check_config, config_problems, load_schema, restrict_to_system

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
        [sys.executable, "-m", f"pipeline.stages.{stage}", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0 and "usage: python -m pipeline.stages." in result.stdout


def test_an_overlay_that_changes_chemsys_drops_the_defaults_other_elements(default_config):
    # What snakemake makes of config.yaml plus an overlay naming Ba-Ti-O: maps merged key by key.
    config = copy.deepcopy(default_config)
    config["chemsys"] = "Ba-Ti-O"
    config["encoding"]["max_atoms"] = {"Mg": 8, "Mn": 8, "Ba": 4}
    config["compositions"]["oxidation_states"].update(Ba=[2, 2])
    notes = restrict_to_system(config)
    assert config["encoding"]["max_atoms"] == {"Ba": 4}
    assert config["compositions"]["oxidation_states"] == {"O": [-2, -2], "Ba": [2, 2]}
    assert notes == [
        "encoding.max_atoms: ignoring Mg, Mn (not in chemsys Ba-Ti-O); kept Ba",
        "compositions.oxidation_states: ignoring Mg, Mn (not in chemsys Ba-Ti-O); kept O, Ba",
    ]
    assert restrict_to_system(config) == []


@pytest.mark.parametrize("overlay", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_each_shipped_overlay_merges_into_a_valid_config(default_config, overlay):
    # as `snakemake --configfile config/<overlay>` merges it: maps key by key, the rest replaced
    from snakemake.utils import update_config

    config = copy.deepcopy(default_config)
    update_config(config, yaml.safe_load(overlay.read_text()))
    assert config_problems(config, load_schema(SCHEMA)) == []


def test_the_paper_scale_overlay_asks_for_kim_et_al_s_9300_samples(default_config):
    from pymatgen.core import Composition

    overlay = yaml.safe_load((REPO / "config" / "kim_scale.yaml").read_text())
    targets = overlay["compositions"]["targets"]
    assert len(set(targets)) == 31 and overlay["sample"]["per_composition"] * 31 == 9300
    bundled = {
        Composition(r.formula).reduced_formula
        for r in read_records(REPO / "resources/datasets/mgmno_kim2020.json.gz")
    }
    known = [t for t in targets if Composition(t).reduced_formula in bundled]
    assert len(known) == 11  # and 20 stoichiometries the bundled set does not have
