"""The CrysTens representation: layout, normalisation, reconstruction, quality metrics."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from pipeline.formats import load_crystens
from pipeline.records import CrystalRecord, write_records
from pipeline.represent import crystens as ct
from pipeline.represent.crystens import crystens_dataset
from pipeline.stages.encode_crystens import main

ELEMENTS = ("Mg", "Mn", "O")


def periodic_difference(a, b) -> np.ndarray:
    d = np.asarray(a, float) - np.asarray(b, float)
    return np.abs(d - np.rint(d))


@pytest.fixture(scope="module")
def varied_records(bundled_records):
    """The small records plus the largest structures of the bundled set."""
    by_size = sorted(bundled_records, key=lambda r: r.natoms)
    return by_size[:3] + by_size[-3:] + bundled_records[::400]


def test_layout_follows_the_paper(small_records):
    record = small_records[0]
    x = ct.encode(record, space_group=12)
    n = record.natoms
    assert x.shape == (4, 64, 64) and ct.MAX_SITES == 52
    i = ct.FIRST_SITE  # first site
    frac = np.mod(record.frac_coords, 1.0)
    for k in range(4):  # header mirrored on both axes of every channel
        assert (
            x[k, 0, i]
            == x[k, i, 0]
            == pytest.approx(
                12 if record.species[0] == "Mg" else {"Mn": 25, "O": 8}[record.species[0]]
            )
        )
        assert np.allclose(x[k, 1:4, i], frac[0]) and np.allclose(x[k, i, 1:4], frac[0])
        assert np.allclose(x[k, 4:7, i], record.to_structure().lattice.abc)
        assert x[k, 10, i] == 12
    assert not x[:, 11].any() and not x[:, :, 11].any()  # padding row and column
    assert not x[:, :11, :11].any()
    assert not x[:, i + n :].any() and not x[:, :, i + n :].any()  # unused sites
    sites = slice(i, i + n)
    diff = frac[:, None] - frac[None, :]
    assert np.allclose(x[0, sites, sites], np.linalg.norm(diff, axis=-1))
    assert np.allclose(x[1:, sites, sites], np.moveaxis(diff, -1, 0))
    assert np.allclose(x[1:, sites, sites], -np.swapaxes(x[1:, sites, sites], 1, 2))


def test_normalisation_is_invertible_and_bounded(varied_records):
    x = np.stack([ct.encode(r, space_group=225) for r in varied_records])
    normalized = ct.normalize(x)
    assert normalized.min() >= -1.0 and normalized.max() <= 1.0
    assert np.allclose(ct.denormalize(normalized), x)


def test_decode_inverts_encode(varied_records):
    matcher = StructureMatcher()
    for record in varied_records:
        tensor = ct.normalize(ct.encode(record)).astype(np.float32)
        decoded = ct.decode(tensor, ELEMENTS, id=record.id)
        assert decoded.species == record.species
        assert np.allclose(
            decoded.lattice, record.to_structure().lattice.matrix, atol=1e-4
        ) or np.allclose(
            decoded.to_structure().lattice.parameters,
            record.to_structure().lattice.parameters,
            atol=1e-4,
        )
        assert periodic_difference(decoded.frac_coords, record.frac_coords).max() < 2e-3
        assert matcher.fit(decoded.to_structure(), record.to_structure())


def test_reconstruction_reports_space_group_and_zero_metrics_for_real_tensors(small_records):
    record = small_records[3]
    result = ct.reconstruct(ct.normalize(ct.encode(record)), ELEMENTS)
    assert result.space_group == ct.space_group_number(record)
    q = result.quality
    assert q.n_atoms == record.natoms
    assert (
        max(
            q.var_lattice_lengths,
            q.var_lattice_angles,
            q.var_space_group,
            q.var_coordinates,
            q.var_atomic_number,
        )
        < 1e-12
    )
    assert q.coordinate_disagreement < 1e-9 and q.distance_mismatch < 1e-9


def test_metrics_measure_inconsistency(small_records):
    record = small_records[2]
    x = ct.encode(record, space_group=10)
    i = ct.FIRST_SITE
    x[2, 4, i] += 0.8  # one of the 8 copies of a for the first atom: 0.8 Å off
    x[1, i + 1, i] += 0.1  # relative x of atoms 2 and 1 (only one side of the pair)
    x[0, i, i + 1] += 0.05  # distance of atoms 1 and 2 (one side)
    q = ct.reconstruct(x, ELEMENTS, normalized=False).quality
    n = record.natoms
    # one copy off by d among the 8 n pooled copies of a -> d^2 (8n - 1) / (8n)^2; b, c: 0
    assert q.var_lattice_lengths == pytest.approx(0.8**2 * (8 * n - 1) / (8 * n) ** 2 / 3)
    assert q.var_lattice_angles < 1e-20
    assert q.coordinate_disagreement > 0.0
    assert q.distance_mismatch > 0.0


def test_reconstruction_averages_noise_away(small_records):
    record = small_records[5]
    x = ct.normalize(ct.encode(record))
    noisy = x + np.random.default_rng(0).normal(0.0, 2e-3, x.shape)
    result = ct.reconstruct(noisy, ELEMENTS)
    assert result.record.species == record.species
    assert periodic_difference(result.record.frac_coords, record.frac_coords).max() < 0.01
    assert result.quality.var_coordinates > 0.0


def test_coordinate_kmeans_merges_close_values():
    record = CrystalRecord(
        id="t",
        lattice=np.diag([4.0, 4.0, 4.0]).tolist(),
        species=["Mg", "O"],
        frac_coords=[[0.0, 0.0, 0.0], [0.5, 0.5, 0.5004]],
    )
    decoded = ct.reconstruct(
        ct.encode(record, 1), ELEMENTS, normalized=False, coord_merge_tol=1e-3
    ).record
    assert np.ptp(np.asarray(decoded.frac_coords)[1]) == 0.0  # 0.5 and 0.5004 merged
    kept = ct.reconstruct(
        ct.encode(record, 1), ELEMENTS, normalized=False, coord_merge_tol=1e-5
    ).record
    assert np.asarray(kept.frac_coords)[1, 2] == pytest.approx(0.5004)


def test_decode_rejects_what_is_not_a_crystal(small_records):
    with pytest.raises(ct.DecodeError, match="no atoms"):
        ct.decode(np.zeros(ct.SHAPE), ELEMENTS)
    x = ct.normalize(ct.encode(small_records[0]))
    x[0, 0, ct.FIRST_SITE] = np.nan
    with pytest.raises(ct.DecodeError, match="non-finite"):
        ct.decode(x, ELEMENTS)
    flat = ct.normalize(ct.encode(small_records[0]))
    flat[:, 4:7, :] = 0.0
    flat[:, :, 4:7] = 0.0
    with pytest.raises(ct.DecodeError, match="degenerate"):
        ct.decode(flat, ELEMENTS)


def test_too_many_atoms_is_an_input_error(small_records):
    big = small_records[0].to_structure() * (3, 3, 3)
    with pytest.raises(ct.PipelineInputError, match="52"):
        ct.encode(CrystalRecord.from_structure(big, "big"))


def test_encode_crystens_stage(tmp_path, small_records, mgmno):
    path = tmp_path / "records.json.gz"
    write_records(small_records, path)
    assert (
        main(
            [
                "--dataset",
                str(path),
                "--chemsys",
                "Mg-Mn-O",
                "--out",
                str(tmp_path / "crystens.npz"),
            ]
        )
        == 0
    )
    data = load_crystens(tmp_path / "crystens.npz")
    assert data.x.shape == (12, 4, 64, 64) and data.x.dtype == np.float32
    assert data.elements == ELEMENTS and data.ids == [r.id for r in small_records]
    assert data.counts.sum(axis=1).tolist() == [r.natoms for r in small_records]
    direct = crystens_dataset(small_records[:2], mgmno)
    assert np.array_equal(direct.x, data.x[:2])
    assert (
        main(["--dataset", str(tmp_path / "missing.json.gz"), "--out", str(tmp_path / "x.npz")])
        == 2
    )
