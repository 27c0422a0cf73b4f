from collections import Counter

import pytest
from conftest import DEFAULT_CAPS
from pymatgen.analysis.structure_matcher import StructureMatcher

from pipeline.datasets.augmentation import (
    OPERATIONS,
    AugmentationPlan,
    augment,
    composition_key,
    supercell,
    swap_axes,
)
from pipeline.errors import PipelineInputError


@pytest.fixture(scope="module")
def parents(bundled_records):
    """Small cells (supercells fit the caps) of compositions with 7-10 structures each."""
    wanted = ["Mg1Mn3O4", "Mg3Mn1O4", "Mg1Mn2O3", "Mg1Mn2O5"]
    return [r for r in bundled_records if r.formula in wanted]


@pytest.fixture(scope="module")
def augmented(parents, mgmno):
    return augment(parents, mgmno, DEFAULT_CAPS, AugmentationPlan(12, OPERATIONS, seed=7))


def test_every_composition_is_topped_up_to_the_target(augmented, parents, mgmno):
    counts = Counter(composition_key(r, mgmno) for r in augmented)
    for record in parents:
        assert counts[composition_key(record, mgmno)] >= 12
    assert set(Counter(r.source for r in augmented)) >= {
        "augment:translate",
        "augment:swap",
        "augment:supercell",
    }


def test_augmented_structures_stay_within_the_caps(augmented):
    for record in augmented:
        for element, n in Counter(record.species).items():
            assert n <= DEFAULT_CAPS[element]


def test_every_augmented_structure_is_its_parents_crystal(augmented, parents):
    by_id = {r.id: r.to_structure() for r in parents}
    matcher = StructureMatcher(attempt_supercell=True)
    derived = [r for r in augmented if r.parent is not None]
    supercells = {r.id: r.to_structure() for r in derived if r.source == "augment:supercell"}
    assert derived
    for record in derived:
        parent = by_id.get(record.parent) or supercells[record.parent]
        assert matcher.fit(parent, record.to_structure()), record.id


def test_supercell_and_swap_do_what_they_say(parents):
    parent = parents[0]
    doubled = supercell(parent, (2, 1, 2))
    assert doubled.natoms == 4 * parent.natoms
    assert doubled.to_structure().volume == pytest.approx(4 * parent.to_structure().volume)
    swapped = swap_axes(parent, (0, 2), tag="")
    assert swapped.lattice[0] == parent.lattice[2]
    assert [row[0] for row in swapped.frac_coords] == [row[2] for row in parent.frac_coords]


def test_seeded_and_deterministic(parents, mgmno, augmented):
    again = augment(parents, mgmno, DEFAULT_CAPS, AugmentationPlan(12, OPERATIONS, seed=7))
    assert [(r.id, r.frac_coords) for r in again] == [(r.id, r.frac_coords) for r in augmented]
    other = augment(parents, mgmno, DEFAULT_CAPS, AugmentationPlan(12, OPERATIONS, seed=8))
    assert [r.frac_coords for r in other] != [r.frac_coords for r in augmented]


def test_large_compositions_are_subsampled_originals_first(bundled_records, mgmno):
    big = [r for r in bundled_records if r.formula == "Mg4Mn4O8"]  # 406 structures
    out = augment(big, mgmno, DEFAULT_CAPS, AugmentationPlan(20, OPERATIONS, seed=0))
    assert len(out) == 20 and all(r.parent is None for r in out)


def test_bad_settings_are_clear_errors():
    with pytest.raises(PipelineInputError, match="unknown augmentation operations"):
        AugmentationPlan(12, ("rotate",), seed=0)
    with pytest.raises(PipelineInputError, match="at least 1"):
        AugmentationPlan(0, OPERATIONS, seed=0)
