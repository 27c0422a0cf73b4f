"""Quality metrics of generated samples (pipeline.quality) and the evaluate CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from pipeline.chemsys import ChemicalSystem
from pipeline.formats import second_opinion_column
from pipeline.quality import (
    KIM2020_REFERENCE,
    ModelQuality,
    compositionally_valid,
    evaluate_model,
    ks_statistics,
)
from pipeline.records import CrystalRecord, write_records
from pipeline.screen.criteria import Criteria
from pipeline.screen.dedup import can_match, duplicates, prepare
from pipeline.screen.known import KnownIndex
from pipeline.screen.validation import COLUMNS, validate
from pipeline.screen.validity import ValidityLimits
from pipeline.settings import default_settings
from pipeline.stages.evaluate import main as evaluate_main

SYSTEM = ChemicalSystem.parse("Mg-Mn-O")
LIMITS = ValidityLimits.from_settings(default_settings().screen)
CRITERIA = dataclasses.replace(Criteria.default(), second_opinion=None)


def screen_tables(
    samples: list[CrystalRecord],
    relaxed: list[CrystalRecord],
    e_hull: dict[str, float],
    known: list[CrystalRecord],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """validation.csv and candidates.csv as validate and export make them (every sample
    in the band-gap and Pourbaix windows, so only E_hull and novelty decide)."""
    index = KnownIndex.build(known)
    _, verdicts = validate(samples, index, SYSTEM, LIMITS)
    validation = pd.DataFrame([dataclasses.asdict(v) for v in verdicts], columns=COLUMNS)
    prepared = [prepare(r.to_structure()) for r in relaxed]
    candidates = pd.DataFrame(
        {
            "id": [r.id for r in relaxed],
            "model": [r.source for r in relaxed],
            "e_above_hull": [e_hull[r.id] for r in relaxed],
            "band_gap": 2.0,
            "delta_g_pbx": 0.0,
            "known_as": index.known_as_each(prepared),
            "duplicate_of": duplicates(prepared, [r.id for r in relaxed]),
        }
    )
    return validation, CRITERIA.apply(candidates)


def quality_of(samples, relaxed, e_hull, known, training) -> ModelQuality:
    validation, candidates = screen_tables(samples, relaxed, e_hull, known)
    return evaluate_model(
        "m", validation, candidates, [r.to_structure() for r in relaxed], training
    )


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
    pool = [prepare(s) for s in structures + [structures[0].copy(), supercell]]
    ids = ["a", "b", "c", "d", "e", "f"]
    assert duplicates(pool, ids) == [None, None, None, None, "a", "b"]
    # limited to a group: the same structure of another generator is its own first
    assert duplicates(pool, ids, groups=["x"] * 4 + ["y", "x"]) == [None] * 5 + ["b"]


def test_a_known_structure_is_not_new(small_records):
    index = KnownIndex.build(small_records[:3])
    perturbed = small_records[0].to_structure()
    perturbed.perturb(0.02, min_distance=0.01)  # within the matcher's tolerances
    strained = small_records[1].to_structure()
    strained.apply_strain([0.5, 0.0, 0.0])  # beyond the matcher's length tolerance
    probes = (perturbed, small_records[5].to_structure(), strained)
    assert index.known_as_each(probes) == [small_records[0].id, None, None]


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
    known = [small_records[1]]  # m-1 is a known structure
    training = [small_records[1].to_structure()]
    quality = quality_of(samples, relaxed, e_hull, known, training)
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
    # relaxed into a known structure); m-0, m-2, m-3 are new, at 0.0, 0.15 and 0.5.
    assert (quality.n_relaxed_unique, quality.n_rediscovered, quality.n_new) == (4, 1, 3)
    assert quality.count_new_e_hull_le_synthesizable == 1
    assert quality.fraction_new_e_hull_le_synthesizable == pytest.approx(1 / 3)
    assert quality.fraction_new_e_hull_le_metastable == pytest.approx(2 / 3)
    # Uniqueness and novelty are of the samples as generated, relaxed or not.
    unrelaxed = quality_of(samples, [], {}, known, training)
    assert (unrelaxed.uniqueness, unrelaxed.novelty) == (quality.uniqueness, quality.novelty)
    assert unrelaxed.n_relaxed == 0 and unrelaxed.sun_rate == 0.0
    assert np.isnan(unrelaxed.fraction_of_relaxed_e_hull_le_metastable)


def test_relaxing_into_a_relaxed_hull_polymorph_is_rediscovery_not_new(small_records):
    """A structure that matches no unrelaxed prototype but the prototype's relaxed polymorph:
    known, because the hull's relaxed phases are in the known-structure index."""
    samples = [copy.deepcopy(r) for r in small_records[:3]]
    for i, s in enumerate(samples):
        s.id, s.source = f"m-{i}", "m"
    prototype = small_records[1]
    relaxed_polymorph = prototype.to_structure()
    relaxed_polymorph.apply_strain([0.5, 0.0, 0.0])  # beyond the matcher's tolerance
    samples[1] = CrystalRecord.from_structure(relaxed_polymorph, id="m-1", source="m")
    e_hull = {"m-0": 0.0, "m-1": 0.0, "m-2": 0.1}
    training = [prototype.to_structure()]
    quality = quality_of(samples, samples, e_hull, [prototype], training)
    assert quality.n_rediscovered == 0 and quality.n_new == 3
    hull_phase = CrystalRecord.from_structure(relaxed_polymorph, id="hull-polymorph")
    quality = quality_of(samples, samples, e_hull, [prototype, hull_phase], training)
    assert quality.n_rediscovered == 1 and quality.n_new == 2
    assert quality.count_new_e_hull_le_synthesizable == 1  # m-0; m-1 is not new
    assert quality.fraction_new_e_hull_le_synthesizable == pytest.approx(1 / 2)
    # Per generated, m-1 still counts: the two rates answer different questions.
    assert quality.fraction_e_hull_le_synthesizable == pytest.approx(2 / 3)


def write_evaluate_inputs(folder, samples, relaxed, e_hull, known, training) -> list[str]:
    """The evaluate stage's input files (one model's samples) and its arguments."""
    model = samples[0].source if samples else "ccgan"
    write_records(samples, folder / model / "samples.json.gz")  # results/samples/<model>/
    write_records(relaxed, folder / "relaxed.json.gz")
    write_records(training, folder / "dataset.json.gz")
    validation, candidates = screen_tables(samples, relaxed, e_hull, known)
    validation.to_csv(folder / "validation.csv", index=False)
    candidates.to_csv(folder / "candidates.csv", index=False)
    CRITERIA.write(folder / "criteria.json")
    return [
        "--samples",
        str(folder / model / "samples.json.gz"),
        "--validation",
        str(folder / "validation.csv"),
        "--relaxed",
        str(folder / "relaxed.json.gz"),
        "--candidates",
        str(folder / "candidates.csv"),
        "--criteria",
        str(folder / "criteria.json"),
        "--training",
        str(folder / "dataset.json.gz"),
        "--out",
        str(folder / "metrics.json"),
        "--out-table",
        str(folder / "metrics.html"),
    ]


def test_evaluate_cli_writes_metrics_beside_kim2020(small_records, tmp_path):
    samples = [copy.deepcopy(r) for r in small_records[:6]]
    for i, s in enumerate(samples):
        s.id, s.source = f"g-{i}", "gan"
    e_hull = {f"g-{i}": 0.05 * i for i in range(5)}
    args = write_evaluate_inputs(
        tmp_path, samples, samples[:5], e_hull, small_records[6:], small_records[6:]
    )
    args += ["--out-symmetry", str(tmp_path / "symmetry.csv")]
    args += ["--out-plot", str(tmp_path / "crystal_systems.png")]
    assert evaluate_main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
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
    # n_new is the count of the new rows of candidates.csv
    candidates = pd.read_csv(tmp_path / "candidates.csv")
    assert gan["n_new"] == int(candidates["new"].sum()) == 5
    assert metrics["criteria"]["synthesizable"] == CRITERIA.synthesizable
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
    args = write_evaluate_inputs(tmp_path, [], [], {}, small_records[:3], small_records[:3])
    assert evaluate_main(args) == 0
    ccgan = json.loads((tmp_path / "metrics.json").read_text())["models"]["ccgan"]
    assert ccgan["n_generated"] == 0 and math.isnan(ccgan["validity"])


def test_the_second_opinion_summary_reads_the_verdicts_agreement():
    from pipeline.stages.evaluate import second_opinion_summary

    candidates = pd.DataFrame(
        {
            "e_above_hull_is_lower_bound": [False, False, False],
            "e_above_hull_mp": [0.0, 0.1, 0.2],
            second_opinion_column("sevennet"): [0.1, 0.3, float("nan")],
            "agrees": [True, False, False],
        }
    )
    summary = second_opinion_summary(candidates, Criteria.default())
    assert summary["potential"] == "sevennet" and summary["evaluated"] == 2
    assert summary["fraction_agrees"] == pytest.approx(0.5)
    assert second_opinion_summary(candidates, CRITERIA) == {}
