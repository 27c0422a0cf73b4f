"""The explorer stage on a small real screen: the merged table, the nearest known structures,
the downloads and the ASE database.

The screen's tables come from the stage CLIs (properties, pourbaix, export) run on real CHGNet
energies of bundled structures (tests/screen_data.py); the explorer CLI then writes the page
set and the database. tests/test_explorer_browser.py opens the same page in Chromium.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import ase.db
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from screen_data import run_screen, screen_data, write_dft_check

from pipeline.explorer.database import database_key, database_value
from pipeline.explorer.nearest import find_nearest, radial_fingerprint
from pipeline.explorer.table import label_of, merge_tables, ordered_columns
from pipeline.explorer.ternary import ternary_hull
from pipeline.stages.explorer import main as explorer_main

pytestmark = pytest.mark.slow


def build_explorer(folder: Path) -> Path:
    """The screen's stages on the small real inputs, then the explorer; returns ``folder``."""
    paths = run_screen(folder)
    assert explorer_main(explorer_argv(paths, folder)) == 0
    return folder


def explorer_argv(paths: dict[str, Path], folder: Path, *extra: str | Path) -> list[str]:
    """The explorer CLI's arguments on the screen's ``paths``, writing under ``folder``."""
    explorer = {
        "--relaxed": paths["relaxed"],
        "--candidates": paths["candidates"],
        "--criteria": paths["criteria"],
        "--hull": paths["hull"],
        "--properties": paths["properties"],
        "--pourbaix": paths["pourbaix"],
        "--validation": paths["validation"],
        "--relax-status": paths["relax_status"],
        "--references": paths["references"],
        "--known": paths["training"],
        "--dft-ready": paths["dft_ready"],
        "--chemsys": "Mg-Mn-O",
        "--out-dir": folder / "results/explorer",
        "--out-db": folder / "results/candidates.db",
    }
    return [str(a) for a in [*(a for item in explorer.items() for a in item), *extra]]


@pytest.fixture(scope="session")
def explorer_run(tmp_path_factory) -> Path:
    return build_explorer(tmp_path_factory.mktemp("explorer"))


def page_data(run: Path) -> dict:
    text = (run / "results/explorer/data.js").read_text()
    prefix = "window.EXPLORER_DATA = "
    assert text.startswith(prefix)
    return json.loads(text[len(prefix) :].rstrip().rstrip(";"))


def test_every_relaxed_structure_has_a_row_with_every_table_column(explorer_run):
    data = page_data(explorer_run)
    keys = [c["key"] for c in data["columns"]]
    ids = [row[keys.index("id")] for row in data["rows"]]
    assert sorted(ids) == sorted(r.id for r in screen_data().candidates)
    screen = explorer_run / "results/screen"
    for table in ("hull.csv", "properties.csv", "pourbaix.csv", "validation.csv"):
        assert set(pd.read_csv(screen / table).columns) <= set(keys), table
    assert set(pd.read_csv(explorer_run / "results/candidates.csv").columns) <= set(keys)
    labels = {c["key"]: c["label"] for c in data["columns"]}
    assert labels["e_above_hull"] == "E_hull (eV/atom)" and labels["delta_g_pbx"].startswith("ΔG")


def test_space_groups_are_computed_when_no_table_has_them(explorer_run):
    data = page_data(explorer_run)
    keys = [c["key"] for c in data["columns"]]
    row = next(r for r in data["rows"] if r[keys.index("id")] == "gan-MgO")
    assert (
        row[keys.index("space_group")] == "Fm-3m" and row[keys.index("space_group_number")] == 225
    )


def test_a_new_column_is_shown_with_a_label_made_from_its_name(explorer_run):
    relaxed = screen_data().candidates[:2]
    second = pd.DataFrame({"id": [r.id for r in relaxed], "e_above_hull_sevennet": [0.01, 0.2]})
    status = pd.DataFrame({"id": [relaxed[0].id], "rediscovery_status": ["new"]})
    table = merge_tables(relaxed, [second, status])
    columns = {c.key: c for c in ordered_columns(table)}
    assert columns["e_above_hull_sevennet"].label == "E_hull sevennet (eV/atom)"
    assert columns["e_above_hull_sevennet"].kind == "number"
    assert columns["rediscovery_status"].visible and label_of("rediscovery_status") == (
        "rediscovery status"
    )
    assert table["rediscovery_status"].isna().sum() == 1
    flag = merge_tables(relaxed, [second.assign(e_above_hull_is_lower_bound=[True, False])])
    labels = {c.key: c.label for c in ordered_columns(flag)}
    assert labels["e_above_hull_is_lower_bound"] == "E_hull is a lower bound"
    assert label_of("e_above_hull_mp_flag", "bool") == "e above hull mp flag"


def test_the_dft_verdict_shows_beside_the_ml_one_only_when_the_check_ran(explorer_run, tmp_path):
    without = page_data(explorer_run)
    assert not [c["key"] for c in without["columns"] if "dft" in c["key"]]  # check off: as before
    candidates = pd.read_csv(explorer_run / "results/candidates.csv", dtype={"id": str})
    checked = candidates["id"].head(2).tolist()
    dft_check = write_dft_check(
        tmp_path, explorer_run / "results/candidates.csv", dict(zip(checked, [0.03, 0.15]))
    )
    paths = {
        name: explorer_run / "results" / rel
        for name, rel in {
            "relaxed": "screen/relax/chgnet/relaxed.json.gz",
            "candidates": "candidates.csv",
            "criteria": "criteria.json",
            "hull": "screen/hull.csv",
            "properties": "screen/properties.csv",
            "pourbaix": "screen/pourbaix.csv",
            "validation": "screen/validation.csv",
            "relax_status": "screen/relax/chgnet/relax_status.csv",
            "references": "hull/chgnet/references_relaxed.json.gz",
            "training": "data/dataset.json.gz",
            "dft_ready": "dft_ready",
        }.items()
    }
    assert explorer_main(explorer_argv(paths, tmp_path, "--dft-check", dft_check)) == 0
    data = page_data(tmp_path)
    columns = {c["key"]: c for c in data["columns"]}
    assert columns["e_above_hull_dft"]["label"] == "E_hull DFT (eV/atom)"
    assert (
        columns["dft_agrees"]["label"] == "DFT agrees" and columns["dft_agrees"]["kind"] == "bool"
    )
    assert columns["e_above_hull_dft"]["visible"] and not columns["dft_cpu_s"]["visible"]
    keys = [c["key"] for c in data["columns"]]
    assert keys.index("e_above_hull_dft") == keys.index("e_above_hull") + 1  # beside the ML one
    rows = {row[keys.index("id")]: row for row in data["rows"]}
    e_hull_dft = {i: rows[i][keys.index("e_above_hull_dft")] for i in rows}
    assert e_hull_dft[checked[0]] == pytest.approx(0.03)
    assert e_hull_dft[checked[1]] == pytest.approx(0.15)
    assert all(e_hull_dft[i] is None for i in rows if i not in checked)  # unchecked: blank
    ml = dict(zip(candidates["id"], candidates["e_above_hull"]))
    agrees = {i: rows[i][keys.index("dft_agrees")] for i in checked}
    assert agrees == {i: (ml[i] <= 0.08) == (d <= 0.08) for i, d in zip(checked, [0.03, 0.15])}
    with ase.db.connect(tmp_path / "results/candidates.db") as database:
        stored = {
            row.key_value_pairs["candidate_id"]: row.key_value_pairs for row in database.select()
        }
    assert stored[checked[1]]["e_above_hull_dft"] == pytest.approx(0.15)
    assert not [i for i in stored if i not in checked and "e_above_hull_dft" in stored[i]]


def test_the_nearest_known_structure_is_the_known_one_else_the_same_formula(explorer_run):
    data = screen_data()
    magnesia = next(r for r in data.candidates if r.id == "gan-MgO")
    candidates = pd.read_csv(explorer_run / "results/candidates.csv", dtype={"id": str})
    known_as = dict(candidates.dropna(subset=["known_as"])[["id", "known_as"]].values)
    assert known_as == {"gan-MgO": "MgO"}  # the export's answer, from the known index
    nearest = {
        n.candidate_id: n
        for n in find_nearest(data.candidates, data.references, data.training, known_as)
    }
    # The candidate MgO is the reference rock salt itself: shown beside it as the same structure.
    assert nearest["gan-MgO"].known_id == "MgO" and nearest["gan-MgO"].rule == "known"
    assert nearest["gan-MgO"].how.startswith("the same structure")
    assert nearest["gan-MgO"].distance == 0.0
    assert radial_fingerprint(magnesia.to_structure()).shape == (120,)  # 6 Å in 0.05 Å bins
    unmatched = find_nearest([magnesia], data.references, data.training, {})
    assert unmatched[0].rule == "fingerprint" and unmatched[0].known_id == "MgO"
    assert unmatched[0].distance == pytest.approx(0.0, abs=1e-9)
    for n in nearest.values():
        assert n.known_id is not None  # the references span the system: always something
    # Each rule is used in this small screen: the other rules' candidates are different
    # polymorphs of a known formula (fingerprint) or of a formula no known structure has.
    assert {n.rule for n in nearest.values()} == {"known", "fingerprint", "composition"}


def test_downloads_read_back_as_the_relaxed_structures(explorer_run):
    data = page_data(explorer_run)
    page = explorer_run / "results/explorer"
    matcher = StructureMatcher()
    by_id = {r.id: r.to_structure() for r in screen_data().candidates}
    for record_id, entry in data["structures"].items():
        poscar = Structure.from_file(page / entry["files"]["poscar"])
        cif = Structure.from_file(page / entry["files"]["cif"])
        assert matcher.fit(poscar, by_id[record_id]) and matcher.fit(cif, by_id[record_id])
    exported = {p.name for p in (explorer_run / "results/dft_ready").iterdir()}
    zipped = {i for i, e in data["structures"].items() if "dft_ready" in e["files"]}
    assert zipped == exported and exported
    one = sorted(exported)[0]
    with zipfile.ZipFile(page / data["structures"][one]["files"]["dft_ready"]) as archive:
        assert f"{one}/POSCAR" in archive.namelist()
    for known_id, entry in data["known"].items():
        assert (page / entry["files"]["cif"]).is_file(), known_id


def test_the_page_loads_only_local_files(explorer_run):
    page = explorer_run / "results/explorer"
    html = (page / "index.html").read_text()
    for script in ("vendor/3Dmol-min.js", "vendor/plotly-basic.min.js", "data.js", "explorer.js"):
        assert f'src="{script}"' in html and (page / script).is_file()
    assert "http://" not in html and "https://" not in html
    assert (page / "vendor/3Dmol-LICENSE.txt").read_text().count("BSD-3-Clause") >= 1
    assert "MIT" in (page / "vendor/plotly-LICENSE.txt").read_text()


def test_the_ase_database_answers_a_query(explorer_run):
    db_path = explorer_run / "results/candidates.db"
    candidates = pd.read_csv(explorer_run / "results/candidates.csv", dtype={"id": str})
    with ase.db.connect(db_path) as database:
        assert database.count() == len(candidates)
        low = {row.candidate_id for row in database.select("e_above_hull<0.08")}
        row = database.get(candidate_id="gan-MgO")
    assert low == set(candidates.loc[candidates["e_above_hull"] < 0.08, "id"])
    assert row.reduced_formula == "MgO" and row.space_group == "Fm-3m"
    assert row.energy == pytest.approx(row.energy_per_atom * row.natoms)
    # The command line users type.
    result = subprocess.run(
        [sys.executable, "-m", "ase", "db", str(db_path), "e_above_hull<0.08", "-c", "+candidate_id"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for record_id in low:
        assert record_id in result.stdout


def test_database_keys_and_values_are_ones_ase_db_takes():
    assert database_key("id") == "candidate_id" and database_key("formula") == "reduced_formula"
    assert database_key("energy") == "screen_energy" and database_key("E hull") == "E_hull"
    assert database_value(float("nan")) is None and database_value("") is None
    assert database_value("0.5") == 0.5 and database_value("3") == 3
    assert database_value("True") is True and database_value("Fm-3m") == "Fm-3m"


def test_the_ternary_hull_has_the_stable_phases_and_none_outside_three_elements():
    references = screen_data().references
    hull = ternary_hull(references, ["Mg", "Mn", "O"], "fitted")
    stable = {s["formula"] for s in hull.stable}
    assert {"MgO", "Mg", "Mn", "O2"} <= stable and hull.tie_lines
    assert all(0 <= s["x"] <= 1 and 0 <= s["y"] <= 0.867 for s in hull.stable)
    binary = ternary_hull(references, ["Mg", "O"], "fitted")
    assert binary.stable == [] and binary.tie_lines == []
