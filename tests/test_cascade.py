"""The screen's verdict on the hull, its robustness under a rattle, and the cascade."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from screen_helpers import perturbed

from pipeline.formats import REPEAT_E_HULL
from pipeline.records import CrystalRecord, read_records
from pipeline.screen.cascade import PROMOTED, REJECTED, CascadeSettings, run_cascade
from pipeline.screen.convex_hull import e_above_hull_of, phase_diagram
from pipeline.screen.criteria import Criteria
from pipeline.screen.hull_table import add_other_potential, hull_table
from pipeline.screen.modes import relax_records
from pipeline.screen.potentials import PotentialSpec, describe
from pipeline.screen.relaxation import RelaxSettings
from pipeline.screen.verdicts import rattled, relax_along_screen_path
from pipeline.settings import default_settings

CHGNET = PotentialSpec("chgnet")
SETTINGS = RelaxSettings(fmax=0.05, max_steps=100)
OXYGEN = default_settings().screen.oxygen_reference


@pytest.fixture(scope="module")
def references(repo):
    """CHGNet's hull shipped for the bundled Mg-Mn-O set."""
    return read_records(repo / "resources/hull/mgmno_kim2020_chgnet-0.3.0.json.gz")


@pytest.fixture(scope="module")
def diagram(references):
    return phase_diagram(references, OXYGEN)


def by_id(records, *ids):
    table = {r.id: r for r in records}
    return [table[i] for i in ids]


def relaxed(records):
    """The records relaxed with CHGNet (failed ones left out), as the relax stage keeps them."""
    results, _ = relax_along_screen_path(records, CHGNET, SETTINGS, "batched", None, False, False)
    potential = describe(CHGNET)
    return [res.to_record(rec, potential) for rec, res in zip(records, results) if res.ok]


def e_hull_of(diagram, record, result) -> float:
    energy = result.energy_per_atom if result.ok else math.nan
    return e_above_hull_of(diagram, record, energy, describe(CHGNET))


def test_a_rattle_moves_every_atom_by_its_amplitude_the_same_way_in_every_run(
    reference_records,
):
    (start,) = by_id(reference_records, "MnO2")
    first, again = rattled(start, 1e-4, seed=0), rattled(start, 1e-4, seed=0)
    moved = first.to_structure().cart_coords - start.to_structure().cart_coords
    assert np.linalg.norm(moved, axis=1) == pytest.approx(np.full(len(moved), 1e-4), abs=1e-9)
    assert np.array_equal(first.to_structure().cart_coords, again.to_structure().cart_coords)
    other = rattled(start, 1e-4, seed=1).to_structure().cart_coords
    assert not np.allclose(other, first.to_structure().cart_coords, atol=1e-6)
    assert first.id == start.id


@pytest.mark.slow
def test_a_verdict_that_a_repeat_contradicts_is_marked_unstable(reference_records, references):
    starts = [
        perturbed(r, r.id, seed=k, distance=0.05)
        for k, r in enumerate(by_id(reference_records, "MgO", "MnO"))
    ]
    first = hull_table(relaxed(starts), references, OXYGEN).set_index("id")["e_above_hull"]
    assert (first.abs() < 0.02).all()  # both rock salts relax onto the hull
    repeats = relaxed([rattled(s, 1e-4, seed=0) for s in starts])
    table = pd.DataFrame(
        {
            "id": ["MgO", "MnO"],
            # MnO as if its first relaxation had stopped 0.15 eV/atom higher (across 0.08)
            "e_above_hull": [first["MgO"], first["MnO"] + 0.15],
            "band_gap": 2.0,
            "delta_g_pbx": 0.0,
            "known_as": None,
            "duplicate_of": None,
        }
    )
    add_other_potential(table, REPEAT_E_HULL, repeats, references, OXYGEN)
    assert table[REPEAT_E_HULL].tolist() == pytest.approx(first.tolist(), abs=1e-3)
    criteria = dataclasses.replace(Criteria.default(), second_opinion=None)
    verdict = criteria.apply(table).set_index("id")
    assert verdict.loc["MgO", "verdict_stable"] and verdict.loc["MgO", "synthesizable"]
    assert not verdict.loc["MnO", "verdict_stable"] and not verdict.loc["MnO", "synthesizable"]
    # Only candidates near a threshold are repeated: 0.5 is not, 0.15 is.
    near = criteria.near_threshold(pd.Series([0.5, 0.15, math.nan]), window=0.1)
    assert near.tolist() == [False, True, False]


@pytest.mark.slow
def test_the_cascade_relaxes_the_promising_and_rejects_the_hopeless(reference_records, diagram):
    mgo, mno2 = by_id(reference_records, "MgO", "MnO2")
    promising = perturbed(mgo, "promising", seed=1, distance=0.1)
    squeezed = mno2.to_structure()
    squeezed.scale_lattice(squeezed.volume * 0.6)
    squeezed.perturb(0.3, seed=2)
    hopeless = CrystalRecord.from_structure(squeezed, id="hopeless")
    settings = CascadeSettings(
        first_potential="m3gnet",
        first_checkpoint="",
        first_fmax=0.1,
        first_max_steps=3,
        margin=0.0,
        main_max_steps=100,
    )
    results, outcomes = run_cascade(
        [promising, hopeless], CHGNET, SETTINGS, diagram, 0.2, settings, symmetrise=False
    )
    assert [o.fate for o in outcomes] == [PROMOTED, REJECTED]
    assert outcomes[0].first_steps <= 3 and outcomes[0].e_above_hull_gate < 0.2
    (full,) = relax_records([promising], CHGNET, SETTINGS, progress=False)
    assert results[0].ok
    assert e_hull_of(diagram, promising, results[0]) == pytest.approx(
        e_hull_of(diagram, promising, full), abs=5e-3
    )
    assert outcomes[1].e_above_hull_gate > 0.2
    assert not results[1].ok and results[1].reason.startswith("cascade: E_hull")
    assert math.isnan(e_hull_of(diagram, hopeless, results[1]))
