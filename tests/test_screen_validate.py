"""Validity checks, deduplication and the validate CLI on bundled and perturbed data."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from screen_helpers import overlapping, perturbed

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.validity import (
    ValidityLimits,
    charge_problem,
    min_interatomic_distance,
    structural_problem,
)
from pipeline.stages.validate import main, validate


def test_bundled_structures_pass_every_check(small_records):
    for record in small_records:
        structure = record.to_structure()
        assert structural_problem(structure, ValidityLimits()) == "", record.id
        assert charge_problem(structure) == "", record.id


def test_overlapping_atoms_are_rejected_with_the_distance(small_records):
    bad = overlapping(small_records[0], "bad").to_structure()
    assert min_interatomic_distance(bad) == pytest.approx(0.1, abs=1e-6)
    reason = structural_problem(bad, ValidityLimits())
    assert reason.startswith("atoms overlap: shortest distance 0.10 Å")


def test_volume_per_atom_outside_the_range_is_rejected(reference_records):
    mgo = next(r for r in reference_records if r.id == "MgO").to_structure()
    sparse = mgo.copy()
    sparse.scale_lattice(mgo.volume * 5)  # 46 Å^3/atom: a gas, not a solid
    assert structural_problem(sparse, ValidityLimits()).startswith("too sparse")
    assert structural_problem(mgo, ValidityLimits(min_volume_per_atom=12.0)).startswith("too dense")


def test_charge_neutrality_rejects_mgo2_and_accepts_mixed_valence(reference_records):
    peroxide_like = Structure(
        Lattice.cubic(4.0), ["Mg", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]]
    )
    assert charge_problem(peroxide_like) == "no charge-neutral oxidation states for MgO2"
    mn3o4 = next(r for r in reference_records if r.id == "Mn3O4").to_structure()
    assert charge_problem(mn3o4) == ""


def test_validity_limits_must_make_sense():
    with pytest.raises(PipelineInputError):
        ValidityLimits(min_volume_per_atom=50.0, max_volume_per_atom=40.0)


def test_validate_flags_duplicates_known_and_novel(small_records, bundled_records, mgmno):
    known = perturbed(small_records[0], "gen-known", seed=1)
    duplicate = CrystalRecord(**{**known.__dict__, "id": "gen-dup"})
    sheared = small_records[1].to_structure()
    sheared.apply_strain([0.35, 0.0, 0.0])  # beyond StructureMatcher's 20 % length tolerance
    novel = CrystalRecord.from_structure(sheared, id="gen-novel", source="test-generator")
    bad = overlapping(small_records[2], "gen-overlap")
    chosen, verdicts = validate(
        [known, duplicate, novel, bad], bundled_records, mgmno, ValidityLimits()
    )
    by_id = {v.id: v for v in verdicts}
    assert [r.id for r in chosen] == ["gen-known", "gen-novel"]
    assert by_id["gen-known"].novel is False
    assert by_id["gen-known"].known_as == small_records[0].id
    assert by_id["gen-novel"].novel is True
    assert by_id["gen-dup"].reason == "duplicate of gen-known"
    assert by_id["gen-overlap"].status == "rejected"
    assert by_id["gen-overlap"].reason.startswith("atoms overlap")


def test_cli_writes_the_validated_set_and_a_reason_for_each_rejection(
    tmp_path, small_records, capsys
):
    samples = [perturbed(r, f"gen-{k}", seed=k) for k, r in enumerate(small_records[:3])]
    samples.append(overlapping(small_records[3], "gen-overlap"))
    write_records(samples, tmp_path / "samples.json.gz")
    write_records(small_records[5:], tmp_path / "training.json.gz")
    code = main(
        [
            "--samples",
            str(tmp_path / "samples.json.gz"),
            "--training",
            str(tmp_path / "training.json.gz"),
            "--out",
            str(tmp_path / "validated.json.gz"),
            "--out-table",
            str(tmp_path / "validation.csv"),
        ]
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "validation.csv")
    assert list(table["status"]) == ["valid", "valid", "valid", "rejected"]
    assert table["reason"].iloc[3].startswith("atoms overlap")
    assert table["novel"].iloc[:3].tolist() == [True, True, True]
    assert [r.id for r in read_records(tmp_path / "validated.json.gz")] == [
        "gen-0",
        "gen-1",
        "gen-2",
    ]


def test_cli_reports_a_corrupt_samples_file_in_one_line(tmp_path, small_records, capsys):
    (tmp_path / "samples.json.gz").write_bytes(gzip.compress(b"{not json"))
    write_records(small_records, tmp_path / "training.json.gz")
    code = main(
        [
            "--samples",
            str(tmp_path / "samples.json.gz"),
            "--training",
            str(tmp_path / "training.json.gz"),
            "--out",
            str(tmp_path / "v.json.gz"),
            "--out-table",
            str(tmp_path / "v.csv"),
        ]
    )
    assert code == 2
    assert "malformed JSON" in capsys.readouterr().err
