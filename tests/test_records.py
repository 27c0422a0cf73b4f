import gzip

import numpy as np
import pytest

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, cell_formula, read_records, write_records


def test_bundled_dataset_is_complete(bundled_records):
    assert len(bundled_records) == 2627
    assert len({r.formula for r in bundled_records}) == 112
    assert all({"Mg", "Mn", "O"} <= set(r.species) for r in bundled_records)


def test_write_then_read_gives_the_same_structures(tmp_path, small_records):
    path = tmp_path / "set.json.gz"
    write_records(small_records, path)
    back = read_records(path)
    assert [r.id for r in back] == [r.id for r in small_records]
    for a, b in zip(small_records, back):
        assert a.species == b.species
        np.testing.assert_allclose(a.frac_coords, b.frac_coords, atol=1e-12)
        assert a.to_structure().matches(b.to_structure())


def test_writing_the_same_records_twice_gives_identical_bytes(tmp_path, small_records):
    # Snakemake 9 skips reruns downstream of an output whose checksum is unchanged.
    write_records(small_records, tmp_path / "a.json.gz")
    write_records(small_records, tmp_path / "b.json.gz")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()


def test_corrupt_gzip_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.json.gz"
    path.write_bytes(gzip.compress(b'[{"id": "x"}]')[:20])
    with pytest.raises(PipelineInputError, match="broken.json.gz: not a readable gzip/JSON"):
        read_records(path)


def test_malformed_json_and_missing_keys(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(PipelineInputError, match="malformed JSON"):
        read_records(bad)
    partial = tmp_path / "partial.json"
    partial.write_text('[{"id": "a", "species": ["Mg"]}]')
    with pytest.raises(PipelineInputError, match=r"record 'a' lacks \['lattice', 'frac_coords'\]"):
        read_records(partial)
    with pytest.raises(PipelineInputError, match="not found"):
        read_records(tmp_path / "missing.json.gz")


def test_cell_formula_and_structure_round_trip(reference_records):
    mgo = next(r for r in reference_records if r.id == "MgO")
    assert cell_formula(mgo.species) == "Mg1O1"
    again = CrystalRecord.from_structure(mgo.to_structure(), id="MgO")
    assert again.formula == "Mg1O1"
    assert again.to_structure().composition.reduced_formula == "MgO"
