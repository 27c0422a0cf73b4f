"""The DFT check end to end with GPAW, on the Mg-O corner of the shipped CHGNet hull.

Small settings (300 eV, 1 k-point per Å⁻¹) keep it to a minute or two of CPU. Needs the ``dft``
extra (GPAW, gpaw-data); skipped without it, except where HTVS_REQUIRE_GPAW=1 makes a missing
GPAW a failure.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from pipeline.dft.cache import DftCache
from pipeline.dft.check import calculate, check_candidates
from pipeline.dft.gpaw_calc import DftSettings, gpaw_versions
from pipeline.records import CrystalRecord, read_records
from pipeline.screen.criteria import Criteria

if "not installed" in gpaw_versions().values():
    if os.environ.get("HTVS_REQUIRE_GPAW") == "1":
        pytest.fail("GPAW is not installed: see docs/dft.md", pytrace=False)
    pytest.skip("GPAW not installed (the dft extra)", allow_module_level=True)

pytestmark = pytest.mark.slow
SHIPPED_HULL = Path(__file__).resolve().parent.parent / "resources/hull"
SMALL = dataclasses.replace(DftSettings(), ecut=300.0, kpoint_density=1.0, max_iterations=100)

# The verdict thresholds the assertions are written for.
CRITERIA = dataclasses.replace(Criteria.default(), synthesizable=0.08, metastable=0.2)


@pytest.fixture(scope="module")
def mg_o_phases() -> list[CrystalRecord]:
    records = read_records(SHIPPED_HULL / "mgmno_kim2020_chgnet-0.3.0.json.gz")
    return [r for r in records if r.id in ("Mg", "O2", "MgO")]


@pytest.fixture(scope="module")
def strained(mg_o_phases) -> CrystalRecord:
    """The ML rock salt stretched by 4% per axis: above the hull in any method."""
    mgo = next(r for r in mg_o_phases if r.id == "MgO")
    structure = mgo.to_structure()
    structure.scale_lattice(structure.volume * 1.04**3)
    record = CrystalRecord.from_structure(structure, "stretched-MgO")
    record.properties["energy_per_atom"] = mgo.properties["energy_per_atom"] + 0.05
    return record


@pytest.fixture(scope="module")
def checked(mg_o_phases, strained, tmp_path_factory):
    """The check run twice on one cache: (first row, second row, cache folder)."""
    cache_dir = tmp_path_factory.mktemp("dft_cache")

    def run():
        return check_candidates(
            [strained],
            {strained.id: 0.05},
            mg_o_phases,
            SMALL,
            DftCache(cache_dir),
            CRITERIA,
        )[0]

    return run(), run(), cache_dir


def test_a_stretched_rock_salt_sits_above_the_rock_salt(checked):
    row = checked[0]
    assert row.dft_error == ""
    assert row.dft_references == "Mg MgO O2"  # the polymorph and the competing elements
    assert 0.0 < row.e_above_hull_dft < 0.5
    assert row.dft_decomposition == "1 MgO"
    assert row.passes_dft == (row.e_above_hull_dft <= 0.08)
    assert row.dft_agrees == row.passes_dft  # the ML E_hull given was 0.05


def test_the_second_run_reads_every_calculation_from_the_cache(checked):
    first, second, cache_dir = checked
    assert not first.dft_cached and second.dft_cached
    assert second.e_above_hull_dft == first.e_above_hull_dft
    assert len(list(cache_dir.glob("*.json"))) == 4  # Mg, O2, MgO, the candidate


def test_oxygen_is_a_triplet_and_magnesia_is_not_magnetic(mg_o_phases, checked):
    by_id = {r.id: r for r in mg_o_phases}
    cache = DftCache(checked[2])
    o2 = calculate("O2", by_id["O2"].to_structure(), SMALL, cache)
    mgo = calculate("MgO", by_id["MgO"].to_structure(), SMALL, cache)
    assert o2.cached and mgo.cached
    assert o2.result.magnetic_moment == pytest.approx(2.0, abs=0.05)
    assert abs(mgo.result.magnetic_moment) < 0.05
    # MP2020: the oxide correction on MgO only (no U metal), none on the element
    assert mgo.corrected_energy_per_atom < mgo.result.energy_per_atom
    assert o2.corrected_energy_per_atom == pytest.approx(o2.result.energy_per_atom)
