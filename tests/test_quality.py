"""Quality metrics of generated samples (pipeline.quality) and the evaluate CLI."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from pipeline.quality import (
    KIM2020_REFERENCE,
    ModelQuality,
    compositionally_valid,
    evaluate_model,
    ks_statistics,
    structurally_valid,
)
from pipeline.records import CrystalRecord, write_records
from pipeline.screen.dedup import (
    can_match,
    default_matcher,
    novel_mask,
    prepare,
    unique_indices,
)
from pipeline.stages.evaluate import main as evaluate_main


def squeezed(record: CrystalRecord, distance: float) -> CrystalRecord:
    """A copy whose second atom sits ``distance`` Å from the first."""
    out = copy.deepcopy(record)
    structure = out.to_structure()
    out.frac_coords[1] = list(
        structure.lattice.get_fractional_coords(
            structure[0].coords + np.array([distance, 0.0, 0.0])
        )
    )
    out.id = f"{record.id}-squeezed"
    return out


def test_structural_validity_is_the_half_angstrom_rule(small_records):
    assert all(structurally_valid(r.to_structure()) for r in small_records)
    assert not structurally_valid(squeezed(small_records[0], 0.4).to_structure())
    # Periodic images count: one atom in a 0.45 Å cube sits 0.45 Å from its own images.
    assert not structurally_valid(Structure(Lattice.cubic(0.45), ["Mg"], [[0, 0, 0]]))
    assert structurally_valid(Structure(Lattice.cubic(3.0), ["Mg"], [[0, 0, 0]]))


def test_compositional_validity_follows_cdvae_and_reports_mixed_valence():
    assert compositionally_valid("MgO") and compositionally_valid("MgMn2O4")
    assert not compositionally_valid("MgO3")  # no charge-neutral single-valence assignment
    # Hausmannite is Mn(II)Mn(III)2O4: only the mixed-valence expansion accepts it.
    assert not compositionally_valid("Mn3O4")
    assert compositionally_valid("Mn3O4", mixed_valence=True)


def test_duplicates_and_supercells_are_not_unique(small_records):
    structures = [r.to_structure() for r in small_records[:4]]
    supercell = structures[1].copy()
    supercell.make_supercell([2, 1, 1])
    pool = structures + [structures[0].copy(), supercell]
    assert unique_indices([prepare(s) for s in pool], default_matcher()) == [0, 1, 2, 3]


def test_a_training_structure_is_not_novel(small_records):
    training = [prepare(r.to_structure()) for r in small_records[:3]]
    perturbed = small_records[0].to_structure()
    perturbed.perturb(0.02, min_distance=0.01)  # within the matcher's tolerances
    strained = small_records[1].to_structure()
    strained.apply_strain([0.5, 0.0, 0.0])  # beyond the matcher's length tolerance
    candidates = [prepare(s) for s in (perturbed, small_records[5].to_structure(), strained)]
    assert novel_mask(candidates, training, default_matcher()) == [False, True, True]


def test_the_free_prefilter_never_rejects_a_pair_the_matcher_accepts(bundled_records):
    """On pairs of bundled structures of equal formula and primitive size."""
    prepared = [prepare(r.to_structure()) for r in bundled_records[:300:3]]
    matcher, accepted = StructureMatcher(), 0
    for a in prepared:
        for b in prepared:
            if a is b or (a.formula, a.nsites) != (b.formula, b.nsites):
                continue
            if matcher.fit(a.primitive, b.primitive):
                accepted += 1
                assert can_match(a, b, matcher.ltol)
    assert accepted > 0


def test_ks_statistic_is_zero_for_the_same_set_and_one_for_disjoint_sets(small_records):
    structures = [r.to_structure() for r in small_records]
    assert all(v == 0.0 for v in ks_statistics(structures, structures).values())
    stretched = [s.copy() for s in structures]
    for s in stretched:
        s.scale_lattice(s.volume * 30)  # every length x ~3.1, beyond every training length
    ks = ks_statistics(stretched, structures)
    assert ks["a"] == ks["b"] == ks["c"] == 1.0
    # Angles are unchanged up to rounding (which K-S sees as a few ties broken).
    assert ks["alpha"] < 0.2 and ks["beta"] < 0.2 and ks["gamma"] < 0.2


def test_rates_count_against_the_samples_generated(small_records):
    samples = [copy.deepcopy(r) for r in small_records[:4]]
    for i, s in enumerate(samples):
        s.id, s.source = f"m-{i}", "m"
    samples.append(squeezed(samples[0], 0.3))  # invalid, never relaxed
    relaxed = samples[:4] + [copy.deepcopy(samples[0])]  # a duplicate after relaxation
    relaxed[-1].id = "m-dup"
    e_hull = {"m-0": 0.0, "m-1": 0.05, "m-2": 0.15, "m-3": 0.5, "m-dup": 0.0}
    training = [small_records[1].to_structure()]  # m-1 is a known structure
    quality = evaluate_model("m", samples, relaxed, e_hull, training)
    assert quality.n_generated == 5 and quality.n_relaxed == 5
    assert quality.structural_validity == pytest.approx(4 / 5)
    assert quality.uniqueness == pytest.approx(4 / 5)
    assert quality.novelty == pytest.approx(3 / 5)
    assert quality.count_e_hull_le_synthesizable == 3  # m-0, m-1, m-dup
    assert quality.count_e_hull_le_metastable == 4
    assert quality.sun_rate == pytest.approx(1 / 5)  # m-0 only: m-1 known, m-dup a duplicate
    assert quality.fraction_of_relaxed_e_hull_le_synthesizable == pytest.approx(3 / 5)
    assert quality.fraction_of_relaxed_e_hull_le_metastable == pytest.approx(4 / 5)
    # As Kim et al. counted: m-dup is a duplicate after relaxation, m-1 rediscovered (it
    # relaxed into a training structure); m-0, m-2, m-3 are new, at 0.0, 0.15 and 0.5.
    assert (quality.n_relaxed_unique, quality.n_rediscovered, quality.n_new) == (4, 1, 3)
    assert quality.count_new_e_hull_le_synthesizable == 1
    assert quality.fraction_new_e_hull_le_synthesizable == pytest.approx(1 / 3)
    assert quality.fraction_new_e_hull_le_metastable == pytest.approx(2 / 3)
    # Uniqueness and novelty are of the samples as generated, relaxed or not.
    unrelaxed = evaluate_model("m", samples, [], {}, training)
    assert (unrelaxed.uniqueness, unrelaxed.novelty) == (quality.uniqueness, quality.novelty)
    assert unrelaxed.n_relaxed == 0 and unrelaxed.sun_rate == 0.0
    assert np.isnan(unrelaxed.fraction_of_relaxed_e_hull_le_metastable)


def test_relaxing_into_a_relaxed_hull_polymorph_is_rediscovery_not_new(small_records):
    """A structure that matches no unrelaxed prototype but the prototype's relaxed polymorph."""
    samples = [copy.deepcopy(r) for r in small_records[:3]]
    for i, s in enumerate(samples):
        s.id, s.source = f"m-{i}", "m"
    prototype = small_records[1].to_structure()
    relaxed_polymorph = prototype.copy()
    relaxed_polymorph.apply_strain([0.5, 0.0, 0.0])  # beyond the matcher's tolerance
    samples[1] = CrystalRecord.from_structure(relaxed_polymorph, id="m-1", source="m")
    e_hull = {"m-0": 0.0, "m-1": 0.0, "m-2": 0.1}
    quality = evaluate_model("m", samples, samples, e_hull, [prototype])
    assert quality.n_rediscovered == 0 and quality.n_new == 3
    known = [prepare(relaxed_polymorph)]
    quality = evaluate_model("m", samples, samples, e_hull, [prototype], known_relaxed=known)
    assert quality.n_rediscovered == 1 and quality.n_new == 2
    assert quality.count_new_e_hull_le_synthesizable == 1  # m-0; m-1 is not new
    assert quality.fraction_new_e_hull_le_synthesizable == pytest.approx(1 / 2)
    # Per generated, m-1 still counts: the two rates answer different questions.
    assert quality.fraction_e_hull_le_synthesizable == pytest.approx(2 / 3)


def test_evaluate_cli_writes_metrics_beside_kim2020(small_records, tmp_path):
    samples = [copy.deepcopy(r) for r in small_records[:6]]
    for i, s in enumerate(samples):
        s.id, s.source = f"g-{i}", "gan"
    write_records(samples, tmp_path / "gan" / "samples.json.gz")  # results/samples/<model>/
    write_records(samples[:5], tmp_path / "relaxed.json.gz")
    write_records(small_records[6:], tmp_path / "dataset.json.gz")
    (tmp_path / "hull.csv").write_text(
        "id,energy_per_atom,e_above_hull\n" + "".join(f"g-{i},-7,{0.05 * i}\n" for i in range(5))
    )
    out = tmp_path / "metrics.json"
    assert (
        evaluate_main(
            [
                "--samples",
                str(tmp_path / "gan" / "samples.json.gz"),
                "--relaxed",
                str(tmp_path / "relaxed.json.gz"),
                "--hull",
                str(tmp_path / "hull.csv"),
                "--training",
                str(tmp_path / "dataset.json.gz"),
                "--out",
                str(out),
                "--out-table",
                str(tmp_path / "metrics.html"),
                "--out-symmetry",
                str(tmp_path / "symmetry.csv"),
                "--out-plot",
                str(tmp_path / "crystal_systems.png"),
            ]
        )
        == 0
    )
    metrics = json.loads(out.read_text())
    gan = metrics["models"]["gan"]
    # Space groups of the training set and of each model's raw and relaxed structures.
    symmetry = pd.read_csv(tmp_path / "symmetry.csv")
    assert symmetry.groupby("stage").size().to_dict() == {"raw": 6, "relaxed": 5}
    raw = symmetry[symmetry["stage"] == "raw"]
    assert gan["non_p1_fraction_raw"] == (raw["space_group_number"] != 1).mean()
    assert gan["symmetry_relaxed"]["n_structures"] == 5
    assert sum(gan["symmetry_raw"]["crystal_systems"].values()) == pytest.approx(1.0)
    training = metrics["training_symmetry"]
    assert training["n_structures"] == len(small_records) - 6
    assert 0 <= training["non_p1_fraction_strict"] <= training["non_p1_fraction"] <= 1
    assert (tmp_path / "crystal_systems.png").stat().st_size > 10_000
    assert gan["n_generated"] == 6 and gan["count_e_hull_le_synthesizable"] == 2  # 0, 0.05
    assert gan["count_e_hull_le_metastable"] == 5
    assert metrics["kim2020_reference"] == json.loads(json.dumps(KIM2020_REFERENCE))
    assert metrics["kim2020_reference"]["new_compositions"]["e_hull_le_0.08"] == 113
    html = (tmp_path / "metrics.html").read_text()
    assert "Kim 2020 (known compositions)" in html and "gan" in html
    assert "E_hull &lt;= 0.08 (of new, as Kim 2020)" in html


def test_the_metrics_table_is_labelled_with_the_configured_thresholds():
    from pipeline.stages.evaluate import metrics_table

    metrics = {key: 0.0 for key in ModelQuality.__dataclass_fields__}
    table = metrics_table({"m": metrics}, 0.1, 0.05)
    assert "E_hull <= 0.1 (of new, as Kim 2020)" in table.columns
    assert "E_hull <= 0.05 (of generated)" in table.columns
    assert not any("0.08" in c or "0.2" in c for c in table.columns)
    # Kim et al.'s rates are at 0.2 and 0.08: beside other thresholds they are left out.
    assert list(table["model"]) == ["m"]
    assert len(metrics_table({"m": metrics}, 0.2, 0.08)) == 3


def test_a_model_that_kept_no_samples_is_reported_not_an_error(small_records, tmp_path):
    write_records([], tmp_path / "ccgan" / "samples.json.gz")
    write_records([], tmp_path / "relaxed.json.gz")
    write_records(small_records[:3], tmp_path / "dataset.json.gz")
    (tmp_path / "hull.csv").write_text("id,energy_per_atom,e_above_hull\n")
    out = tmp_path / "metrics.json"
    assert (
        evaluate_main(
            [
                "--samples",
                str(tmp_path / "ccgan" / "samples.json.gz"),
                "--relaxed",
                str(tmp_path / "relaxed.json.gz"),
                "--hull",
                str(tmp_path / "hull.csv"),
                "--training",
                str(tmp_path / "dataset.json.gz"),
                "--out",
                str(out),
                "--out-table",
                str(tmp_path / "metrics.html"),
            ]
        )
        == 0
    )
    ccgan = json.loads(out.read_text())["models"]["ccgan"]
    assert ccgan["n_generated"] == 0 and math.isnan(ccgan["validity"])
