"""Is the explorer usable with thousands of structures? Builds the page for N bundled structures
and times it in headless Chromium; prints ONE JSON line.

The N structures are the bundled Mg-Mn-O training set standing in for relaxed candidates,
with the one table every run has (``candidates.csv``: id, model, formula); the explorer stage
adds space groups, nearest known structures (each is its own known structure, ``known_as``)
and the files. Timed: the stage (``build_s``), the size of ``data.js`` and of the
folder, and in Chromium (Debian's chromium + chromium-driver, selenium) the page's load to its
first drawn structure, a sort by a header click, a column filter and the selection of a
structure (JavaScript time of each handler, ms).

    python bench/explorer_scale.py            # all 2,627 bundled structures
    python bench/explorer_scale.py --n 500
    python bench/explorer_scale.py --n 10000  # the set, then rattled copies of it (issue 25)

Beyond the 2,627 bundled structures the set is repeated with every atom moved by up to
0.05 Å (a seeded rattle per copy), so each row is a structure of its own, as the candidates
of a run at the paper's scale would be. ``db_s`` times ``candidates.db`` (written in one
transaction) apart from the rest of the stage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.explorer.database import write_database  # noqa: E402
from pipeline.explorer.site import ExplorerInputs, write_explorer  # noqa: E402
from pipeline.records import (  # noqa: E402
    CrystalRecord,
    make_ids_unique,
    read_records,
    write_records,
)
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.settings import default  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "resources/datasets/mgmno_kim2020.json.gz"
REFERENCES = REPO / "resources/datasets/mgmno_reference_phases.json"

# Each returns the milliseconds its synchronous handler took.
SORT = """
const t0 = performance.now();
document.querySelector('#header-row th[data-key="natoms"]').click();
return performance.now() - t0;
"""
FILTER = """
const box = document.querySelector('#filter-row input[data-key="natoms"]');
box.value = '>=20';
const t0 = performance.now();
box.dispatchEvent(new Event('input', {bubbles: true}));
return [performance.now() - t0, window.explorer.state.order.length];
"""
SELECT = """
const D = window.EXPLORER_DATA, i = D.columns.findIndex(c => c.key === 'id');
const id = D.rows[D.rows.length - 1][i];
const t0 = performance.now();
window.explorer.select(id);
return performance.now() - t0;
"""


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1500,1900", "--use-angle=swiftshader",
                     "--enable-unsafe-swiftshader"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def structures(n: int | None) -> list[CrystalRecord]:
    """The first ``n`` bundled structures, continued by rattled copies of the set."""
    bundled = read_records(DATASET)
    records = bundled[:n]
    copy = 0
    while n is not None and len(records) < n:
        copy += 1
        for record in bundled[: n - len(records)]:
            structure = record.to_structure()
            structure.perturb(0.05, min_distance=0.0, seed=copy * len(bundled) + len(records))
            records.append(
                CrystalRecord.from_structure(
                    structure, id=f"{record.id}-copy{copy}", source=record.source
                )
            )
    make_ids_unique(records)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="structures (default: all)")
    args = parser.parse_args()
    records = structures(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_records(records, folder / "relaxed.json.gz")
        pd.DataFrame(
            {
                "id": [r.id for r in records],
                "model": [r.source for r in records],
                "formula": [r.formula for r in records],
                # each is its own known structure: the nearest shown is itself
                "known_as": [r.id for r in records],
            }
        ).to_csv(folder / "candidates.csv", index=False)
        Criteria.default().write(folder / "criteria.json")
        inputs = ExplorerInputs(
            relaxed=folder / "relaxed.json.gz",
            candidates=folder / "candidates.csv",
            criteria=folder / "criteria.json",
            references=REFERENCES,
            known=folder / "relaxed.json.gz",
            chemsys="Mg-Mn-O",
            oxygen_reference=default("screen.oxygen_reference"),
        )
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # stdout: the JSON line alone
            write_explorer(inputs, folder / "explorer", folder / "candidates.db")
        build_s = time.perf_counter() - start
        # candidates.db again on its own (write_explorer wrote it as its last step)
        start = time.perf_counter()
        write_database(records, pd.read_csv(folder / "candidates.csv"), folder / "again.db")
        db_s = time.perf_counter() - start
        db_mb = (folder / "candidates.db").stat().st_size / 1e6
        page = folder / "explorer"
        folder_mb = sum(p.stat().st_size for p in page.rglob("*") if p.is_file()) / 1e6
        data_js_mb = (page / "data.js").stat().st_size / 1e6
        driver = chromium()
        try:
            start = time.perf_counter()
            driver.get((page / "index.html").as_uri())
            while not driver.execute_script(
                "return window.explorer && window.explorer.state.atomsDrawn.candidate > 0"
            ):
                time.sleep(0.05)
            load_s = time.perf_counter() - start
            sort_ms = driver.execute_script(SORT)
            filter_ms, kept = driver.execute_script(FILTER)
            select_ms = driver.execute_script(SELECT)
        finally:
            driver.quit()
    print(
        json.dumps(
            {
                "structures": len(records),
                "build_s": round(build_s, 1),
                "db_s": round(db_s, 1),
                "db_mb": round(db_mb, 1),
                "data_js_mb": round(data_js_mb, 2),
                "folder_mb": round(folder_mb, 1),
                "load_s": round(load_s, 2),
                "sort_ms": round(sort_ms, 1),
                "filter_ms": round(filter_ms, 1),
                "filter_kept": kept,
                "select_ms": round(select_ms, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
