"""The conda environments (envs/*.yaml) against the rules that use them.

Conda cannot create environments here (no channel reachable), so the check is static:
every rule that runs something names an env; the env lists, pinned, every third-party
package that the rule's `python -m pipeline.stages.<stage>` imports, directly or through other
`pipeline` modules (found with `ast`, imports inside functions included); a package has
one version across all envs; pyproject.toml declares every import of the package.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from itertools import chain
from pathlib import Path

import pytest
import tomllib
import yaml
from workflow_helpers import REPO, run_snakemake, tiny_config

ENVS_DIR = REPO / "envs"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
# conda-forge names that differ from the PyPI distribution of an import
CONDA_NAMES = {"matplotlib": {"matplotlib-base"}, "torch": {"pytorch"}}
UNPINNED_OK = {"pip"}


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """What the env check needs of one rule, read from its .smk source."""

    name: str
    source: Path
    conda_env: str | None  # as written in `conda:`, relative to the rule file
    cli_modules: tuple[str, ...]  # the `python -m pipeline.<...>` the rule calls
    runs_something: bool  # has shell/run/script; `rule all` only collects inputs

    def env_path(self) -> Path:
        return (self.source.parent / self.conda_env).resolve()


RULE_HEADER = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
TOP_LEVEL_LINE = re.compile(r"\n(?=[^\s#])")  # a rule's body ends at the next unindented code


def parse_rules(path: Path) -> list[RuleSpec]:
    """The rules of one Snakefile/.smk file."""
    text = path.read_text()
    rules = []
    for header in RULE_HEADER.finditer(text):
        body = TOP_LEVEL_LINE.split(text[header.end() :], maxsplit=1)[0]
        conda = re.search(r"^\s+conda:\s*[\"']([^\"']+)[\"']", body, re.MULTILINE)
        rules.append(
            RuleSpec(
                name=header.group(1),
                source=path,
                conda_env=conda.group(1) if conda else None,
                cli_modules=tuple(re.findall(r"python -m (pipeline(?:\.\w+)*)", body)),
                runs_something=bool(
                    re.search(r"^\s+(shell|run|script|notebook|wrapper):", body, re.MULTILINE)
                ),
            )
        )
    return rules


USE_RULE = re.compile(r"^use rule (\w+) as (\w+)", re.MULTILINE)


def inherited_rules(paths: list[Path], parents: list[RuleSpec]) -> list[RuleSpec]:
    """The rules made by ``use rule <parent> as <name>``: the parent's env and command (the
    discovery rounds override inputs, outputs and logs only)."""
    by_name = {rule.name: rule for rule in parents}
    return [
        dataclasses.replace(by_name[match.group(1)], name=match.group(2))
        for path in paths
        for match in USE_RULE.finditer(path.read_text())
    ]


DEFINED_RULES = [rule for path in RULE_FILES for rule in parse_rules(path)]
ALL_RULES = DEFINED_RULES + inherited_rules(RULE_FILES, DEFINED_RULES)
WORKING_RULES = [rule for rule in ALL_RULES if rule.runs_something]


# --- imports of the pipeline package --------------------------------------------------


def module_files(module: str) -> list[Path]:
    """The files Python executes for `import module` (parent packages' __init__ included)."""
    parts = module.split(".")
    files = []
    for depth in range(1, len(parts) + 1):
        path = REPO.joinpath(*parts[:depth])
        if (path / "__init__.py").exists():
            files.append(path / "__init__.py")
        elif path.with_suffix(".py").exists():
            files.append(path.with_suffix(".py"))
        else:
            raise FileNotFoundError(f"no module {'.'.join(parts[:depth])} in {REPO}")
    return files


def is_pipeline_module(module: str) -> bool:
    try:
        module_files(module)
    except FileNotFoundError:
        return False
    return module.split(".")[0] == "pipeline"


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of everything `path` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            # `from pipeline.datasets import bundled` may import a submodule
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@cache
def third_party_imports(cli_module: str) -> frozenset[str]:
    """Top-level names of the non-stdlib, non-`pipeline` modules that
    `python -m cli_module` can import, following `pipeline` imports transitively."""
    entry = module_files(cli_module)
    main = entry[-1].parent / "__main__.py"
    if entry[-1].name == "__init__.py" and main.exists():
        entry.append(main)  # `python -m package` runs package/__main__.py
    found: set[str] = set()
    seen: set[Path] = set()
    queue = list(entry)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        parts = path.relative_to(REPO).with_suffix("").parts
        package = ".".join(parts[:-1] if parts[-1] != "__init__" else parts[:-1])
        for module in imported_modules(path, package):
            top = module.split(".")[0]
            if top == "pipeline":
                if is_pipeline_module(module):
                    queue.extend(module_files(module))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return frozenset(found)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def installed_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(import_name: str) -> set[str]:
    """PyPI distributions (normalized) that provide a top-level import, as installed here."""
    distributions = installed_distributions().get(import_name)
    if not distributions:
        pytest.fail(f"`import {import_name}` is not installed here: cannot map it to a package")
    return {normalize(d) for d in distributions}


# --- envs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str | None  # None when unpinned
    via_pip: bool


def env_pins(path: Path) -> list[Pin]:
    """The packages of a conda env file, conda and pip sections."""
    spec = yaml.safe_load(path.read_text())
    pins = []
    for dependency in spec["dependencies"]:
        if isinstance(dependency, dict):
            for requirement in dependency.get("pip", []):
                name, _, version = requirement.partition("==")
                pins.append(Pin(normalize(name.strip()), version.strip() or None, True))
        else:
            name, _, version = str(dependency).partition("=")
            version = version.lstrip("=").strip()
            pins.append(Pin(normalize(name.strip()), version or None, False))
    return pins


ENV_FILES = sorted(ENVS_DIR.glob("*.yaml"))


# --- tests ----------------------------------------------------------------------------


def test_the_rule_parser_sees_every_rule_of_the_workflow(tmp_path) -> None:
    listed = run_snakemake(tmp_path, tiny_config(tmp_path / "tiny.yaml"), "--list-rules")
    assert sorted(listed.stdout.split()) == sorted(rule.name for rule in ALL_RULES)


def test_import_scan_follows_pipeline_modules_and_imports_inside_functions() -> None:
    # mp_api is imported only inside a function of pipeline.datasets.materials_project, which
    # pipeline/stages/data.py reaches through the package; pymatgen comes via records.
    assert {"mp_api", "pymatgen", "pandas", "monty"} <= third_party_imports("pipeline.stages.data")
    assert "mp_api" not in third_party_imports("pipeline.stages.encode")


@pytest.mark.parametrize("rule", WORKING_RULES, ids=lambda rule: rule.name)
def test_rule_names_an_existing_env_and_calls_a_pipeline_cli(rule: RuleSpec) -> None:
    assert rule.conda_env, f"rule {rule.name} ({rule.source.name}) has no conda: env"
    assert rule.env_path().parent == ENVS_DIR and rule.env_path().exists(), rule.conda_env
    assert rule.cli_modules, f"rule {rule.name} calls no `python -m pipeline.stages.<stage>`"


@pytest.mark.parametrize("rule", WORKING_RULES, ids=lambda rule: rule.name)
def test_rule_env_lists_every_package_its_cli_imports(rule: RuleSpec) -> None:
    listed = {pin.name for pin in env_pins(rule.env_path())}
    missing = {}
    for cli_module in rule.cli_modules:
        for import_name in sorted(third_party_imports(cli_module)):
            provided_by = distributions_of(import_name)
            provided_by |= {alias for d in provided_by for alias in CONDA_NAMES.get(d, ())}
            if not provided_by & listed:
                missing[import_name] = sorted(provided_by)
    assert not missing, f"{rule.conda_env} lacks, for rule {rule.name}: {missing}"


@pytest.mark.parametrize("env", ENV_FILES, ids=lambda path: path.name)
def test_env_pins_every_package(env: Path) -> None:
    spec = yaml.safe_load(env.read_text())
    assert spec["name"].startswith("crystal-htvs-") and spec["channels"][0] == "conda-forge"
    unpinned = [
        pin.name for pin in env_pins(env) if pin.version is None and pin.name not in UNPINNED_OK
    ]
    assert not unpinned, f"{env.name}: unpinned {unpinned}"


def test_envs_agree_on_every_version() -> None:
    versions: dict[str, set[str]] = defaultdict(set)
    for env in ENV_FILES:
        for pin in env_pins(env):
            if pin.version:
                versions[pin.name].add(pin.version)
    disagreeing = {name: sorted(v) for name, v in versions.items() if len(v) > 1}
    assert not disagreeing, f"one package, several versions across envs/: {disagreeing}"


def test_pyproject_declares_every_import_of_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # the optional extras count: pipeline.dft imports GPAW and atomate2 only inside functions
    requirements = [*project["dependencies"], *chain(*project["optional-dependencies"].values())]
    declared = {normalize(re.split(r"[<>=!~;\[ ]", d)[0]) for d in requirements}
    modules = {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / "pipeline").rglob("*.py")
    }
    imports = set().union(*(third_party_imports(module) for module in modules))
    undeclared = sorted(name for name in imports if not distributions_of(name) & declared)
    assert not undeclared, f"pyproject.toml does not declare: {undeclared}"
