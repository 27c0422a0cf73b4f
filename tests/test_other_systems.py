"""Chemical systems other than Mg-Mn-O: elemental references from ASE, a user's CIF folder,
default oxidation states, hull coverage, Pourbaix for any element, Materials Project documents."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from monty.serialization import dumpfn, loadfn
from prototypes import LI_CO_O, SR_TI_O, prototype_structure, write_cif_folder
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedStructureEntry

from pipeline.chemsys import ChemicalSystem
from pipeline.datasets import materials_project as mp
from pipeline.datasets.elements import elemental_reference
from pipeline.records import CrystalRecord, read_records
from pipeline.screen.coverage import binaries_without_compounds, with_nonmetal
from pipeline.screen.hull_table import add_coverage
from pipeline.screen.pourbaix_scheme import (
    KJ_PER_MOL_PER_EV,
    ase_aqueous_species,
    fit_chemical_potentials,
    pourbaix_obstacle,
)
from pipeline.stages.data import main as data_main
from pipeline.target_compositions import complete_oxidation_states, enumerate_compositions


@pytest.mark.parametrize(
    "symbol, how, natoms, approximate",
    [
        ("Ti", "bulk hcp", 2, False),
        ("Ba", "bulk bcc", 1, False),
        ("Sn", "bulk bct", 2, False),
        ("O", "molecule O2", 2, False),
        ("Cl", "molecule Cl2", 2, False),
        ("He", "atom", 1, False),
        ("Ga", "bulk fcc guess", 1, True),  # ASE's orthorhombic Ga needs a basis it lacks
    ],
)
def test_every_element_gets_a_reference_structure(symbol, how, natoms, approximate):
    reference = elemental_reference(symbol)
    record = reference.to_record()
    assert (reference.how, record.natoms, reference.approximate) == (how, natoms, approximate)
    assert set(record.species) == {symbol} and record.source == "ase"
    if how.startswith(("molecule", "atom")):
        # One molecule in a 10 Å box: its periodic images are far beyond any cutoff.
        assert np.allclose(np.abs(record.lattice), 10.0 * np.eye(3))
    if how.startswith("molecule"):
        bond = np.linalg.norm(np.subtract(*record.to_structure().cart_coords))
        assert 0.7 < bond < 2.1
    if how.startswith("bulk"):
        assert 5 < record.to_structure().volume / natoms < 70


def run_data_stage(tmp_path, system: str, prototypes) -> tuple[list[str], dict]:
    cifs = write_cif_folder(tmp_path / "cifs", prototypes)
    out = {
        name: tmp_path / f"{name}.out"
        for name in ("dataset", "references", "summary", "rejected", "plot", "mp-entries")
    }
    out["plot"] = tmp_path / "plot.png"
    args = ["--source", "cif_dir", "--chemsys", system, "--cif-dir", str(cifs)]
    args += [a for key, path in out.items() for a in (f"--out-{key}", str(path))]
    return args, out


def test_a_cif_folder_of_another_system_gets_ase_elements_and_a_reference_report(tmp_path, capsys):
    args, out = run_data_stage(tmp_path, "Sr-Ti-O", SR_TI_O)
    assert data_main(args) == 0
    log = capsys.readouterr().out
    references = read_records(out["references"])
    # The bundled O2 belongs to the system; Sr and Ti are nowhere in the folder: built by ASE.
    assert sorted((r.source, r.formula) for r in references) == [
        ("ase", "Sr1"),
        ("ase", "Ti2"),
        ("reference", "O2"),
    ]
    assert "hull references from ase: Sr-ase-bulk-fcc, Ti-ase-bulk-hcp" in log
    assert "(5 formulas): Sr2TiO4, SrO, SrTiO3, Ti2O3, TiO2" in log
    assert "no compound at all in the binary subsystem(s) Sr-Ti:" in log
    # Caps come from the folder: Ti2O3's primitive cell holds 4 Ti and 6 O.
    dataset = read_records(out["dataset"])
    assert len(dataset) == len(SR_TI_O)
    assert max(r.species.count("Ti") for r in dataset) == 4


def test_a_second_system_through_data_compositions_and_references(tmp_path, capsys):
    args, out = run_data_stage(tmp_path, "Li-Co-O", LI_CO_O)
    assert data_main(args) == 0
    log = capsys.readouterr().out
    sources = {r.formula: r.source for r in read_records(out["references"])}
    assert sources == {"Li1": "ase", "Co2": "ase", "O2": "reference"}
    assert "no compound at all in the binary subsystem(s) Li-Co:" in log
    # LiCoO2, CoO and Li2O primitive cells: at most 2 Li (Li2O), 1 Co, 2 O (LiCoO2).
    dataset = read_records(out["dataset"])
    caps = [max(r.species.count(el) for r in dataset) for el in ("Li", "Co", "O")]
    assert caps == [2, 1, 2]
    ranges, notes = complete_oxidation_states(("Li", "Co", "O"), {})
    assert len(notes) == 3
    counts = enumerate_compositions(("Li", "Co", "O"), caps, ranges)
    assert (1, 1, 2) in counts  # LiCoO2: Li(I), Co(III)
    assert (2, 1, 2) in counts  # Li2CoO2: Co(II)
    assert (1, 1, 1) not in counts


def test_binary_subsystems_without_compounds_are_found_and_flagged():
    missing = binaries_without_compounds(("Ba", "Ti", "O"), ["BaTiO3", "TiO2", "Ti", "Ba", "O2"])
    assert missing == ["Ba-Ti", "Ba-O"]
    assert with_nonmetal(missing) == ["Ba-O"]
    references = [
        CrystalRecord.from_structure(prototype_structure(p), id=p[0])
        for p in SR_TI_O
        if p[0].startswith(("SrTiO3", "TiO2"))
    ]
    table = pd.DataFrame({"formula": ["SrTiO3", "TiO2", "Sr2TiO4"]})
    add_coverage(table, references)
    assert table["missing_binaries"].tolist() == ["Sr-O", "", "Sr-O"]
    assert table["e_above_hull_is_lower_bound"].tolist() == [True, False, True]


def record_with_energy(formula: str, energy_per_atom: float) -> CrystalRecord:
    """A placeholder-free record: one atom per site on a cubic grid, with an energy."""
    composition = Composition(formula)
    species = [el.symbol for el, n in composition.items() for _ in range(int(n))]
    grid = [[i / len(species), 0, 0] for i in range(len(species))]
    lattice = (3.0 * len(species) * np.eye(3)).tolist()
    return CrystalRecord(
        id=formula,
        lattice=lattice,
        species=species,
        frac_coords=grid,
        formula=formula,
        source="test",
        properties={"energy_per_atom": energy_per_atom},
    )


def test_pourbaix_says_why_it_cannot_be_computed():
    # Elements at 0 eV and oxides at their experimental free energy: the fit is exact.
    experimental = {
        "BaO": -525.1 / KJ_PER_MOL_PER_EV,
        "TiO2": -889.5 / KJ_PER_MOL_PER_EV,
        "Ta2O5": -1911.2 / KJ_PER_MOL_PER_EV,
    }
    references = [record_with_energy(f, 0.0) for f in ("Ba", "Ti", "Ta", "O2", "Sr")]
    references += [
        record_with_energy("TiO2", experimental["TiO2"] / 3),
        record_with_energy("Ta2O5", experimental["Ta2O5"] / 7),
    ]
    fit = fit_chemical_potentials(references, experimental)
    assert max(map(abs, fit.residuals.values())) < 1e-9
    ions = ase_aqueous_species(["Ba", "Ti", "Ta", "Sr"])

    def obstacle(formula):
        return pourbaix_obstacle(Composition(formula), fit, ions, experimental)

    assert obstacle("TiO2") is None
    assert obstacle("BaTiO3") == (
        "no experimental oxide datum to fit the reference of Ba: the hull references hold"
        " none of its tabulated oxides (BaO)"
    )
    assert obstacle("SrTiO3") == (
        "no experimental oxide datum to fit the reference of Sr: no binary oxide in the"
        " experimental free-energy table"
    )
    assert obstacle("Ta2O5") == "no aqueous species of Ta in the ion data"
    assert obstacle("LaTiO3") == "no hull reference of La"


def test_materials_project_documents_of_another_system_become_records_and_entries(tmp_path):
    """mp-api's SummaryDoc fields and ComputedStructureEntry objects, written here (offline)."""
    system = ChemicalSystem.parse("Sr-Ti-O")
    structures = {p[0].split("_")[0]: prototype_structure(p) for p in SR_TI_O}
    rows = [("mp-5229", "SrTiO3", -8.03, 0.0), ("mp-2472", "SrO", -6.04, 0.0)]
    rows += [("mp-2657", "TiO2", -8.94, 0.0), ("mp-x", "Sr2TiO4", -7.6, 0.02)]
    docs = [
        SimpleNamespace(
            material_id=mid,
            structure=structures[name],
            energy_per_atom=e,
            uncorrected_energy_per_atom=e + 0.4,
            formation_energy_per_atom=None,
            energy_above_hull=ehull,
            band_gap=2.0,
            is_stable=ehull == 0,
        )
        for mid, name, e, ehull in rows
    ]
    query = mp.MaterialsProjectQuery(system, require_all_elements=True, reference_e_above_hull=0.0)
    training, references = mp.docs_to_records(docs, query)
    assert [r.id for r in training] == ["mp-5229", "mp-x"]
    assert [r.id for r in references] == ["mp-2472", "mp-2657", "mp-5229"]
    assert mp.subsystems(system)[-1] == "O-Sr-Ti"
    entries = [
        ComputedStructureEntry(
            d.structure, d.energy_per_atom * len(d.structure), entry_id=d.material_id
        )
        for d in docs
    ]
    dumpfn(entries, tmp_path / "mp_entries.json.gz")
    again = loadfn(tmp_path / "mp_entries.json.gz")
    assert [e.entry_id for e in again] == [d.material_id for d in docs]
    assert again[0].composition.reduced_formula == "SrTiO3"
