"""Hull: self-consistent E_hull of the relaxed references, MP2020 path, second opinion."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, write_records
from pipeline.screen.convex_hull import (
    e_above_hull,
    mp2020_entry,
    mp_e_above_hull,
    pd_entry,
    phase_diagram,
)
from pipeline.screen.hull_table import add_second_opinion, hull_table
from pipeline.screen.modes import relax_records
from pipeline.screen.potentials import PotentialSpec, describe
from pipeline.screen.relaxation import RelaxSettings
from pipeline.settings import default_settings
from pipeline.stages.ehull import main


@pytest.fixture(scope="module")
def relaxed_references(reference_records):
    """The nine bundled reference phases relaxed with CHGNet (batched)."""
    spec = PotentialSpec("chgnet")
    results = relax_records(
        reference_records,
        spec,
        RelaxSettings.from_settings(default_settings().screen),
        "batched",
        progress=False,
    )
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    return [res.to_record(rec, describe(spec)) for rec, res in zip(reference_records, results)]


def with_energy(record: CrystalRecord, energy_per_atom: float) -> CrystalRecord:
    return CrystalRecord(**{**record.__dict__, "properties": {"energy_per_atom": energy_per_atom}})


def test_a_hull_without_an_elemental_reference_is_an_input_error(reference_records):
    references = [with_energy(r, -5.0) for r in reference_records if r.id != "O2"]
    with pytest.raises(PipelineInputError, match=r"pure element\(s\) \['O'\]"):
        phase_diagram(references, "molecule")


def test_e_hull_is_measured_from_the_hull_of_the_references(reference_records):
    energies = {"MgO": -6.0, "Mg": -1.5, "O2": -4.9, "MnO": -8.0, "Mn": -9.0}
    references = [with_energy(r, energies[r.id]) for r in reference_records if r.id in energies]
    diagram = phase_diagram(references, "molecule")
    mgo = next(r for r in references if r.id == "MgO")
    assert e_above_hull(diagram, pd_entry(mgo)).e_above_hull == pytest.approx(0.0)
    higher = with_energy(mgo, -5.9)
    result = e_above_hull(diagram, pd_entry(higher))
    assert result.e_above_hull == pytest.approx(0.1)
    assert result.decomposition == "MgO"


@pytest.mark.slow
def test_reference_oxides_sit_on_the_self_consistent_hull(relaxed_references):
    diagram = phase_diagram(relaxed_references, "fitted")
    table = {r.id: e_above_hull(diagram, pd_entry(r)).e_above_hull for r in relaxed_references}
    assert table["MgO"] == pytest.approx(0.0, abs=1e-6)
    assert table["MgMn2O4"] < 0.03
    assert all(value < 0.1 for value in table.values()), table


@pytest.mark.slow
def test_mp2020_path_corrects_raw_energies_and_places_them_on_an_mp_like_hull(
    relaxed_references,
):
    # As a raw-PBE(+U) potential's energies (SevenNet's scale): corrected by MP2020.
    raw = [
        CrystalRecord(**{**r.__dict__, "provenance": {"potential": "sevennet (sevenn) 7net-0"}})
        for r in relaxed_references
    ]
    by_id = {r.id: r for r in raw}
    mno = mp2020_entry(by_id["MnO"])
    assert mno.parameters["hubbards"] == {"Mn": 3.9}
    assert mno.correction < 0  # oxide and Mn U corrections
    entries = [mp2020_entry(r) for r in raw]
    e_hull = mp_e_above_hull([by_id["MgO"], by_id["MgMn2O4"]], entries)
    assert e_hull[0] == pytest.approx(0.0, abs=1e-6)
    assert e_hull[1] < 0.05
    # CHGNet's own energies already carry the corrections: taken as they are.
    chgnet_mno = mp2020_entry(next(r for r in relaxed_references if r.id == "MnO"))
    assert chgnet_mno.correction == 0.0


@pytest.mark.slow
def test_ehull_cli_writes_the_table_and_the_consensus_column(tmp_path, relaxed_references):
    write_records(relaxed_references, tmp_path / "references.json.gz")
    candidates = [
        with_energy(r, r.properties["energy_per_atom"] + 0.15)
        for r in relaxed_references
        if r.id in ("MgO", "MgMn2O4")
    ]
    write_records(candidates, tmp_path / "relaxed.json.gz")
    strict = [with_energy(c, c.properties["energy_per_atom"] + 0.1) for c in candidates[:1]]
    write_records(strict, tmp_path / "other.json.gz")
    (tmp_path / "mp.json").write_text("[]")
    code = main(
        [
            "--relaxed",
            str(tmp_path / "relaxed.json.gz"),
            "--references-relaxed",
            str(tmp_path / "references.json.gz"),
            "--mp-entries",
            str(tmp_path / "mp.json"),
            "--consensus",
            "sevennet",
            str(tmp_path / "other.json.gz"),
            str(tmp_path / "references.json.gz"),
            "--second-opinion",
            "sevennet",
            str(tmp_path / "other.json.gz"),
            str(tmp_path / "references.json.gz"),
            "--out",
            str(tmp_path / "hull.csv"),
            "--out-phases",
            str(tmp_path / "hull_phases.csv"),
        ]
    )
    assert code == 0
    phases = pd.read_csv(tmp_path / "hull_phases.csv").set_index("id")
    assert phases.loc["MgO", "on_hull"] and phases.loc["MgO", "lowest_of_formula"]
    assert phases["energy_scale"].str.contains("MP2020").all()
    table = pd.read_csv(tmp_path / "hull.csv").set_index("id")
    # Energies only: the verdict (agrees, passes) is the export's criteria.
    assert not {"agrees", "passes_hull", "synthesizable", "passes"} & set(table.columns)
    assert table.loc["MgO", "e_above_hull"] == pytest.approx(0.15, abs=1e-4)
    # the second opinion's energy at the same geometry, and the consensus potential's own
    # relaxation, in their own columns; MgMn2O4 has neither
    assert table.loc["MgO", "e_above_hull_sevennet"] == pytest.approx(0.25, abs=1e-4)
    assert table.loc["MgO", "e_above_hull_sevennet_relaxed"] == pytest.approx(0.25, abs=1e-4)
    assert (
        table.loc["MgMn2O4", ["e_above_hull_sevennet", "e_above_hull_sevennet_relaxed"]]
        .isna()
        .all()
    )
    assert table.loc["MgO", "potential"].startswith("chgnet")
    assert "MP2020" in table.loc["MgO", "energy_scale"]


def test_the_second_opinion_is_its_own_potentials_e_hull_at_the_same_geometry():
    table = pd.DataFrame({"id": ["a", "b", "c", "d"], "e_above_hull": [0.05, 0.1, 0.3, 0.05]})
    second = {"a": 0.07, "b": 0.15, "c": 0.1, "d": float("nan")}
    references = [with_energy(r, e) for r, e in zip(_elements(), (-1.5, -4.9))]
    energies = [_mg_with_e_hull(i, e) for i, e in second.items()]
    add_second_opinion(table, "sevennet", energies, references, "molecule")
    assert table["e_above_hull_sevennet"].tolist()[:3] == pytest.approx([0.07, 0.15, 0.1])
    assert pd.isna(table["e_above_hull_sevennet"].iloc[3])


def _elements() -> list[CrystalRecord]:
    mg = CrystalRecord(id="Mg", lattice=[[3, 0, 0], [0, 3, 0], [0, 0, 3]], species=["Mg"],
                       frac_coords=[[0, 0, 0]], source="reference")  # fmt: skip
    o2 = CrystalRecord(id="O2", lattice=[[9, 0, 0], [0, 9, 0], [0, 0, 9]], species=["O", "O"],
                       frac_coords=[[0, 0, 0], [0.13, 0, 0]], source="reference")  # fmt: skip
    return [mg, o2]


def _mg_with_e_hull(id_: str, e_hull: float) -> CrystalRecord:
    """Elemental Mg ``e_hull`` above the Mg reference at -1.5 eV/atom (NaN: no energy)."""
    return with_energy(CrystalRecord(**{**_elements()[0].__dict__, "id": id_}), -1.5 + e_hull)


def test_hull_table_of_no_candidates_is_empty(reference_records):
    references = [with_energy(r, -5.0) for r in reference_records]
    assert hull_table([], references, "fitted").empty
