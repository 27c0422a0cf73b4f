"""The periodic-graph representation and the graph encode stage, on bundled structures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.vasp import Poscar

from pipeline.datasets.cgcnn_labels import teacher_band_gaps
from pipeline.errors import PipelineInputError
from pipeline.formats import load_graph_dataset, save_graph_dataset
from pipeline.records import CrystalRecord
from pipeline.represent.graph import (
    DecodeError,
    GraphEncoding,
    graph_dataset,
    lattice_from_log_metric,
    lattice_log_metric,
    periodic_radius_graph,
    to_poscar,
)
from pipeline.stages.encode_graph import main

ENCODING = GraphEncoding(("Mg", "Mn", "O"), cutoff=5.0)


def edge_set(edge_index: torch.Tensor, offsets: torch.Tensor) -> set[tuple[int, int, tuple]]:
    return {
        (int(j), int(i), tuple(int(v) for v in k))
        for j, i, k in zip(edge_index[0], edge_index[1], offsets.round().long())
    }


def test_decode_of_encode_is_the_record(small_records):
    matcher = StructureMatcher()
    for record in small_records:
        back = ENCODING.decode(ENCODING.encode(record), id=record.id)
        assert back.species == record.species
        assert back.lattice == record.lattice
        assert back.frac_coords == record.frac_coords
        assert matcher.fit(back.to_structure(), record.to_structure())


def test_edges_are_the_neighbours_within_the_cutoff(small_records):
    record = small_records[3]
    graph = ENCODING.encode(record)
    structure = record.to_structure()
    vectors = (
        graph.frac_coords[graph.edge_index[0]]
        + graph.edge_offset
        - graph.frac_coords[graph.edge_index[1]]
    ) @ graph.lattice[0]
    distances = vectors.norm(dim=1).numpy()
    assert distances.max() < ENCODING.cutoff
    # Every pair closer than the cutoff is an edge, periodic images included.
    expected = sum(len(n) for n in structure.get_all_neighbors(ENCODING.cutoff))
    assert graph.edge_index.shape[1] == expected
    # Each edge's length is the distance pymatgen finds between those sites and images.
    j, i = graph.edge_index[:, 0].tolist()
    image = graph.edge_offset[0].numpy()
    assert np.isclose(distances[0], structure[i].distance(structure[j], jimage=image))


def test_torch_radius_graph_equals_pymatgens(small_records):
    for record in small_records:
        graph = ENCODING.encode(record)
        edge_index, offsets = periodic_radius_graph(
            graph.frac_coords, graph.lattice[0], ENCODING.cutoff
        )
        assert edge_set(edge_index, offsets) == edge_set(graph.edge_index, graph.edge_offset)


def test_max_neighbours_keeps_the_nearest(small_records):
    graph = ENCODING.encode(small_records[5])
    frac, lattice = graph.frac_coords, graph.lattice[0]
    all_index, all_offsets = periodic_radius_graph(frac, lattice, ENCODING.cutoff)
    index, offsets = periodic_radius_graph(frac, lattice, ENCODING.cutoff, max_neighbours=4)

    def lengths(edge_index, edge_offset, centre):
        mine = edge_index[1] == centre
        delta = frac[edge_index[0, mine]] + edge_offset[mine] - frac[centre]
        return torch.sort((delta @ lattice).norm(dim=1)).values

    for centre in range(len(frac)):
        every = lengths(all_index, all_offsets, centre)
        kept = lengths(index, offsets, centre)
        # The 4 nearest, and any further neighbours as near as the 4th (a shell is kept whole).
        assert torch.allclose(kept, every[: len(kept)])
        assert len(kept) >= 4
        assert torch.allclose(kept[3:], every[3].expand(len(kept) - 3), atol=1e-4)
        assert len(kept) == len(every) or every[len(kept)] > every[3] + 1e-4


def test_log_metric_describes_the_lattice_up_to_rotation(small_records):
    lattices = torch.tensor([r.lattice for r in small_records], dtype=torch.float64)
    rebuilt = lattice_from_log_metric(lattice_log_metric(lattices))
    assert torch.allclose(rebuilt @ rebuilt.transpose(1, 2), lattices @ lattices.transpose(1, 2))
    record = small_records[0]
    same = CrystalRecord(
        id="x", lattice=rebuilt[0].tolist(), species=record.species, frac_coords=record.frac_coords
    )
    assert StructureMatcher().fit(same.to_structure(), record.to_structure())


def test_poscar_round_trip(small_records):
    record = small_records[2]
    parsed = Poscar.from_str(to_poscar(record)).structure
    assert parsed.composition == record.to_structure().composition
    assert np.allclose(parsed.lattice.matrix, record.lattice)
    assert np.allclose(parsed.frac_coords, record.frac_coords)


def test_decode_rejects_what_is_not_a_crystal(small_records):
    graph = ENCODING.encode(small_records[0])
    nan = graph.clone()
    nan.frac_coords[0, 0] = float("nan")
    with pytest.raises(DecodeError, match="non-finite"):
        ENCODING.decode(nan)
    flat = graph.clone()
    flat.lattice[0, 2] = flat.lattice[0, 0]
    with pytest.raises(DecodeError, match="degenerate"):
        ENCODING.decode(flat)
    foreign = graph.clone()
    foreign.species[0] = 7
    with pytest.raises(DecodeError, match="species"):
        ENCODING.decode(foreign)


def test_encode_rejects_foreign_elements(small_records):
    record = small_records[0]
    alien = CrystalRecord(
        id="a",
        lattice=record.lattice,
        species=["Fe", *record.species[1:]],
        frac_coords=record.frac_coords,
    )
    with pytest.raises(PipelineInputError, match="Fe"):
        ENCODING.encode(alien)


def test_graph_dataset_round_trip(small_records, mgmno, tmp_path):
    gaps = np.linspace(0.0, 2.0, len(small_records))
    save_graph_dataset(graph_dataset(small_records, mgmno, gaps), tmp_path / "g.npz")
    data = load_graph_dataset(tmp_path / "g.npz")
    for original, back in zip(small_records, data.records(), strict=True):
        assert (back.id, back.species, back.lattice) == (
            original.id,
            original.species,
            original.lattice,
        )
        assert np.allclose(back.frac_coords, original.frac_coords)
    assert np.allclose(data.band_gap, gaps)


def test_teacher_gives_a_supercell_its_parents_gap(small_records):
    """The stage labels each parent once: CGCNN gives an augmented copy the same gap."""
    record = small_records[1]
    supercell = record.to_structure() * (2, 1, 1)
    supercell.translate_sites(range(len(supercell)), [0.13, 0.0, 0.07])
    copy = CrystalRecord.from_structure(supercell, id="copy")
    gaps = teacher_band_gaps([record, copy])
    assert gaps[0] >= 0.0
    assert gaps[0] == pytest.approx(gaps[1], abs=1e-4)


def test_cli_rejects_a_missing_dataset(tmp_path, capsys):
    assert (
        main(
            ["--dataset", str(tmp_path / "none.json.gz"), "--threads", "1"]
            + ["--out", str(tmp_path / "g.npz")]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err
