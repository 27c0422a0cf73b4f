"""The SLURM profile on a real SLURM: a single-node cluster on this machine.

tests/slurm/start_cluster.sh installs the Debian packages (munge, slurmctld, slurmd,
slurm-client) when missing and starts the three daemons; the tiny pipeline then runs with
``--profile profiles/slurm``, and the test checks with ``scontrol`` that every job went
through SLURM with the resources its rule asks for, and that the outputs equal a local
run's. stop_cluster.sh stops the daemons by PID afterwards.

Needs root and apt (or SLURM already installed); skipped otherwise, except where
HTVS_REQUIRE_SLURM=1 (set by .ci/run) turns a missing requirement into a failure.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from workflow_helpers import REPO, planned_jobs, run_snakemake, tiny_config

pytestmark = [pytest.mark.workflow, pytest.mark.slurm, pytest.mark.slow]

CLUSTER_SCRIPTS = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm"
CONF = Path("/etc/slurm/slurm.conf")
CONF_MARKER = "# crystal-htvs single-node test cluster"
NODE_PARTITION = "cpu"  # the one partition of the test cluster


def _cannot_run(reason: str) -> None:
    if os.environ.get("HTVS_REQUIRE_SLURM") == "1":
        pytest.fail(f"HTVS_REQUIRE_SLURM=1 but the SLURM test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory) -> Path:
    """A running single-node cluster for this module; yields its state directory."""
    if os.geteuid() != 0:
        _cannot_run("needs root to install and start munged, slurmctld and slurmd")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        _cannot_run("SLURM is not installed and there is no apt-get to install it")
    if CONF.exists() and CONF_MARKER not in CONF.read_text():
        _cannot_run(f"{CONF} belongs to a SLURM set up on this machine: left alone")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _cannot_run('snakemake-executor-plugin-slurm missing: pip install -e ".[slurm]"')

    state_dir = tmp_path_factory.mktemp("slurm_cluster")
    try:
        subprocess.run(
            ["bash", str(CLUSTER_SCRIPTS / "start_cluster.sh"), str(state_dir)],
            check=True, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    except subprocess.CalledProcessError as error:
        _stop_cluster(state_dir)
        raise AssertionError(
            f"start_cluster.sh failed:\n{error.stdout}\n{error.stderr}\n" + _daemon_logs(state_dir)
        ) from None
    yield state_dir
    _stop_cluster(state_dir)


def _stop_cluster(state_dir: Path) -> None:
    subprocess.run(
        ["bash", str(CLUSTER_SCRIPTS / "stop_cluster.sh"), str(state_dir)],
        check=True, timeout=120,
    )  # fmt: skip


def _daemon_logs(state_dir: Path) -> str:
    return "\n".join(
        f"--- {log.name} ---\n{log.read_text()[-3000:]}" for log in state_dir.glob("*.log")
    )


def test_cluster_scripts_stop_exactly_the_daemons_they_started(slurm_cluster) -> None:
    started = (slurm_cluster / "started.pids").read_text().split("\n")
    daemons = dict(line.split() for line in started if line)
    assert {"slurmctld", "slurmd"} <= set(daemons)
    for name, pid in daemons.items():
        assert Path(f"/proc/{pid}/comm").read_text().strip() == name


GPU_REQUESTS = {"gpu", "gres", "gpu_model", "slurm_extra"}


def cluster_set_resources(node_mem_mb: int) -> list[str]:
    """The profile's set-resources as ``--set-resources`` arguments, adapted to the test node.

    A command-line ``--set-resources`` replaces the profile's whole list, so every entry is
    passed on, adapted to a node without GPUs: the node's partition instead of the GPU
    partition, ``gpu=0`` over the rule's own request, memory capped at the node's.
    """
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    arguments = []
    for rule, resources in profile.get("set-resources", {}).items():
        adapted: dict[str, Any] = {
            name: value for name, value in resources.items() if name not in GPU_REQUESTS
        }
        adapted["slurm_partition"] = NODE_PARTITION
        adapted["gpu"] = 0
        if "mem_mb" in adapted:
            adapted["mem_mb"] = min(int(adapted["mem_mb"]), node_mem_mb)
        arguments += [f"{rule}:{name}={value}" for name, value in adapted.items()]
    return arguments


def scontrol_job(job_id: str) -> dict[str, str]:
    """``scontrol show job`` of a job as a mapping (finished jobs stay for MinJobAge)."""
    line = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job_id],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(re.findall(r"(\w+)=(\S*)", line))


def node_memory_mb() -> int:
    node = subprocess.run(
        ["scontrol", "--oneliner", "show", "node"], check=True, capture_output=True, text=True
    ).stdout
    return int(re.search(r"RealMemory=(\d+)", node).group(1))


def rule_resources(workdir: Path, config: Path, *args: str) -> dict[str, dict[str, str]]:
    """Each planned job's ``resources:`` line from a forced dry run, by rule."""
    dry_run = run_snakemake(workdir, config, "--dry-run", "--forceall", *args).stdout
    resources, rule = {}, None
    for line in dry_run.splitlines():
        if match := re.match(r"(?:local)?rule (\w+):", line):
            rule = match.group(1)
        elif rule and line.strip().startswith("resources:"):
            resources[rule] = dict(re.findall(r"(\w+)=([^,\s]+)", line))
    return resources


def slurm_time(minutes: int) -> str:
    """Minutes as SLURM prints a time limit: ``[D-]HH:MM:SS``."""
    days, rest = divmod(int(minutes), 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def without_time(path: Path) -> dict:
    """An environment record without its time stamp."""
    record = json.loads(path.read_text())
    record.pop("recorded_at")
    return record


def assert_same_outputs(expected_dir: Path, actual_dir: Path) -> None:
    """Same files with the same content; `.gz` compared decompressed, `.npz` by array."""
    expected = sorted(p.relative_to(expected_dir) for p in expected_dir.rglob("*") if p.is_file())
    actual = sorted(p.relative_to(actual_dir) for p in actual_dir.rglob("*") if p.is_file())
    assert actual == expected
    for relative in expected:
        want, got = expected_dir / relative, actual_dir / relative
        if relative.suffix == ".npz":
            with np.load(want) as a, np.load(got) as b:
                assert sorted(a.files) == sorted(b.files), relative
                for key in a.files:
                    np.testing.assert_array_equal(a[key], b[key], err_msg=str(relative))
        elif relative == Path("provenance/environment.json"):
            # the record of where each ran: equal but for when it was written
            assert without_time(got) == without_time(want), relative
        elif relative.suffix == ".gz":
            assert gzip.decompress(got.read_bytes()) == gzip.decompress(want.read_bytes()), relative
        else:
            assert got.read_bytes() == want.read_bytes(), relative


def test_tiny_pipeline_runs_through_slurm_like_a_local_run(slurm_cluster, tmp_path) -> None:
    config = tiny_config(tmp_path / "tiny.yaml")
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    slurm_logs = tmp_path / "slurm_logs"
    run_snakemake(local_dir, config)
    slurm_arguments = [
        "--profile", str(PROFILE),
        # no accounting database on the test cluster: sacct sees no jobs
        "--slurm-status-command", "squeue", "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-logdir", str(slurm_logs), "--slurm-keep-successful-logs",
        "--set-resources", *cluster_set_resources(node_memory_mb()),
    ]  # fmt: skip
    submitted = planned_jobs(slurm_dir, config, *slurm_arguments)
    expected_resources = rule_resources(slurm_dir, config, *slurm_arguments)

    run = run_snakemake(slurm_dir, config, *slurm_arguments, timeout=1200)

    # One SLURM job per planned job, each finished on the cluster with its rule's resources.
    # The plugin writes each job's log to <logdir>/rule_<rule>/[<wildcards>/]<SLURM job id>.log
    job_logs = {
        log.stem: log.relative_to(slurm_logs).parts[0].removeprefix("rule_")
        for log in slurm_logs.rglob("*.log")
    }
    assert sorted(job_logs.values()) == sorted(submitted.elements()), run.stderr[-3000:]
    for job_id, rule in job_logs.items():
        job = scontrol_job(job_id)
        assert job["JobState"] == "COMPLETED", (rule, job)
        assert job["Partition"] == NODE_PARTITION
        assert Path(job["WorkDir"]) == slurm_dir
        assert job["MinMemoryNode"] == f"{expected_resources[rule]['mem_mb']}M"
        assert job["TimeLimit"] == slurm_time(int(expected_resources[rule]["runtime"]))
    assert planned_jobs(slurm_dir, config) == {}, "the SLURM run left work undone"
    assert_same_outputs(local_dir / "results", slurm_dir / "results")
