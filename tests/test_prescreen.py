"""Prescreen: single-point energies, the unrelaxed E_hull ranking and the prescreen CLI."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from screen_data import with_energy
from screen_helpers import perturbed

from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.convex_hull import phase_diagram
from pipeline.screen.modes import single_point_records
from pipeline.screen.potentials import PotentialSpec, describe
from pipeline.screen.prescreening import PrescreenRow, choose_for_relaxation, unrelaxed_rows
from pipeline.stages.prescreen import main


def squeezed(record: CrystalRecord, new_id: str, factor: float) -> CrystalRecord:
    """``record`` with its volume scaled by ``factor`` (atoms pushed together)."""
    structure = record.to_structure()
    structure.scale_lattice(structure.volume * factor)
    return CrystalRecord.from_structure(structure, id=new_id, source="test-generator")


@pytest.fixture(scope="module")
def references(reference_records):
    """The reference phases with their CHGNet energies: a hull to rank against."""
    return [with_energy(r) for r in reference_records]


@pytest.fixture(scope="module")
def candidates(reference_records):
    """The spinel and MgO as they are, and copies squeezed to 70 % of their volume."""
    by_id = {r.id: r for r in reference_records}
    return [
        squeezed(by_id["MgMn2O4"], "gen-spinel-squeezed", 0.7),
        perturbed(by_id["MgMn2O4"], "gen-spinel", seed=0, distance=0.02, strain=0.0),
        squeezed(by_id["MgO"], "gen-mgo-squeezed", 0.7),
        perturbed(by_id["MgO"], "gen-mgo", seed=1, distance=0.02, strain=0.0),
    ]


def test_batched_and_one_by_one_single_points_agree(candidates):
    spec = PotentialSpec("chgnet")
    batched = single_point_records(candidates, spec, "batched", progress=False)
    sequential = single_point_records(candidates, spec, "sequential", progress=False)
    assert batched == pytest.approx(sequential, abs=1e-4)
    # A cell squeezed to 70 % of its volume lies far above its relaxed form.
    assert batched[0] > batched[1] + 0.5 and batched[2] > batched[3] + 0.5


def test_squeezed_structures_rank_after_their_near_equilibrium_forms(candidates, references):
    energies = single_point_records(candidates, PotentialSpec("chgnet"), progress=False)
    potential = describe(PotentialSpec("chgnet"))
    rows = unrelaxed_rows(candidates, energies, phase_diagram(references, "fitted"), {}, potential)
    ranked = choose_for_relaxation(rows, limit=2)
    assert {row.id for row in ranked[:2]} == {"gen-mgo", "gen-spinel"}
    assert all(abs(row.e_above_hull) < 0.05 for row in ranked[:2])  # on the hull, as built
    assert [row.status for row in ranked] == ["selected", "selected", "deferred", "deferred"]
    assert ranked[2].reason.startswith(
        f"unrelaxed E_hull {ranked[2].e_above_hull:.2f} eV/atom"
        " ranks 3, beyond screen.max_candidates = 2"
    )


def test_new_candidates_come_first_and_failed_ones_last():
    rows = [
        PrescreenRow("known-low", "MgO", new=False, energy_per_atom=-6.0, e_above_hull=0.0),
        PrescreenRow("new-high", "MgO", new=True, energy_per_atom=-5.0, e_above_hull=1.0),
        PrescreenRow("broken", "MgO", new=True, energy_per_atom=math.nan, e_above_hull=math.nan),
        PrescreenRow("new-low", "MgO", new=True, energy_per_atom=-5.5, e_above_hull=0.5),
    ]
    ranked = choose_for_relaxation(rows, limit=None)
    assert [row.id for row in ranked] == ["new-low", "new-high", "known-low", "broken"]
    assert [row.rank for row in ranked] == [1, 2, 3, 0]
    assert [row.status for row in ranked] == ["selected"] * 3 + ["failed"]


def test_cli_writes_the_best_candidates_in_rank_order(tmp_path, candidates, references):
    write_records(candidates, tmp_path / "validated.json.gz")
    pd.DataFrame(
        {
            "id": [c.id for c in candidates] + ["gen-rejected"],
            "new": [True, True, True, False, None],
        }
    ).to_csv(tmp_path / "validation.csv", index=False)
    write_records(references, tmp_path / "references.json.gz")
    code = main(
        [
            "--validated",
            str(tmp_path / "validated.json.gz"),
            "--validation-table",
            str(tmp_path / "validation.csv"),
            "--references-relaxed",
            str(tmp_path / "references.json.gz"),
            "--max-candidates",
            "2",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "prescreened.json.gz"),
            "--out-table",
            str(tmp_path / "prescreen.csv"),
        ]
    )
    assert code == 0
    # gen-mgo is a known structure (new False): the new spinel comes first.
    chosen = [r.id for r in read_records(tmp_path / "prescreened.json.gz")]
    assert chosen == ["gen-spinel", "gen-mgo-squeezed"]
    table = pd.read_csv(tmp_path / "prescreen.csv")
    assert table["id"].tolist() == [
        "gen-spinel",
        "gen-mgo-squeezed",
        "gen-spinel-squeezed",
        "gen-mgo",
    ]
    assert table["status"].tolist() == ["selected", "selected", "deferred", "deferred"]
    assert table["potential"].str.startswith("chgnet").all()


def test_cli_rejects_a_zero_candidate_limit_in_one_line(tmp_path, capsys):
    code = main(
        [
            "--validated",
            "v.json.gz",
            "--validation-table",
            "v.csv",
            "--references-relaxed",
            "r.json.gz",
            "--max-candidates",
            "0",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "p.json.gz"),
            "--out-table",
            str(tmp_path / "p.csv"),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err == "error: --max-candidates must be at least 1\n"
