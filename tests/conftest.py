"""Shared fixtures: the repository's own bundled data, small subsets of it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Import the package of this checkout even when another one is installed.
sys.path.insert(0, str(REPO))

from pipeline.chemsys import ChemicalSystem  # noqa: E402
from pipeline.records import read_records  # noqa: E402

BUNDLED_DATASET = REPO / "resources" / "datasets" / "mgmno_kim2020.json.gz"
BUNDLED_REFERENCES = REPO / "resources" / "datasets" / "mgmno_reference_phases.json"
DEFAULT_CAPS = {"Mg": 8, "Mn": 8, "O": 12}


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mgmno() -> ChemicalSystem:
    return ChemicalSystem.parse("Mg-Mn-O")


@pytest.fixture(scope="session")
def bundled_records():
    """All 2,627 bundled Mg-Mn-O structures (read once per session)."""
    return read_records(BUNDLED_DATASET)


@pytest.fixture(scope="session")
def reference_records():
    return read_records(BUNDLED_REFERENCES)


@pytest.fixture(scope="session")
def small_records(bundled_records):
    """One structure of each of the first 12 cell compositions: small and varied."""
    seen, out = set(), []
    for record in bundled_records:
        if record.formula not in seen:
            seen.add(record.formula)
            out.append(record)
        if len(out) == 12:
            break
    return out
