"""Small, real inputs for the screen's later stages, in the file formats of docs/architecture.md.

Energies are CHGNet single-point energies (eV/atom) of bundled structures: the textbook hull
references, a few training structures standing in for the training part of the hull, and a few
other bundled structures standing in for two generators' relaxed samples. Built once per test
session (CHGNet loads in a few seconds and each energy takes a fraction of a second).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gzip
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from pipeline.chemsys import ChemicalSystem
from pipeline.datasets.summary import composition_summary, plot_composition_distribution
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.criteria import Criteria
from pipeline.screen.hull_table import hull_table
from pipeline.screen.known import KnownIndex
from pipeline.screen.potentials import PotentialSpec, describe
from pipeline.screen.validation import COLUMNS, validate
from pipeline.screen.validity import ValidityLimits
from pipeline.settings import default_settings

SCREEN = default_settings().screen

REPO = Path(__file__).resolve().parents[1]
BUNDLED_DATASET = REPO / "resources" / "datasets" / "mgmno_kim2020.json.gz"
BUNDLED_REFERENCES = REPO / "resources" / "datasets" / "mgmno_reference_phases.json"
EXPERIMENTAL = REPO / "resources" / "thermo" / "oxide_formation_free_energies.csv"
MODELS = ("gan", "vae")


@functools.lru_cache(maxsize=1)
def chgnet():
    import torch
    from chgnet.model import CHGNet

    # One thread: these cells are tiny and the machine is shared (more threads only contend).
    torch.set_num_threads(1)
    return CHGNet.load(verbose=False)


def with_energy(record: CrystalRecord, source: str | None = None) -> CrystalRecord:
    """A copy of ``record`` with its CHGNet energy per atom (and a new source if given)."""
    out = copy.deepcopy(record)
    out.properties["energy_per_atom"] = float(
        chgnet().predict_structure(record.to_structure())["e"]
    )
    out.provenance["potential"] = describe(PotentialSpec("chgnet"))
    if source is not None:
        out.source = source
    return out


def first_per_formula(records, count: int, skip: int = 0) -> list[CrystalRecord]:
    """The first structure of each cell formula, ``count`` of them after skipping ``skip``."""
    seen, out = set(), []
    for record in records:
        if record.formula in seen:
            continue
        seen.add(record.formula)
        if len(seen) > skip:
            out.append(record)
        if len(out) == count:
            break
    return out


@dataclass(frozen=True)
class ScreenData:
    references: list[CrystalRecord]  # hull references (textbook phases + training structures)
    training: list[CrystalRecord]
    candidates: list[CrystalRecord]  # "relaxed" samples of two generators, and MgO


@functools.lru_cache(maxsize=1)
def screen_data() -> ScreenData:
    bundled = read_records(BUNDLED_DATASET)
    phases = [with_energy(r, "reference") for r in read_records(BUNDLED_REFERENCES)]
    training = [with_energy(r, "kim2020") for r in first_per_formula(bundled, 8)]
    generated = first_per_formula(bundled, 8, skip=8)
    candidates = [with_energy(r, MODELS[i % 2]) for i, r in enumerate(generated)]
    for i, record in enumerate(candidates):
        record.id = f"{record.source}-{i:03d}"
        record.parent = None
    magnesia = with_energy(next(r for r in phases if r.id == "MgO"), "gan")
    magnesia.id = "gan-MgO"
    return ScreenData(phases + training, training, candidates + [magnesia])


def write_screen_inputs(folder: Path) -> dict[str, Path]:
    """The upstream files of the properties/pourbaix/export/report/evaluate rules, under
    ``folder`` at their pipeline paths; returns them by name."""
    data = screen_data()
    paths = {
        "relaxed": folder / "results/screen/relax/chgnet/relaxed.json.gz",
        "references": folder / "results/hull/chgnet/references_relaxed.json.gz",
        "training": folder / "results/data/dataset.json.gz",
        "known": folder / "results/data/known.json.gz",
        "hull": folder / "results/screen/hull.csv",
        "validation": folder / "results/screen/validation.csv",
        "known_index": folder / "results/screen/known_structures.json.gz",
        "relax_status": folder / "results/screen/relax/chgnet/relax_status.csv",
        "repeats": folder / "results/screen/relax/repeat/relaxed.json.gz",
    }
    write_records(data.candidates, paths["relaxed"])
    write_records([], paths["repeats"])  # the repeat rule's: no verdict checked again
    write_records(data.references, paths["references"])
    write_records(data.training, paths["training"])
    write_records(data.training, paths["known"])
    # the data stage's Materials Project entries: none for the bundled source
    (folder / "results/data/mp_entries.json.gz").write_bytes(gzip.compress(b"[]"))
    # the data stage's plot, which the workflow's report also holds
    system = ChemicalSystem.parse("Mg-Mn-O")
    summary = composition_summary(data.training, system)
    plot_composition_distribution(
        summary, system, folder / "results/data/composition_distribution.png"
    )
    index = KnownIndex.build([*data.training, *data.references])
    index.write(paths["known_index"])
    raw = []
    for model in MODELS:
        samples = [r for r in data.candidates if r.source == model]
        # One raw sample with two atoms 0.3 Å apart: structurally invalid, never relaxed.
        broken = copy.deepcopy(samples[0])
        broken.id, broken.properties = f"{model}-broken", {}
        broken.frac_coords[1] = list(
            broken.to_structure().lattice.get_fractional_coords(
                broken.to_structure()[0].coords + [0.3, 0.0, 0.0]
            )
        )
        paths[f"samples_{model}"] = folder / f"results/samples/{model}/samples.json.gz"
        write_records(samples + [broken], paths[f"samples_{model}"])
        raw += samples + [broken]
    hull_table(data.candidates, data.references, SCREEN.oxygen_reference).to_csv(
        paths["hull"], index=False
    )
    _, verdicts = validate(raw, index, system, ValidityLimits.from_settings(SCREEN))
    pd.DataFrame([asdict(v) for v in verdicts], columns=COLUMNS).to_csv(
        paths["validation"], index=False
    )
    pd.DataFrame(
        {
            "id": [r.id for r in data.candidates],
            "status": "converged",
            "reason": "",
            "steps": 0,
            "energy_per_atom": [r.properties["energy_per_atom"] for r in data.candidates],
        }
    ).to_csv(paths["relax_status"], index=False)
    return paths


# The small screen has no second potential's energies.
CRITERIA = dataclasses.replace(Criteria.default(), second_opinion=None)


def run_screen(folder: Path) -> dict[str, Path]:
    """:func:`write_screen_inputs`, then the properties, pourbaix and export stages' CLIs on
    them; returns every path by name."""
    from pipeline.stages.export import main as export_main
    from pipeline.stages.pourbaix import main as pourbaix_main
    from pipeline.stages.properties import main as properties_main

    paths = write_screen_inputs(folder)
    screen = folder / "results/screen"
    paths |= {
        "properties": screen / "properties.csv",
        "pourbaix": screen / "pourbaix.csv",
        "candidates": folder / "results/candidates.csv",
        "criteria": folder / "results/criteria.json",
        "dft_ready": folder / "results/dft_ready",
    }
    properties = ["--relaxed", paths["relaxed"], "--predictor", "cgcnn", "--threads", "1"]
    assert properties_main([str(a) for a in [*properties, "--out", paths["properties"]]]) == 0
    pourbaix = ["--relaxed", paths["relaxed"], "--references", paths["references"]]
    pourbaix += ["--experimental", EXPERIMENTAL]
    pourbaix += ["--out", paths["pourbaix"], "--out-scheme", screen / "scheme.json"]
    assert pourbaix_main([str(a) for a in pourbaix]) == 0
    export = {
        "--relaxed": paths["relaxed"],
        "--hull": paths["hull"],
        "--properties": paths["properties"],
        "--pourbaix": paths["pourbaix"],
        "--known-index": paths["known_index"],
        "--criteria": CRITERIA.to_json(),
        "--seed": 7,
        "--out-candidates": paths["candidates"],
        "--out-criteria": paths["criteria"],
        "--out-dir": paths["dft_ready"],
    }
    assert export_main([str(a) for item in export.items() for a in item]) == 0
    return paths


def write_dft_check(folder: Path, candidates: Path, e_hull_dft: dict[str, float]) -> Path:
    """``results/dft_check/dft_check.csv`` for the candidates ``e_hull_dft`` names, as the DFT
    check writes it: each row from :func:`pipeline.dft.check.verdict` on a candidate whose DFT
    energy lies ``e_hull_dft[id]`` above a reference of its own composition (the energies are
    set, not computed: GPAW runs in tests/test_dft_gpaw.py)."""
    from pipeline.dft.check import Calculation, verdict, write_dft_check
    from pipeline.dft.gpaw_calc import DftEnergy
    from pipeline.dft.hull import Phase

    table = pd.read_csv(candidates, dtype={"id": str})
    ml_e_hull = dict(zip(table["id"], table["e_above_hull"].astype(float)))
    relaxed = {r.id: r for r in screen_data().candidates}
    rows = []
    for record_id, distance in e_hull_dft.items():
        structure = relaxed[record_id].to_structure()
        n = len(structure)
        energy = -6.0 + distance
        result = DftEnergy(energy * n, n, 0.0, 12, True, (2, 2, 2), 30.0, 20.0)
        calculation = Calculation(record_id, structure, result, energy, cached=False)
        reference = Phase("ref", structure.composition, -6.0)
        rows.append(
            verdict(
                relaxed[record_id],
                ml_e_hull[record_id],
                calculation,
                [reference],
                ["ref"],
                {},
                CRITERIA,
            )
        )
    return write_dft_check(rows, folder / "results/dft_check/dft_check.csv")
