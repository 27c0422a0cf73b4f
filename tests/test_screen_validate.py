"""Validity checks, deduplication and the validate CLI on bundled and perturbed data."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from screen_helpers import overlapping, perturbed

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.known import KnownIndex
from pipeline.screen.validation import validate
from pipeline.screen.validity import (
    ValidityLimits,
    charge_problem,
    min_interatomic_distance,
    structural_problem,
)
from pipeline.settings import default_settings
from pipeline.stages.validate import main

LIMITS = ValidityLimits.from_settings(default_settings().screen)


def test_bundled_structures_pass_every_check(small_records):
    for record in small_records:
        structure = record.to_structure()
        assert structural_problem(structure, LIMITS) == "", record.id
        assert charge_problem(structure) == "", record.id


def test_overlapping_atoms_are_rejected_with_the_distance(small_records):
    bad = overlapping(small_records[0], "bad").to_structure()
    assert min_interatomic_distance(bad) == pytest.approx(0.1, abs=1e-6)
    reason = structural_problem(bad, LIMITS)
    assert reason.startswith("atoms overlap: shortest distance 0.10 Å")


def test_volume_per_atom_outside_the_range_is_rejected(reference_records):
    mgo = next(r for r in reference_records if r.id == "MgO").to_structure()
    sparse = mgo.copy()
    sparse.scale_lattice(mgo.volume * 5)  # 46 Å^3/atom: a gas, not a solid
    assert structural_problem(sparse, LIMITS).startswith("too sparse")
    dense = ValidityLimits(LIMITS.min_distance, 12.0, LIMITS.max_volume_per_atom)
    assert structural_problem(mgo, dense).startswith("too dense")


def test_charge_neutrality_rejects_mgo2_and_accepts_mixed_valence(reference_records):
    peroxide_like = Structure(
        Lattice.cubic(4.0), ["Mg", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]]
    )
    assert charge_problem(peroxide_like) == "no charge-neutral oxidation states for MgO2"
    mn3o4 = next(r for r in reference_records if r.id == "Mn3O4").to_structure()
    assert charge_problem(mn3o4) == ""


def test_validity_limits_must_make_sense():
    with pytest.raises(PipelineInputError):
        ValidityLimits(min_distance=0.5, min_volume_per_atom=50.0, max_volume_per_atom=40.0)


def test_validate_flags_duplicates_known_and_new(small_records, bundled_records, mgmno):
    known = perturbed(small_records[0], "gen-known", seed=1)
    duplicate = CrystalRecord(**{**known.__dict__, "id": "gen-dup"})
    # the same structure from another generator is that generator's own, not a duplicate
    other_generator = CrystalRecord(**{**known.__dict__, "id": "other-known", "source": "other"})
    sheared = small_records[1].to_structure()
    sheared.apply_strain([0.35, 0.0, 0.0])  # beyond StructureMatcher's 20 % length tolerance
    new = CrystalRecord.from_structure(sheared, id="gen-new", source="test-generator")
    bad = overlapping(small_records[2], "gen-overlap")
    chosen, verdicts = validate(
        [known, duplicate, other_generator, new, bad],
        KnownIndex.build(bundled_records),
        mgmno,
        LIMITS,
    )
    by_id = {v.id: v for v in verdicts}
    assert [r.id for r in chosen] == ["gen-known", "other-known", "gen-new"]
    assert by_id["gen-known"].new is False
    assert by_id["gen-known"].known_as == small_records[0].id
    assert by_id["other-known"].known_as == small_records[0].id
    assert by_id["gen-new"].new is True and by_id["gen-new"].known_as == ""
    assert by_id["gen-dup"].reason == "duplicate of gen-known"
    assert by_id["gen-dup"].duplicate_of == "gen-known" and by_id["gen-dup"].new is None
    assert by_id["gen-overlap"].status == "rejected"
    assert by_id["gen-overlap"].reason.startswith("atoms overlap")
    assert not by_id["gen-overlap"].structurally_valid
    assert all(by_id[i].structurally_valid for i in ("gen-known", "gen-dup", "gen-new"))


def test_cli_writes_the_validated_set_and_a_reason_for_each_rejection(
    tmp_path, small_records, capsys
):
    samples = [perturbed(r, f"gen-{k}", seed=k) for k, r in enumerate(small_records[:3])]
    samples.append(overlapping(small_records[3], "gen-overlap"))
    write_records(samples, tmp_path / "samples.json.gz")
    KnownIndex.build(small_records[5:]).write(tmp_path / "known.json.gz")
    code = main(
        [
            "--samples",
            str(tmp_path / "samples.json.gz"),
            "--known-index",
            str(tmp_path / "known.json.gz"),
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
    assert table["new"].iloc[:3].tolist() == [True, True, True]
    assert table["structurally_valid"].tolist() == [True, True, True, False]
    assert [r.id for r in read_records(tmp_path / "validated.json.gz")] == [
        "gen-0",
        "gen-1",
        "gen-2",
    ]


def test_cli_reports_a_corrupt_samples_file_in_one_line(tmp_path, small_records, capsys):
    (tmp_path / "samples.json.gz").write_bytes(gzip.compress(b"{not json"))
    KnownIndex.build(small_records).write(tmp_path / "known.json.gz")
    code = main(
        [
            "--samples",
            str(tmp_path / "samples.json.gz"),
            "--known-index",
            str(tmp_path / "known.json.gz"),
            "--out",
            str(tmp_path / "v.json.gz"),
            "--out-table",
            str(tmp_path / "v.csv"),
        ]
    )
    assert code == 2
    assert "malformed JSON" in capsys.readouterr().err


def test_the_known_index_reads_back_as_it_was_written(tmp_path, small_records):
    """Written once by the known_index rule, read by validate and export: same answers."""
    built = KnownIndex.build(small_records[:6])
    built.write(tmp_path / "known.json.gz")
    read = KnownIndex.read(tmp_path / "known.json.gz")
    assert len(read) == len(built) == 6
    probes = [perturbed(r, f"p-{k}", seed=k).to_structure() for k, r in enumerate(small_records)]
    assert read.known_as_each(probes) == built.known_as_each(probes)
    assert read.known_as_each(probes)[:6] == [r.id for r in small_records[:6]]
    assert read.known_as_each(probes)[6:] == [None] * (len(small_records) - 6)
