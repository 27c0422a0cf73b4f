"""The substitution source: training crystals with ions exchanged, ranked by Hautier et al.'s
data-mined substitution probabilities (pymatgen), handed over as substituted."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.analysis.structure_prediction.substitution_probability import (
    SubstitutionProbability,
)
from pymatgen.core import Composition, Species
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from pipeline.errors import PipelineInputError
from pipeline.models import registry
from pipeline.models.base import SampleJob, TargetComposition, TrainJob
from pipeline.represent.substitution import (
    ion_states,
    rank_substitutions,
    substitution_probability,
)
from pipeline.represent.wyckoff import decode, encode_record, save_wyckoff_dataset

CPU = torch.device("cpu")


def species(*names: str) -> list[Species]:
    return [Species.from_str(name) for name in names]


def test_a_one_to_one_substitution_has_pymatgens_probability():
    """MgO's rock salt for MnO: every Mg becomes Mn, the oxygen stays: pymatgen's
    conditional probability of the parent ions given the target's."""
    expected = SubstitutionProbability().cond_prob_list(
        species("Mg2+", "O2-"), species("Mn2+", "O2-")
    )
    got = substitution_probability("MgO", "MnO", [("Mg", "Mn", 4), ("O", "O", 4)])
    assert got == pytest.approx(expected, rel=1e-12)
    # Exchanging the common Mg2+ for Mn2+ is more likely than for Mn4+ (MgO -> MnO2's ions
    # on the same sites is no substitution, but the pair probabilities order it so).
    assert substitution_probability("MgO", "MnO", [("Mg", "Mn", 4), ("O", "O", 4)]) > (
        substitution_probability("MgO", "MnO2", [("Mg", "Mn", 4), ("O", "O", 8)])
    )


def test_partial_substitutions_and_mixed_valences_take_geometric_means():
    """Mn3O4 (one Mn2+, two Mn3+) into MgMn2O4 (Mg2+, Mn3+): the Mg atom sat on a Mn site, the
    Mn atoms on Mn sites; each target ion's factor is the geometric mean over its atoms and
    over the parent's mixed valence."""
    assert ion_states("Mn3O4")["Mn"] == (
        (Species("Mn", 2), pytest.approx(1 / 3)),
        (Species("Mn", 3), pytest.approx(2 / 3)),
    )
    p = SubstitutionProbability()
    mn2, mn3, mg, o = species("Mn2+", "Mn3+", "Mg2+", "O2-")

    def mixed(target):
        return (math.log(p.cond_prob(mn2, target)) + 2 * math.log(p.cond_prob(mn3, target))) / 3

    expected = math.exp(mixed(mg) + mixed(mn3) + math.log(p.cond_prob(o, o)))
    exchanges = [("Mn", "Mg", 2), ("Mn", "Mn", 4), ("O", "O", 8)]
    assert substitution_probability("Mn3O4", "MgMn2O4", exchanges) == pytest.approx(expected)
    # A vacancy adds no factor: the same crystal with two more Mn sites left empty.
    with_vacancy = [*exchanges, ("Mn", None, 2)]
    assert substitution_probability("Mn3O4", "MgMn2O4", with_vacancy) == pytest.approx(expected)


def test_no_probability_without_ions_of_the_data_mined_table():
    assert substitution_probability("Ba", "Sr", [("Ba", "Sr", 2)]) is None  # metals: charge 0
    assert substitution_probability("MgMn2", "Mg2Mn", [("Mn", "Mg", 1)]) is None  # no ionic guess


@pytest.fixture(scope="session")
def parents(bundled_records):
    """Symmetric crystals encoded from 300 bundled structures of at most 14 atoms."""
    small = [r for r in bundled_records if r.natoms <= 14][:300]
    crystals = [encode_record(r, 0.1) for r in small]
    return [c for c in crystals if c.space_group > 1]


def test_substitutions_are_ranked_most_probable_first_and_pruned(parents):
    counts = {"Mg": 2, "Mn": 2, "O": 6}
    rng = np.random.default_rng(0)
    ranked = rank_substitutions(parents, counts, 0.25, 0.0, rng)
    full = [r for r in ranked if not r.substitution.vacancies]
    assert len(full) >= 5
    # Full exchanges first, then the ordered-vacancy derivatives; within each, most probable
    # first, then fewest changed atoms.
    vacancy = [r.substitution.vacancies > 0 for r in ranked]
    assert vacancy == sorted(vacancy)
    probabilities = [r.probability for r in full]
    assert None not in probabilities and probabilities == sorted(probabilities, reverse=True)
    assert len(set(probabilities)) > 1
    for r in ranked[:20]:
        assert r.substitution.changed > 0  # the parent itself is no candidate
        record = decode(r.substitution.crystal, primitive=r.substitution.cell == "primitive")
        assert Counter(record.species) == Counter(counts)
    # One crystal reached from several parents counts once.
    structures = [decode(r.substitution.crystal).to_structure() for r in full[:12]]
    matcher = StructureMatcher(ltol=1e-3, stol=1e-3, angle_tol=1e-2, primitive_cell=False)
    for i, a in enumerate(structures):
        assert not any(matcher.fit(a, b) for b in structures[i + 1 :])
    # The threshold prunes the unlikely ones, and only those.
    threshold = float(np.median(probabilities))
    kept = rank_substitutions(parents, counts, 0.25, threshold, rng)
    assert {r.probability for r in kept if r.probability is not None} == {
        p for p in (r.probability for r in ranked) if p is not None and p >= threshold
    }


@pytest.fixture(scope="session")
def trained(parents, tmp_path_factory):
    out = tmp_path_factory.mktemp("substitution")
    save_wyckoff_dataset(parents, ("Mg", "Mn", "O"), 0.1, out / "w.npz")
    job = TrainJob(out / "w.npz", out, {}, 0, CPU, 1)
    registry.create("substitution").train(job)
    assert pd.read_csv(job.losses_path).empty  # nothing learned, and it says so
    return job.model_path


def sample(model_path, targets, per_composition, seed=0, **options):
    job = SampleJob(model_path, targets, per_composition, options, seed, CPU)
    return registry.create("substitution").sample(job)


def few_substitutions(parents) -> dict[str, int]:
    """A cell composition with 2 to 5 substitutions among ``parents``."""
    for parent in parents:
        counts = parent.template.conventional_counts()
        cations = counts["Mg"] + counts["Mn"]
        for mg in range(cations + 1):
            asked = {"Mg": mg, "Mn": cations - mg, "O": counts["O"]}
            n = len(rank_substitutions(parents, asked, 0.25, 1e-5, np.random.default_rng(0)))
            if 2 <= n <= 5:
                return {el: c for el, c in asked.items() if c}
    raise AssertionError("no composition with a few substitutions")


def test_samples_are_the_ranked_substitutions_then_rattled_repeats(trained, parents):
    counts = few_substitutions(parents)
    ranked = rank_substitutions(parents, counts, 0.25, 1e-5, np.random.default_rng([0, 0]))
    n = len(ranked)
    target = TargetComposition(Composition(counts).formula.replace(" ", ""), counts)
    result = sample(trained, [target], n + 3)
    (report,) = result.reports
    assert (report.asked, report.decoded, report.kept) == (n + 3, n + 3, n + 3)
    matcher = StructureMatcher()
    for i, record in enumerate(result.records):
        assert record.id == f"substitution-{target.label}-{i:05d}"
        assert record.source == "substitution"
        assert Counter(record.species) == Counter(counts)
        chosen = ranked[i % n]
        assert record.provenance["parent"] == chosen.parent
        assert record.provenance["substitution"] == chosen.description
        assert int(record.properties["substitution_rank"]) == i % n
        assert record.properties["substitution_probability"] == pytest.approx(chosen.probability)
        structure = record.to_structure()
        sub = chosen.substitution
        exact = decode(sub.crystal, primitive=sub.cell == "primitive").to_structure()
        if i < n:  # as substituted: the parent's space group and geometry
            assert record.provenance["rattled"] == "false"
            assert np.allclose(structure.frac_coords, exact.frac_coords)
            number = SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number()
            assert number == sub.crystal.space_group == int(record.properties["space_group"])
        else:  # a repeat: every atom moved by at most the rattle, the same structure type
            assert record.provenance["rattled"] == "true"
            delta = structure.frac_coords - exact.frac_coords
            moved = np.linalg.norm(
                exact.lattice.get_cartesian_coords(delta - np.round(delta)), axis=1
            )
            assert 0 < moved.max() <= 0.1 + 1e-9
            assert matcher.fit(structure, exact)
    again = sample(trained, [target], n + 3)
    assert [r.frac_coords for r in again.records] == [r.frac_coords for r in result.records]


def test_a_target_without_substitutions_gets_nothing_and_foreign_elements_fail(trained):
    lonely = TargetComposition("Mg1Mn1O7", {"Mg": 1, "Mn": 1, "O": 7})
    result = sample(trained, [lonely], 4)
    assert result.records == []
    assert [(r.asked, r.decoded, r.kept) for r in result.reports] == [(4, 0, 0)]
    with pytest.raises(PipelineInputError, match="foreign elements"):
        sample(trained, [TargetComposition("Ba1O1", {"Ba": 1, "O": 1})], 2)
    with pytest.raises(PipelineInputError, match="min_probability"):
        sample(trained, [lonely], 2, min_probability=2.0)


def test_the_source_is_registered_on_the_wyckoff_crystals():
    assert registry.representation("substitution") == "wyckoff"
    assert registry.model_class("substitution").name == "substitution"
