"""The explorer page in a real browser: headless Chromium opens it from disk (file://, no
server, no network), a click on a table row selects a structure, the 3D viewer draws its atoms
(the page's 3Dmol.js model and non-background pixels in a screenshot of the viewer), a click
on a header sorts the table, and a click on a plot point selects its structure.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium
(the ``test`` extra). Skipped without them, except where HTVS_REQUIRE_BROWSER=1 or CI=true
turns a missing browser into a failure. One screenshot of the page is kept as
``results/test-artifacts/explorer.png`` (and in pytest's tmp dir).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from test_explorer import build_explorer, page_data

from pipeline.records import write_records
from pipeline.screen.criteria import Criteria
from pipeline.stages.explorer import main as explorer_main

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
BUNDLED_REFERENCES = REPO / "resources/datasets/mgmno_reference_phases.json"
ARTIFACTS = REPO / "results" / "test-artifacts"
WINDOW = (1500, 1900)


def _cannot_run(reason: str) -> None:
    if os.environ.get("HTVS_REQUIRE_BROWSER") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"the browser test must run here but cannot: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through chromedriver (Debian's packages)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _cannot_run('selenium missing: pip install -e ".[test]"')
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        _cannot_run("chromium and chromedriver missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # WebGL without a GPU: Chromium's software renderer.
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """The explorer of a small real screen, opened from disk; yields (driver, run folder)."""
    run = build_explorer(tmp_path_factory.mktemp("explorer_browser"))
    index = run / "results/explorer/index.html"
    browser.get(index.as_uri())
    wait_for(browser, "return window.explorer && window.explorer.state.selected !== null")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    return browser, run


def wait_for(driver, script: str, timeout: float = 30.0):
    """Poll ``script`` (JavaScript returning a value) until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}")


def coloured_pixels(element) -> int:
    """Coloured pixels in a screenshot of ``element``: the atoms and bonds, in element colours,
    and not the white background or the grey cell edges."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")).astype(int)
    return int((image.max(axis=2) - image.min(axis=2) > 60).sum())


def table_ids(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#table-body tr')].map(r => r.dataset.id)"
    )


def column_values(driver, key: str) -> list:
    return driver.execute_script(
        "const e = window.explorer, D = window.EXPLORER_DATA;"
        "const i = D.columns.findIndex(c => c.key === arguments[0]);"
        "return e.state.order.map(r => D.rows[r][i]);",
        key,
    )


def test_a_selected_structure_is_drawn_with_its_atoms(page):
    from selenium.webdriver.common.by import By

    driver, run = page
    data = page_data(run)
    target = "gan-MgO"
    driver.find_element(By.CSS_SELECTOR, f'#table-body tr[data-id="{target}"]').click()
    wait_for(driver, f"return window.explorer.state.selected === '{target}'")
    natoms = len(
        Structure.from_file(
            run / "results/explorer" / data["structures"][target]["files"]["poscar"]
        )
    )
    cell = driver.execute_script("return window.explorer.state.cellAtoms")
    drawn = driver.execute_script("return window.explorer.state.atomsDrawn")
    assert cell["candidate"] == natoms == 2  # the primitive rock-salt cell
    assert cell["known"] == 2  # the reference rock salt beside it
    # With the images on the cell's faces, edges and corners: 8 Mg corners, 1 O at the centre.
    assert drawn["candidate"] == drawn["known"] == 9
    for viewer in ("viewer-candidate", "viewer-known"):
        pixels = coloured_pixels(driver.find_element(By.ID, viewer))
        assert pixels > 1000, f"{viewer}: no atoms drawn on the canvas"
    assert driver.find_element(By.ID, "candidate-title").text.startswith(target)
    links = driver.find_elements(By.CSS_SELECTOR, "#candidate-links a")
    hrefs = [a.get_attribute("href") for a in links]
    assert any(h.endswith("structures/gan-MgO.vasp") for h in hrefs)
    assert any(h.endswith("structures/gan-MgO.cif") for h in hrefs)


def test_metals_are_bonded_to_oxygen_only(page):
    """By distance alone 3Dmol.js would also join neighbouring Mn in this MgMn2O4 candidate."""
    driver, _ = page
    driver.execute_script("window.explorer.select('gan-004')")
    bonded = driver.execute_script(
        "const atoms = window.explorer.viewers.candidate.getModel().selectedAtoms({});"
        "return atoms.filter(a => a.elem !== 'O').map(a => a.bonds.map(j => atoms[j].elem));"
    )
    assert sum(map(len, bonded)) > 0 and all(set(elements) <= {"O"} for elements in bonded)


def test_a_header_click_sorts_the_table(page):
    from selenium.webdriver.common.by import By

    driver, _ = page
    header = driver.find_element(By.CSS_SELECTOR, '#header-row th[data-key="e_above_hull"]')
    header.click()
    ascending = [v for v in column_values(driver, "e_above_hull") if v is not None]
    assert ascending == sorted(ascending) and len(set(ascending)) > 1
    driver.find_element(By.CSS_SELECTOR, '#header-row th[data-key="e_above_hull"]').click()
    descending = [v for v in column_values(driver, "e_above_hull") if v is not None]
    assert descending == sorted(ascending, reverse=True)
    shown = table_ids(driver)
    assert shown == driver.execute_script(
        "const D = window.EXPLORER_DATA, i = D.columns.findIndex(c => c.key === 'id');"
        "return window.explorer.state.order.map(r => D.rows[r][i]);"
    )


def test_a_filter_keeps_the_matching_rows(page):
    from selenium.webdriver.common.by import By

    driver, _ = page
    box = driver.find_element(By.CSS_SELECTOR, '#filter-row input[data-key="e_above_hull"]')
    box.send_keys("<0.08")
    kept = column_values(driver, "e_above_hull")
    assert kept and all(v < 0.08 for v in kept)
    box.clear()
    box.send_keys(" ")  # an empty filter again: every row
    assert len(table_ids(driver)) == len(driver.execute_script("return EXPLORER_DATA.rows"))


def test_a_click_on_the_hull_plot_selects_its_structure(page):
    driver, run = page
    # Plotly's click event, fired by the plot itself for its first candidate point.
    target = driver.execute_script(
        "const plot = document.getElementById('plot-hull');"
        "const trace = plot.data.findIndex(t => t.name === 'candidates');"
        "const id = plot.data[trace].customdata[0];"
        "plot.emit('plotly_click', {points: [{customdata: id}]});"
        "return id;"
    )
    wait_for(driver, f"return window.explorer.state.selected === '{target}'")
    # One ring, around the selected point.
    rings = driver.execute_script(
        "const plot = document.getElementById('plot-hull');"
        "return plot.layout.shapes.filter(s => s.type === 'circle' && s.visible)"
        "  .map(s => [s.xanchor, s.yanchor]);"
    )
    assert rings == [page_data(run)["structures"][target]["xy"]]
    # The best are drawn last, on top of worse ones: failing points first, then by E_hull
    # from high to low.
    drawn = driver.execute_script(
        "const plot = document.getElementById('plot-hull');"
        "const t = plot.data.find(t => t.name === 'candidates');"
        "return t.customdata.map((id, i) => [id, t.marker.color[i]]);"
    )
    data = page_data(run)
    keys = [c["key"] for c in data["columns"]]
    passes = {r[keys.index("id")]: r[keys.index("passes")] for r in data["rows"]}
    order = [(passes[i], -e_hull) for i, e_hull in drawn]
    assert order == sorted(order) and len(drawn) == len(data["rows"])


def test_screenshot_of_the_page(page, tmp_path):
    driver, _ = page
    driver.execute_script(
        "const e = window.explorer, D = window.EXPLORER_DATA;"
        "const rank = D.columns.findIndex(c => c.key === 'rank');"
        "const first = D.rows.find(r => r[rank] === 1);"
        "e.select(first[D.columns.findIndex(c => c.key === 'id')]); window.scrollTo(0, 0);"
        "document.getElementById('table-scroll').scrollLeft = 0;"
    )
    time.sleep(0.5)
    shot = tmp_path / "explorer.png"
    driver.save_screenshot(str(shot))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "explorer.png")
    assert shot.stat().st_size > 50_000


def test_a_run_that_relaxed_nothing_gives_a_working_page(browser, tmp_path):
    """The tiny default run relaxes nothing: the page still opens, without script errors."""
    write_records([], tmp_path / "relaxed.json.gz")
    (tmp_path / "candidates.csv").write_text("id,model,formula,e_above_hull,passes,known_as\n")
    Criteria.default().write(tmp_path / "criteria.json")
    arguments = ["--relaxed", str(tmp_path / "relaxed.json.gz")]
    arguments += ["--candidates", str(tmp_path / "candidates.csv")]
    arguments += ["--criteria", str(tmp_path / "criteria.json")]
    arguments += ["--references", str(BUNDLED_REFERENCES), "--known", str(BUNDLED_REFERENCES)]
    arguments += ["--chemsys", "Mg-Mn-O"]
    arguments += ["--out-dir", str(tmp_path / "explorer"), "--out-db", str(tmp_path / "c.db")]
    assert explorer_main(arguments) == 0
    browser.get((tmp_path / "explorer/index.html").as_uri())
    wait_for(browser, "return window.explorer !== undefined")
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert browser.execute_script("return window.explorer.state.selected") is None
    count = browser.execute_script("return document.getElementById('row-count').textContent")
    assert count == "0 of 0 structures"
