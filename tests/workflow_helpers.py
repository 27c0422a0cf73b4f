"""Run the workflow on a tiny configuration: shared by the tests that call `snakemake`.

config = tiny_config(tmp_path / "tiny.yaml", **nested("augment.per_composition", 3))
run_snakemake(tmp_path / "run", config)
planned_jobs(tmp_path / "run", config)   # {"augment": 1, ...}: what a run would do now
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

# Merged over the workflow's config.yaml: every stage sized to run in seconds.
TINY: dict[str, Any] = {
    "augment": {"per_composition": 2},
    "train": {
        "models": ["ccgan"],
        "device": "cpu",
        "checkpoint_every": 10,
        "ccgan": {"steps": 20, "latent_dim": 16, "channels": [16, 32, 16]},
    },
    "sample": {"max_targets": 1, "per_composition": 8, "ccgan": {"classifier_filter": False}},
    "screen": {
        "max_candidates": 3,
        "shards": 2,
        "fmax": 0.2,
        "max_steps": 40,
    },
}


def nested(dotted_key: str, value: Any) -> dict[str, Any]:
    """``nested("a.b", 1) == {"a": {"b": 1}}``, to override one key of `TINY` or config.yaml."""
    head, _, rest = dotted_key.partition(".")
    return {head: nested(rest, value) if rest else value}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in, mappings key by key (as Snakemake merges configs)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def tiny_config(path: Path, **overrides: Any) -> Path:
    """Write `TINY` with `overrides` merged in (top-level keys) as YAML to `path`.

    Parameters
    ----------
    path
        The file to write; a directory gets ``tiny.yaml`` inside it.
    **overrides
        Top-level config keys; mappings are merged into `TINY`'s, e.g.
        ``augment={"seed": 1}`` or ``**nested("augment.per_composition", 3)``.

    Returns
    -------
    Path
        The written file, for ``--configfile``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tiny.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(deep_merge(TINY, overrides), sort_keys=False))
    return path


def run_snakemake(
    workdir: Path,
    configfile: Path,
    *args: str,
    cores: int = 2,
    check: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``snakemake -s <repo>/Snakefile -d workdir --configfile configfile --cores N *args``.

    Parameters
    ----------
    workdir
        Where ``results/`` and ``logs/`` go (created if missing); also the current directory.
    configfile
        Merged over the workflow's ``config.yaml``.
    *args
        More command-line arguments (targets, ``-n``, ``--profile ...``).
    cores
        ``--cores``: the local cores (with a cluster profile, those of local rules).
    check
        Fail the calling test, showing the end of Snakemake's output, on a non-zero exit.
    timeout
        Seconds before the run is killed.
    """
    Path(workdir).mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "snakemake",
        "-s", str(REPO / "Snakefile"),
        "-d", str(workdir),
        "--configfile", str(configfile),
        "--cores", str(cores),
        *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake exited {result.returncode}: {' '.join(command)}\n"
            f"--- stdout (end) ---\n{result.stdout[-4000:]}\n"
            f"--- stderr (end) ---\n{result.stderr[-8000:]}"
        )
    return result


def planned_jobs(workdir: Path, configfile: Path, *args: str) -> Counter[str]:
    """Jobs per rule that a run would execute now (from a dry run's job table).

    The aggregate rule ``all`` is left out: it runs whenever anything else does.
    """
    result = run_snakemake(workdir, configfile, "--dry-run", *args)
    output = result.stdout + result.stderr
    jobs: Counter[str] = Counter()
    lines = output.splitlines()
    if "Job stats:" not in lines:
        if "Nothing to be done" in output:
            return jobs
        raise AssertionError(f"no job table in the dry run's output:\n{output[-4000:]}")
    # job    count
    # -----  -----
    # encode     1
    # total      3
    table = lines[lines.index("Job stats:") + 3 :]
    for line in table:
        name, _, count = line.partition(" ")
        if name == "total" or not count.strip():
            break
        if name != "all":
            jobs[name] = int(count)
    return jobs
