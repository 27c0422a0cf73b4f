"""The data stage on its three sources; the Materials Project part offline."""

import copy
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pymatgen.analysis.compatibility as pymatgen_compatibility
import pytest
from conftest import BUNDLED_DATASET, BUNDLED_REFERENCES
from monty.serialization import loadfn
from pymatgen.analysis.compatibility import (
    MP2020_COMPAT_CONFIG,
    MaterialsProject2020Compatibility,
)
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry
from pymatgen.io.cif import CifWriter

from pipeline.datasets import materials_project as mp
from pipeline.datasets.cif_dir import load_cif_dir
from pipeline.datasets.filtering import EXCLUDED, hold_out, split_usable
from pipeline.errors import PipelineInputError
from pipeline.records import read_records
from pipeline.stages.data import main as data_main


def outputs(tmp_path):
    names = {
        "dataset": "dataset.json.gz",
        "known": "known.json.gz",
        "references": "references.json.gz",
        "mp-entries": "mp_entries.json.gz",
        "summary": "summary.csv",
        "rejected": "rejected.csv",
        "plot": "composition.png",
    }
    args = [arg for key, name in names.items() for arg in (f"--out-{key}", str(tmp_path / name))]
    return args, {key: tmp_path / name for key, name in names.items()}


def test_bundled_source_writes_dataset_summary_and_plot(tmp_path):
    args, out = outputs(tmp_path)
    assert (
        data_main(
            [
                "--bundled-dataset",
                str(BUNDLED_DATASET),
                "--bundled-references",
                str(BUNDLED_REFERENCES),
                "--max-atoms",
                "Mg=8",
                "Mn=8",
                "O=12",
                *args,
            ]
        )
        == 0
    )
    dataset = read_records(out["dataset"])
    assert len(dataset) == 2627
    assert len({r.id for r in dataset}) == 2627  # the authors' names repeat: made unique
    assert sum(r.id.endswith(".2") for r in dataset) > 0
    references = {r.id for r in read_records(out["references"])}
    assert {"MgO", "MnO", "MgMn2O4", "Mg", "Mn", "O2"} <= references
    summary = pd.read_csv(out["summary"])
    assert len(summary) == 112 and summary["n_structures"].sum() == 2627
    assert summary.iloc[0].to_dict()["composition"] == "Mg4Mn4O8"  # the most frequent
    assert out["plot"].stat().st_size > 10_000
    assert loadfn(out["mp-entries"]) == []


@pytest.fixture
def cif_folder(tmp_path, small_records):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for record in small_records[:3]:
        CifWriter(record.to_structure()).write_file(folder / f"{record.id}.cif")
    (folder / "garbage.cif").write_text("data_x\n_cell_length_a 3.0\nthis is not a CIF loop\n")
    disordered = Structure(
        Lattice.cubic(4.2), [{"Mg": 0.5, "Mn": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    CifWriter(disordered).write_file(folder / "disordered.cif")
    iron = Structure(
        Lattice.cubic(4.3),
        ["Fe", "Mg", "Mn", "O"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    CifWriter(iron).write_file(folder / "with_iron.cif")
    big = small_records[0].to_structure()
    big.make_supercell([3, 3, 3])
    CifWriter(big).write_file(folder / "too_big.cif")
    return folder


def test_cif_dir_keeps_good_files_and_lists_the_rest_with_reasons(
    tmp_path, cif_folder, small_records
):
    args, out = outputs(tmp_path)
    assert (
        data_main(
            [
                "--source",
                "cif_dir",
                "--cif-dir",
                str(cif_folder),
                "--bundled-dataset",
                str(BUNDLED_DATASET),
                "--bundled-references",
                str(BUNDLED_REFERENCES),
                "--max-atoms",
                "Mg=8",
                "Mn=8",
                "O=12",
                *args,
            ]
        )
        == 0
    )
    kept = read_records(out["dataset"])
    assert sorted(r.id for r in kept) == sorted(r.id for r in small_records[:3])
    for record in kept:
        original = next(r for r in small_records if r.id == record.id)
        assert record.to_structure().matches(original.to_structure())
    reasons = pd.read_csv(out["rejected"]).set_index("id")["reason"].to_dict()
    assert reasons["garbage"].startswith("unparsable CIF")
    assert reasons["disordered"] == "partial occupancy (disordered)"
    assert reasons["with_iron"] == "elements outside the chemical system Mg-Mn-O: Fe"
    assert reasons["too_big"].startswith("more atoms than the encoding allows")


def test_cif_dir_with_nothing_usable_fails_with_one_line(tmp_path, capsys):
    folder = tmp_path / "cifs"
    folder.mkdir()
    (folder / "a.cif").write_text("not a cif")
    args, out = outputs(tmp_path)
    assert (
        data_main(
            [
                "--source",
                "cif_dir",
                "--cif-dir",
                str(folder),
                "--bundled-dataset",
                str(BUNDLED_DATASET),
                "--bundled-references",
                str(BUNDLED_REFERENCES),
                *args,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no usable structures") and "\n" not in err
    assert pd.read_csv(out["rejected"])["id"].tolist() == ["a"]


def test_missing_and_corrupt_bundled_files_are_clear_errors(tmp_path, capsys):
    args, _ = outputs(tmp_path)
    assert data_main(["--bundled-dataset", str(tmp_path / "nope.json.gz"), *args]) == 2
    assert "dataset file not found" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.json.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert data_main(["--bundled-dataset", str(corrupt), *args]) == 2
    assert "not a readable gzip/JSON file" in capsys.readouterr().err


def test_caps_reject_structures_that_do_not_fit(mgmno, bundled_records):
    kept, rejected = split_usable(bundled_records, mgmno, {"Mg": 4, "Mn": 4, "O": 8})
    assert kept and rejected
    assert all(r.species.count("O") <= 8 for r in kept)
    assert all("more atoms than the encoding allows" in r.reason for r in rejected)


# --- Materials Project: query building and conversion, offline -------------------------


def test_subsystems_cover_every_element_combination(mgmno):
    assert mp.subsystems(mgmno) == ["Mg", "Mn", "O", "Mg-Mn", "Mg-O", "Mn-O", "Mg-Mn-O"]


MP2020 = MaterialsProject2020Compatibility(check_potcar=False)


def recorded_entries() -> dict[str, ComputedEntry]:
    """Materials Project GGA(+U) entries, as MP computed them (raw energies, run types and U
    values): the ones pymatgen ships beside the MP2020 fit (``calc_compounds.json.gz``)."""
    path = Path(pymatgen_compatibility.__file__).parent / "calc_compounds.json.gz"
    calculations = loadfn(path)
    return {f: calculations[f] for f in ("MgO", "MnO", "MnO2", "Mg", "Mn", "O2")}


def corrected(entry: ComputedEntry) -> ComputedEntry:
    """The entry with MP2020's corrections, as ``get_entries_in_chemsys`` serves it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MP2020.process_entry(copy.deepcopy(entry))


def recorded_summary_docs(reference_records):
    """Documents shaped like mp-api's SummaryDoc (only the fields we request).

    The structures are the bundled textbook phases. Energies: MP's raw GGA(+U) energies
    (:func:`recorded_entries`; for the ternaries, which pymatgen does not ship, a raw GGA+U
    energy of the same kind) and their MP2020-corrected values, so the correction has the
    size and sign MP's has: negative for an oxide (anion and Mn U corrections).
    """
    by_id = {r.id: r.to_structure() for r in reference_records}
    raw = recorded_entries()
    ternary = ComputedEntry(
        "Mg2Mn4O8",
        -6.7 * 14,
        parameters={"run_type": "GGA+U", "hubbards": {"Mn": 3.9}},
        data={"oxide_type": "oxide"},
    )
    rows = [  # id, structure, raw entry, E_hull, gap
        ("mp-1265", "MgO", raw["MgO"], 0.0, 4.45),
        ("mp-19006", "MnO", raw["MnO"], 0.0, 1.9),
        ("mp-1009", "MgMn2O4", ternary, 0.0, 1.2),
        ("mp-9999999", "MnO2", raw["MnO2"], 0.05, 0.3),
        ("mp-ternary", "MgMn2O4", ternary, 0.03, 1.0),  # not a reference: a training structure
    ]
    return [
        SimpleNamespace(
            material_id=mid,
            structure=by_id[name],
            energy_per_atom=corrected(entry).energy_per_atom,
            uncorrected_energy_per_atom=entry.uncorrected_energy_per_atom,
            formation_energy_per_atom=-2.1 if mid == "mp-ternary" else None,
            energy_above_hull=ehull,
            band_gap=gap,
            is_stable=ehull == 0.0,
        )
        for mid, name, entry, ehull, gap in rows
    ]


def test_docs_become_training_records_and_hull_references(mgmno, reference_records):
    query = mp.MaterialsProjectQuery(mgmno, require_all_elements=True, reference_e_above_hull=0.0)
    training, references = mp.docs_to_records(recorded_summary_docs(reference_records), query)
    assert [r.id for r in training] == ["mp-1009", "mp-ternary"]
    assert [r.id for r in references] == ["mp-1009", "mp-1265", "mp-19006"]
    mgo = next(r for r in references if r.id == "mp-1265")
    assert mgo.source == "mp"
    raw = recorded_entries()["MgO"].energy_per_atom
    oxide = MP2020_COMPAT_CONFIG["Corrections"]["CompositionCorrections"]["oxide"]
    assert mgo.properties == pytest.approx(
        {
            "energy_per_atom": raw + oxide / 2,  # one O of two atoms
            "uncorrected_energy_per_atom": raw,
            "e_above_hull": 0.0,
            "band_gap": 4.45,
        }
    )
    # MP2020 lowers an oxide's energy: the anion correction, and for Mn the GGA+U one too.
    for record in references:
        assert (
            record.properties["energy_per_atom"] < record.properties["uncorrected_energy_per_atom"]
        )
    mno = next(r for r in references if r.id == "mp-19006").properties
    mn_u = MP2020_COMPAT_CONFIG["Corrections"]["GGAUMixingCorrections"]["O"]["Mn"]
    assert mno["energy_per_atom"] - mno["uncorrected_energy_per_atom"] == pytest.approx(
        (oxide + mn_u) / 2
    )
    ternary = training[1]
    assert ternary.properties["formation_energy_per_atom"] == -2.1


class RecordedRester:
    """Stands in for ``mp_api.client.MPRester``: records the requests, answers with
    :func:`recorded_summary_docs` and the MP2020-corrected :func:`recorded_entries`."""

    requests: list[tuple] = []
    docs: list = []

    def __init__(self, api_key):
        self.materials = SimpleNamespace(summary=SimpleNamespace(search=self.search))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def search(self, **kwargs):
        self.requests.append(("summary.search", kwargs))
        return self.docs

    def get_entries_in_chemsys(self, elements, **kwargs):
        self.requests.append(("get_entries_in_chemsys", {"elements": elements, **kwargs}))
        return [corrected(e) for e in recorded_entries().values()]


@pytest.mark.parametrize("thermo_type", ["GGA_GGA+U", "R2SCAN"])
def test_fetch_asks_for_one_functionals_hull(mgmno, reference_records, monkeypatch, thermo_type):
    RecordedRester.requests = []
    RecordedRester.docs = recorded_summary_docs(reference_records)
    monkeypatch.setattr("mp_api.client.MPRester", RecordedRester)
    query = mp.MaterialsProjectQuery(mgmno, thermo_type=thermo_type)
    docs, entries = mp.fetch(query, "recorded")
    (search, summary), (get_entries, chemsys) = RecordedRester.requests
    assert search == "summary.search" and get_entries == "get_entries_in_chemsys"
    assert summary == {"chemsys": mp.subsystems(mgmno), "fields": mp.SUMMARY_FIELDS}
    assert sorted(chemsys["elements"]) == ["Mg", "Mn", "O"]
    # Never mp-api's default, the mixed GGA/GGA+U/r2SCAN hull.
    assert chemsys["additional_criteria"] == {"thermo_types": [thermo_type]}
    assert len(docs) == 5
    by_formula = {e.composition.reduced_formula: e for e in entries}
    assert by_formula["MnO"].correction < 0 and by_formula["MgO"].correction < 0
    assert by_formula["Mn"].correction == 0 and by_formula["O2"].correction == 0


def test_the_default_hull_is_mp2020s_gga_hull(mgmno):
    assert mp.MaterialsProjectQuery(mgmno).thermo_type == "GGA_GGA+U"
    with pytest.raises(PipelineInputError, match="thermo type"):
        mp.MaterialsProjectQuery(mgmno, thermo_type="GGA_GGA+U_R2SCAN")


def test_missing_api_key_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(PipelineInputError, match="MP_API_KEY is not set"):
        mp.api_key_from_env()
    args, _ = outputs(tmp_path)
    assert data_main(["--source", "mp", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MP_API_KEY" in err


def test_cli_help_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.data", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--source {bundled,mp,cif_dir}" in result.stdout


def test_cif_dir_loader_requires_a_folder(tmp_path):
    with pytest.raises(PipelineInputError, match="CIF folder not found"):
        load_cif_dir(tmp_path / "absent")


def test_exclude_formulas_removes_every_cell_of_those_formulas(tmp_path, bundled_records):
    held_out = {"MgMn2O4", "Mg2MnO4"}
    bundled_counts = {
        f: sum(Composition(r.formula).reduced_formula == f for r in bundled_records)
        for f in held_out
    }
    assert all(n > 0 for n in bundled_counts.values())
    args, out = outputs(tmp_path)
    # Any cell of the formula names it: Mg2Mn4O8 is MgMn2O4.
    assert data_main(["--bundled-dataset", str(BUNDLED_DATASET), "--bundled-references",
                      str(BUNDLED_REFERENCES), "--exclude-formulas", "Mg2Mn4O8", "Mg2MnO4",
                      *args]) == 0  # fmt: skip
    dataset = read_records(out["dataset"])
    assert not {Composition(r.formula).reduced_formula for r in dataset} & held_out
    assert len(dataset) == len(bundled_records) - sum(bundled_counts.values())
    rejected = pd.read_csv(out["rejected"])
    reasons = rejected["reason"].value_counts()
    for formula, n in bundled_counts.items():
        assert reasons[f"{EXCLUDED}: {formula}"] == n
    summary = pd.read_csv(out["summary"])
    assert not set(summary["reduced_formula"]) & held_out
    # The held-out structures stay known phases (the hull's input), with the ids a run
    # without the hold-out gives them, so the hull of both runs is the same.
    known = read_records(out["known"])
    assert len(known) == len(bundled_records)
    args, without = outputs(tmp_path / "without")
    assert data_main(["--bundled-dataset", str(BUNDLED_DATASET), "--bundled-references",
                      str(BUNDLED_REFERENCES), *args]) == 0  # fmt: skip
    assert [r.id for r in read_records(without["known"])] == [r.id for r in known]
    assert [r.id for r in read_records(without["dataset"])] == [r.id for r in known]


def test_exclude_formulas_rejects_what_is_no_formula(mgmno, bundled_records):
    with pytest.raises(PipelineInputError, match="no formula"):
        hold_out(bundled_records[:3], ["not a formula"])
