import numpy as np
import pytest
from conftest import DEFAULT_CAPS
from pymatgen.analysis.structure_matcher import StructureMatcher

from pipeline.errors import PipelineInputError
from pipeline.formats import load_encoded, save_encoded
from pipeline.records import CrystalRecord
from pipeline.represent.pointcloud import ATOM_THRESHOLD, DecodeError, PointCloudEncoding
from pipeline.represent.pointcloud_dataset import pointcloud_dataset


@pytest.fixture(scope="module")
def encoding(mgmno):
    return PointCloudEncoding.for_system(mgmno, DEFAULT_CAPS)


def element_sorted_coords(record, elements):
    species = np.asarray(record.species)
    coords = np.mod(np.asarray(record.frac_coords), 1.0)
    coords[coords > 1 - 1e-9] = 0.0
    return np.concatenate([coords[species == el] for el in elements])


def test_layout_of_the_default_system(encoding):
    assert encoding.shape == (30, 3)
    assert encoding.element_slices() == {
        "Mg": slice(2, 10),
        "Mn": slice(10, 18),
        "O": slice(18, 30),
    }
    assert encoding.condition_size == 9 + 9 + 13


@pytest.mark.slow
def test_decode_encode_gives_back_every_bundled_structure(encoding, bundled_records):
    matcher = StructureMatcher()
    data = pointcloud_dataset(bundled_records, encoding)  # float32, as saved for training
    for record, x in zip(bundled_records, data.x):
        decoded = encoding.decode(x)
        assert sorted(decoded.species) == sorted(record.species)
        np.testing.assert_allclose(
            element_sorted_coords(decoded, encoding.elements),
            element_sorted_coords(record, encoding.elements),
            atol=1e-6,
            err_msg=record.id,
        )
        assert matcher.fit(record.to_structure(), decoded.to_structure()), record.id


def test_an_atom_at_the_origin_is_not_padding(encoding):
    record = CrystalRecord(
        id="origin",
        lattice=np.eye(3).dot(4.2).tolist(),
        species=["Mg", "Mn", "O"],
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5], [0.999999999, 0, 0.5]],
    )
    x = encoding.encode(record)
    assert x[2].min() > ATOM_THRESHOLD and np.all(x[3:10] == 0)
    decoded = encoding.decode(x)
    assert decoded.species == ["Mg", "Mn", "O"]
    np.testing.assert_allclose(decoded.frac_coords[0], [0, 0, 0], atol=1e-12)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda x: x.__setitem__((0, 0), np.nan), "non-finite"),
        (lambda x: x.__setitem__((0, slice(None)), 0.0), "degenerate cell"),
        (lambda x: x.__setitem__((1, slice(None)), [0.9, 0.9, 0.9]), "cell"),
        (lambda x: x.__setitem__((slice(2, None), slice(None)), 0.0), "no atoms"),
    ],
)
def test_decode_rejects_tensors_that_are_no_crystal(encoding, small_records, corrupt, message):
    x = encoding.encode(small_records[0])
    corrupt(x)
    with pytest.raises(DecodeError, match=message):
        encoding.decode(x)


def test_encode_refuses_what_does_not_fit(encoding, small_records):
    record = small_records[0]
    foreign = CrystalRecord(
        id="fe",
        lattice=record.lattice,
        species=["Fe"] + record.species[1:],
        frac_coords=record.frac_coords,
    )
    with pytest.raises(PipelineInputError, match="not in"):
        encoding.encode(foreign)
    small = PointCloudEncoding(encoding.elements, (1, 1, 1))
    with pytest.raises(PipelineInputError, match="exceed the cap"):
        small.encode(next(r for r in small_records if r.species.count("O") > 1))


def test_encoded_dataset_labels_and_file_round_trip(encoding, small_records, tmp_path):
    data = pointcloud_dataset(small_records, encoding)
    assert data.x.shape == (12, 30, 3) and data.x.dtype == np.float32
    for record, counts, cls in zip(small_records, data.counts, data.composition_class):
        assert data.compositions[cls] == record.formula
        assert counts.tolist() == [record.species.count(el) for el in encoding.elements]
    onehot = data.condition
    assert onehot.shape == (12, encoding.condition_size)
    assert np.all(onehot.sum(axis=1) == 3)  # one class per element
    save_encoded(data, tmp_path / "pc.npz")
    back = load_encoded(tmp_path / "pc.npz")
    np.testing.assert_array_equal(back.x, data.x)
    assert back.compositions == data.compositions and back.ids == data.ids
    assert back.encoding == encoding
