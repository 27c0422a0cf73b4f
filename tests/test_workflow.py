"""The first three stages through snakemake itself, on a tiny config in a temp dir."""

import gzip
from pathlib import Path

import pytest
from conftest import REPO
from workflow_helpers import planned_jobs, run_snakemake, tiny_config

from pipeline.records import read_records

pytestmark = pytest.mark.workflow

FOUNDATION_TARGETS = [
    "results/encoded/pointcloud.npz",
    "results/data/summary.csv",
    "results/data/composition_distribution.png",
]


def snakemake(workdir: Path, configfile: Path, *args: str):
    return run_snakemake(workdir, configfile, *args, check=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    config = tiny_config(workdir / "tiny.yaml", augment={"per_composition": 3})
    result = snakemake(workdir, config, *FOUNDATION_TARGETS)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def test_the_stages_write_their_outputs(finished_run):
    workdir, _ = finished_run
    assert len(read_records(workdir / "results/data/dataset.json.gz")) == 2627
    augmented = read_records(workdir / "results/augment/augmented.json.gz")
    assert 112 * 3 <= len(augmented) < 2627  # at least 3 per composition, big ones cut to 3
    encoded = __import__("numpy").load(workdir / "results/encoded/pointcloud.npz")
    assert encoded["x"].shape == (len(augmented), 30, 3)
    assert (workdir / "logs/augment.log").read_text().strip()


def test_a_second_run_with_nothing_changed_runs_nothing(finished_run):
    workdir, config = finished_run
    assert planned_jobs(workdir, config, *FOUNDATION_TARGETS) == {}


def test_an_augment_change_reruns_augment_and_encode_only(finished_run):
    workdir, _ = finished_run
    changed = tiny_config(workdir / "changed.yaml", augment={"per_composition": 4})
    assert planned_jobs(workdir, changed, *FOUNDATION_TARGETS) == {"augment": 1, "encode": 1}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"augment": {"per_composition": "three"}},
            "augment.per_composition: 'three' is not of type 'integer'",
        ),
        ({"augment": {"per_composition": 3, "colour": "red"}}, "augment.colour: unknown key"),
        ({"data": {"source": "ftp"}}, "data.source: 'ftp' is not one of"),
        # the old name of sample.target_set, beside compositions.targets
        ({"sample": {"targets": "known"}}, "sample.targets: 'renamed to sample.target_set'"),
    ],
)
def test_a_bad_config_stops_the_run_naming_the_key(tmp_path, overrides, message):
    result = snakemake(tmp_path, tiny_config(tmp_path / "bad.yaml", **overrides), "-n")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_a_corrupt_dataset_fails_the_rule_with_a_clear_log(tmp_path):
    corrupt = tmp_path / "corrupt.json.gz"
    corrupt.write_bytes(gzip.compress(b"[{")[:12])
    config = tiny_config(
        tmp_path / "c.yaml",
        **{
            "data": {
                "source": "bundled",
                "bundled": {
                    "dataset": str(corrupt),
                    "references": str(REPO / "resources/datasets/mgmno_reference_phases.json"),
                },
            }
        },
    )
    result = snakemake(tmp_path, config, "results/data/dataset.json.gz")
    assert result.returncode != 0
    log = (tmp_path / "logs/fetch_data.log").read_text()
    assert (
        log.strip() == f"error: {corrupt}: not a readable gzip/JSON file "
        "(Compressed file ended before the end-of-stream marker was reached)"
    )


def test_a_missing_dataset_file_is_named(tmp_path):
    config = tiny_config(
        tmp_path / "m.yaml",
        **{
            "data": {
                "source": "bundled",
                "bundled": {
                    "dataset": "resources/datasets/absent.json.gz",
                    "references": "resources/datasets/mgmno_reference_phases.json",
                },
            }
        },
    )
    result = snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    assert "absent.json.gz" in result.stdout + result.stderr
