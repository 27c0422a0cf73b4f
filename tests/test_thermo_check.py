"""Each potential's hull against experiment: energy scales, oxygen reference, measured data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest
from conftest import REPO
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition

from pipeline.errors import PipelineInputError
from pipeline.records import read_records, write_records
from pipeline.screen.convex_hull import hull_entries, pd_entry
from pipeline.screen.criteria import Criteria
from pipeline.screen.experimental_check import check_hull, experimentally_stable
from pipeline.screen.hull_agreement import pairwise_agreement
from pipeline.screen.modes import single_point_records
from pipeline.screen.potential_names import energy_scale
from pipeline.screen.potentials import PotentialSpec, describe
from pipeline.screen.thermochemistry import (
    fit_oxygen,
    is_binary_oxide,
    measured_formation_enthalpies,
    with_oxygen_reference,
)

THERMO = REPO / "resources" / "thermo"
MEASURED_OXIDES = ["MgO", "Mn2O3", "Mn3O4", "MnO", "MnO2"]
CHECKPOINTS = {"chgnet": "0.3.0", "sevennet": "7net-0", "m3gnet": "MP-2021.2.8-EFS"}


def test_measured_enthalpies_cover_the_oxides_with_their_source():
    measured = measured_formation_enthalpies(["Mg", "Mn", "O"])
    assert set(MEASURED_OXIDES) <= set(measured)
    mno = measured["MnO"]
    # -384.9 kJ/mol of MnO in the compilation, per atom of two.
    assert mno.enthalpy_per_atom * 2 * 96.485 == pytest.approx(-384.9, abs=0.1)
    assert "exp_compounds.json.gz [MnO]" in mno.source and "Wang et al." in mno.source
    assert all(
        set(Composition(f).chemical_system.split("-")) <= {"Mg", "Mn", "O"} for f in measured
    )


def test_the_measured_enthalpies_make_the_known_manganese_oxides_stable():
    measured = measured_formation_enthalpies(["Mn", "O"])
    assert experimentally_stable(measured, ["Mn", "O"]) == ["Mn2O3", "Mn3O4", "MnO", "MnO2"]
    assert is_binary_oxide("MnO2") and is_binary_oxide("Mn3O4")
    assert not is_binary_oxide("BaO2")  # a peroxide: not in the oxygen fit


def entries_at(mu_true: float, molecule: float) -> list[PDEntry]:
    """Elements and the measured Mn oxides whose energies reproduce experiment exactly for an
    oxygen energy ``mu_true`` (the metal at -9 eV/atom), and an O2 entry at ``molecule``."""
    measured = measured_formation_enthalpies(["Mn", "O"])
    entries = [PDEntry("Mn", -9.0), PDEntry("O2", 2 * molecule)]
    for formula in ("MnO", "Mn3O4", "Mn2O3", "MnO2"):
        c = Composition(formula)
        energy = measured[formula].enthalpy_per_atom * c.num_atoms + c["Mn"] * -9.0
        entries.append(PDEntry(c, energy + c["O"] * mu_true, name=formula))
    return entries


def test_the_fitted_oxygen_reference_recovers_the_oxygen_energy_experiment_implies():
    entries = entries_at(mu_true=-4.95, molecule=-4.80)
    fit = fit_oxygen(entries, "fitted")
    assert fit.mu == pytest.approx(-4.95) and fit.molecule == pytest.approx(-4.80)
    assert fit.fitted_to == ("Mn2O3", "Mn3O4", "MnO", "MnO2")
    assert max(map(abs, fit.leave_one_out.values())) == pytest.approx(0.0, abs=1e-9)
    moved = with_oxygen_reference(entries, fit)
    assert moved[1].energy_per_atom == pytest.approx(-4.95)
    assert [e.energy for e in moved[2:]] == [e.energy for e in entries[2:]]
    kept = fit_oxygen(entries, "molecule")
    assert kept.mu == kept.molecule == pytest.approx(-4.80)
    with pytest.raises(PipelineInputError, match="oxygen reference"):
        fit_oxygen(entries, "gas")


def shipped(potential: str):
    return read_records(
        THERMO / f"mgmno_reference_phases_{potential}-{CHECKPOINTS[potential]}.json.gz"
    )


def test_raw_pbe_potentials_get_the_mp2020_corrections_on_every_hull_entry():
    mno = next(r for r in shipped("sevennet") if r.id == "MnO")
    raw = mno.properties["energy_per_atom"] * 2
    # Oxide (-0.687 per O) and Mn GGA+U (-1.668 per Mn) corrections of MP2020.
    assert pd_entry(mno).energy == pytest.approx(raw - 0.687 - 1.668, abs=1e-3)
    as_chgnet = replace(mno, provenance={"potential": "chgnet (chgnet) checkpoint 0.3.0"})
    assert pd_entry(as_chgnet).energy == pytest.approx(raw)
    assert "MP2020" in energy_scale("sevennet").description
    assert "no correction" in energy_scale("chgnet").description
    # The oxygen reference moves the O2 entry of the hull only.
    entries = hull_entries(shipped("sevennet"), "fitted")
    molecule = hull_entries(shipped("sevennet"), "molecule")
    moved = [e.name for e, m in zip(entries, molecule) if e.energy != m.energy]
    assert moved == ["O2"]


def test_agreement_is_the_verdicts_same_side_of_both_thresholds():
    e_hull = {
        "chgnet": pd.Series({"a": 0.0, "b": 0.1, "c": 0.05}),
        "m3gnet": pd.Series({"a": 0.01, "b": 0.3, "c": float("nan")}),
    }
    pairs = pairwise_agreement(e_hull, Criteria.default())
    assert pairs["chgnet-m3gnet"]["candidates"] == 3
    assert pairs["chgnet-m3gnet"]["both_evaluated"] == 2
    assert pairs["chgnet-m3gnet"]["agree"] == pytest.approx(1 / 3, abs=1e-3)  # a only


@pytest.mark.slow
@pytest.mark.parametrize("potential", sorted(CHECKPOINTS))
def test_every_potential_puts_the_measured_oxides_on_its_own_hull(potential):
    references = shipped(potential)
    spec = PotentialSpec(potential, CHECKPOINTS[potential])
    # Recompute the energies at the shipped relaxed geometries with the installed potential.
    energies = single_point_records(references, spec, progress=False)
    for record, energy in zip(references, energies):
        assert energy == pytest.approx(record.properties["energy_per_atom"], abs=5e-3)
    recomputed = [
        replace(r, properties={"energy_per_atom": e}, provenance={"potential": describe(spec)})
        for r, e in zip(references, energies)
    ]
    checked = check_hull(recomputed, "fitted")
    assert checked.above_hull == {}, checked.above_hull
    assert checked.missing == []
    assert [f.formula for f in checked.formation] == MEASURED_OXIDES
    assert checked.mae <= 0.10, checked.summary()


@pytest.mark.slow
def test_the_bench_prints_one_line_per_potential_with_the_agreement_of_a_run(tmp_path):
    # A run folder whose "candidates" are CHGNet's relaxed references: SevenNet's energies at
    # those geometries are computed by the bench itself (the run has no second opinion).
    relaxed = tmp_path / "results" / "screen" / "relax" / "chgnet" / "relaxed.json.gz"
    relaxed.parent.mkdir(parents=True)
    write_records(shipped("chgnet"), relaxed)
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "thermo_check.py"), "--potentials", "chgnet",
         "sevennet", "--results", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["potential"].split()[0] for line in lines] == ["chgnet", "sevennet"]
    for line in lines:
        assert line["formation_enthalpy_mae_eV_per_atom"] <= 0.10
        assert line["stable_phases_above_hull_eV_per_atom"] == {}
        pair = line["agreement"]["chgnet-sevennet"]
        # The references sit on (or next to) both hulls: the verdicts agree on each.
        assert pair["candidates"] == pair["both_evaluated"] == 9 and pair["agree"] == 1.0


def test_a_lone_fitted_oxide_gives_no_error_figure_rather_than_a_perfect_one():
    # Mg-O alone: MgO sets mu_O and so cannot test it.
    references = [r for r in shipped("chgnet") if "Mn" not in r.species]
    checked = check_hull(references, "fitted")
    assert checked.oxygen.fitted_to == ("MgO",)
    assert math.isnan(checked.mae) and checked.summary()["residuals_eV_per_atom"] == {"MgO": None}
    # With the molecule it is a prediction, and counts.
    assert check_hull(references, "molecule").mae == pytest.approx(0.011, abs=0.002)
