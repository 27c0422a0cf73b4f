"""The report stage on a small real screen, with and without the DFT check's verdict.

The screen's tables come from the stage CLIs on real CHGNet energies of bundled structures
(tests/screen_data.py); the DFT check's table is written as the check writes it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from screen_data import CRITERIA, run_screen, write_dft_check

from pipeline.dft.verdicts import join_verdicts, read_verdicts
from pipeline.report_plots import plot_ml_vs_dft
from pipeline.stages.report import main as report_main

pytestmark = pytest.mark.slow

PLOTS = ("e_hull", "ternary", "gap_pourbaix", "lattice")


@pytest.fixture(scope="module")
def screen(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("report")
    return folder, run_screen(folder)


def report_argv(paths: dict[str, Path], out: Path, *extra: str | Path) -> list[str]:
    argv = ["--chemsys", "Mg-Mn-O", "--candidates", paths["candidates"]]
    argv += ["--criteria", paths["criteria"], "--references", paths["references"]]
    argv += ["--relaxed", paths["relaxed"], "--training", paths["training"]]
    argv += [
        item for plot in PLOTS for item in (f"--out-{plot.replace('_', '-')}", out / f"{plot}.png")
    ]
    return [str(a) for a in [*argv, *extra]]


def test_the_report_draws_the_dft_verdict_only_when_the_check_ran(screen, tmp_path, capsys):
    folder, paths = screen
    assert report_main(report_argv(paths, tmp_path / "off")) == 0
    assert sorted(p.stem for p in (tmp_path / "off").iterdir()) == sorted(PLOTS)
    assert "DFT check" not in capsys.readouterr().out

    candidates = pd.read_csv(paths["candidates"], dtype={"id": str})
    checked = dict(zip(candidates["id"].head(3), [0.02, 0.12, 0.5]))
    dft_check = write_dft_check(folder, paths["candidates"], checked)
    on = tmp_path / "on"
    argv = report_argv(paths, on, "--dft-check", dft_check, "--out-dft", on / "ml_vs_dft.png")
    assert report_main(argv) == 0
    assert (on / "ml_vs_dft.png").stat().st_size > 10_000
    ml = dict(zip(candidates["id"], candidates["e_above_hull"]))
    agree = sum((ml[i] <= 0.08) == (d <= 0.08) for i, d in checked.items())
    assert f"DFT check: 3 candidates with a DFT E_hull, the ML verdict agrees on {agree}" in (
        capsys.readouterr().out
    )
    for plot in PLOTS:  # the other plots are the same with and without the check
        image = f"{plot}.png"
        assert (on / image).read_bytes() == (tmp_path / "off" / image).read_bytes(), plot
    assert report_main([*argv[:-2]]) == 2  # --dft-check without --out-dft: one-line error


def test_the_joined_verdict_draws_checked_candidates_only(screen, tmp_path):
    folder, paths = screen
    candidates = pd.read_csv(paths["candidates"], dtype={"id": str})
    first, second = candidates["id"].head(2)
    dft_check = write_dft_check(tmp_path, paths["candidates"], {first: 0.01, second: 0.3})
    joined = join_verdicts(candidates, read_verdicts(dft_check))
    assert len(joined) == len(candidates) and joined["e_above_hull_dft"].notna().sum() == 2
    assert (joined["e_above_hull"] == candidates["e_above_hull"]).all()  # the ML value kept
    drawn = plot_ml_vs_dft(
        joined, {"synthesizable": CRITERIA.synthesizable}, tmp_path / "ml_vs_dft.png"
    )
    assert drawn["id"].tolist() == [first, second]
    assert drawn["e_above_hull_dft"].tolist() == pytest.approx([0.01, 0.3])
    ml = dict(zip(candidates["id"], candidates["e_above_hull"]))
    expected = [(ml[first] <= 0.08), (ml[second] > 0.08)]
    assert drawn["dft_agrees"].tolist() == expected
