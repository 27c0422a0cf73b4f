"""The pinned install (constraints.txt) and the environment record of a run."""

from __future__ import annotations

import json
import re
from importlib.metadata import version

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pipeline.provenance import environment_record, lock_differences, read_lock
from pipeline.stages import environment as environment_stage


@pytest.fixture(scope="module")
def pins(repo):
    return read_lock(repo / "constraints.txt")


def test_every_dependency_of_the_default_install_is_pinned_within_its_bounds(repo, pins):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = [
        Requirement(r) for r in (*project["dependencies"], *extras["test"], *extras["slurm"])
    ]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    # The optional [dft] extra stays out of the default install's pins.
    for requirement in extras.get("dft", []):
        assert canonicalize_name(Requirement(requirement).name) not in pins


def test_torch_is_pinned_at_the_release_the_install_puts_first(repo, pins):
    ci = (repo / ".ci/run").read_text()
    readme = (repo / "README.md").read_text()
    (first,) = set(re.findall(r"pip install torch==(\S+)", ci))
    assert first in re.findall(r"pip install torch==(\S+)", readme)
    assert pins["torch"] == first
    assert "-c constraints.txt" in ci and "-c constraints.txt" in readme


def test_the_record_names_what_differs_from_the_pins(tmp_path):
    torch_release = Version(version("torch")).public  # e.g. 2.13.0 for 2.13.0+cpu
    lock = tmp_path / "constraints.txt"
    lock.write_text(
        "# a comment\n"
        f"numpy=={version('numpy')}\n"
        f"torch=={torch_release}\n"
        "pandas==0.0.1\n"
        "no-such-package-here==1.0\n"
    )
    assert lock_differences(lock) == {
        "pandas": {"pinned": "0.0.1", "installed": version("pandas")},
        "no-such-package-here": {"pinned": "1.0", "installed": "not installed"},
    }
    record = environment_record(lock)
    assert record.packages["numpy"] == version("numpy")
    assert record.cpu_model and record.cpu_count >= 1
    assert record.torch_blas["blas"] not in ("", "?")
    assert record.numpy_blas["blas"].strip()
    assert set(record.differs_from_lock) == {"pandas", "no-such-package-here"}


def test_environment_stage_writes_the_record_with_the_relax_jobs_threads(tmp_path, repo):
    import torch
    from threadpoolctl import threadpool_limits

    out = tmp_path / "provenance" / "environment.json"
    threads = torch.get_num_threads()
    with threadpool_limits(limits=None):
        code = environment_stage.main(
            ["--threads", "1", "--constraints", str(repo / "constraints.txt"), "--out", str(out)]
        )
    torch.set_num_threads(threads)
    assert code == 0
    record = json.loads(out.read_text())
    assert record["torch_threads"] == 1
    assert all(
        pool["num_threads"] == 1 for pool in record["thread_pools"] if pool["user_api"] == "blas"
    )
    assert record["lock_file"].endswith("constraints.txt")
    assert record["packages"]["torch"] == version("torch")
    missing = ["--threads", "1", "--constraints", str(tmp_path / "none.txt"), "--out", str(out)]
    assert environment_stage.main(missing) == 2
