"""The screen's early stop: its settings, its rule, and that it leaves the other paths alone."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys

import pandas as pd
import pytest
from screen_helpers import perturbed

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord, read_records, write_records
from pipeline.screen.batched import relax_batched
from pipeline.screen.convex_hull import e_above_hull_of, phase_diagram
from pipeline.screen.criteria import Criteria
from pipeline.screen.early_stop import (
    STOPPED,
    EarlyStop,
    EarlyStopSettings,
    early_stop_for,
    hull_offsets,
    is_stopped,
)
from pipeline.screen.potentials import PotentialSpec, batched_model, describe
from pipeline.screen.relaxation import RelaxResult, RelaxSettings
from pipeline.settings import default_settings
from pipeline.stages import relax as relax_stage

CHGNET = PotentialSpec("chgnet")
OXYGEN = default_settings().screen.oxygen_reference
SHIPPED_HULL = "resources/hull/mgmno_kim2020_chgnet-0.3.0.json.gz"


def settings(**changes) -> EarlyStopSettings:
    values = {"enabled": True, "checks": ((2, 0.5), (4, 0.1)), "symmetrise_margin": 0.3}
    return EarlyStopSettings(**{**values, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"checks": ((0, 0.5),)},
        {"checks": ((5, -0.1),)},
        {"checks": ((5, 0.5), (5, 0.2))},
        {"symmetrise_margin": -0.01},
    ],
)
def test_bad_early_stop_settings_are_input_errors(changes):
    with pytest.raises(PipelineInputError):
        settings(**changes)


def test_early_stop_settings_default_to_config_and_travel_as_json():
    section = default_settings().screen.early_stop
    assert EarlyStopSettings.config_section == "screen.early_stop"
    assert dataclasses.asdict(EarlyStopSettings()) == dataclasses.asdict(section)
    given = settings(checks=[[3, 0.25]])  # as YAML and JSON give them
    assert given.checks == ((3, 0.25),)
    assert EarlyStopSettings.from_json(given.to_json()) == given
    for text in ("enabled", '{"enable": true}', '{"checks": [[0, 1.0]]}'):
        with pytest.raises(PipelineInputError):
            EarlyStopSettings.from_json(text)


def test_the_rule_stops_at_a_check_step_only_what_lies_above_its_limit():
    # E_hull = energy per atom + 1.0; largest threshold 0.2: limits 0.7 at step 2, 0.3 at 4.
    watch = EarlyStop({"a": 1.0}, 0.2, settings())
    path = [0.5, -0.35, -0.5, -0.65, -0.9]  # E_hull 1.5, 0.65, 0.5, 0.35, 0.1
    answers = []
    for step, energy in enumerate(path, start=1):
        answers.append(
            watch(RelaxResult(id="a", status="failed", steps=step, energy_per_atom=energy))
        )
    assert answers[:3] == ["", "", ""]  # step 1 is no check; 0.65 <= 0.7 at step 2
    assert answers[3].startswith(STOPPED) and "step 4" in answers[3]
    assert answers[4] == ""
    assert watch.worth_symmetrising(RelaxResult(id="a", status="ok", energy_per_atom=-0.5))
    assert not watch.worth_symmetrising(RelaxResult(id="a", status="ok", energy_per_atom=-0.49))
    always = EarlyStop({"a": 1.0}, 0.2, settings(symmetrise_margin=None))
    assert always.worth_symmetrising(RelaxResult(id="a", status="ok", energy_per_atom=9.0))


@pytest.fixture(scope="module")
def bench(repo):
    """bench/early_stop_rules.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "early_stop_rules", repo / "bench" / "early_stop_rules.py"
    )
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def test_the_bench_replays_a_gate_as_the_watch_applies_it(bench):
    rule = bench.Rule(gates=((2, 0.5), (4, 0.1)))
    watch = EarlyStop({"a": 0.0}, 0.2, settings())
    for path in ([1.5, 0.65, 0.5, 0.35, 0.1], [1.5, 0.8, 0.5], [0.9, 0.6, 0.4, 0.3, 0.25, 0.2]):
        structure = bench.Structure("a", 4, pd.Series(path).to_numpy(), True, 0, 0, 0, 0)
        watched = [
            step
            for step, e_hull in enumerate(path[:-1], start=1)  # the last step ends it anyway
            if watch(RelaxResult(id="a", status="failed", steps=step, energy_per_atom=e_hull))
        ]
        assert bench.stop_step(structure, rule, 0.2) == (watched[0] if watched else None)


def test_a_pass_guard_gates_above_the_pass_and_may_cost_the_wider_rate(bench):
    criteria = Criteria.default()  # passes at 0.08, within the wider rate at 0.2
    # ends at 0.15 eV/atom: within the wider rate, no pass; at step 2 it stands at 0.5
    path = [0.9, 0.5, 0.3, 0.15]
    structure = bench.Structure("a", 4, pd.Series(path).to_numpy(), True, 0, 0.15, 0.15, 1.0)
    rule = bench.Rule(gates=((2, 0.35),))
    kept = bench.replay([structure], rule, criteria, "all")  # gate at 0.2 + 0.35: not stopped
    guarded = bench.replay([structure], rule, criteria, "pass")  # 0.08 + 0.35: stopped
    assert kept["stopped"] == 0 and kept["lost_metastable"] == []
    assert guarded["stopped"] == 1 and guarded["lost_metastable"] == ["a"]
    assert guarded["lost_passes"] == [] and guarded["same_synthesizable"] == 1.0
    assert guarded["speedup"] == pytest.approx(4 / 2)


@pytest.fixture(scope="module")
def starts(reference_records):
    """Four small perturbed bundled structures, one of them squeezed far above the hull."""
    table = {r.id: r for r in reference_records}
    records = [perturbed(table[k], f"start-{k}", seed=n) for n, k in enumerate(("MgO", "MnO"))]
    squeezed = table["MnO2"].to_structure()
    squeezed.scale_lattice(squeezed.volume * 0.7)
    squeezed.perturb(0.2, seed=3)
    records.insert(1, CrystalRecord.from_structure(squeezed, id="squeezed"))
    return records


@pytest.mark.slow
def test_stopping_one_structure_leaves_the_others_as_an_unwatched_batch(starts):
    model = batched_model(CHGNET)
    relax = RelaxSettings(fmax=0.05, max_steps=40)

    def stop_squeezed(result: RelaxResult) -> str:
        return "stopped early: test" if result.id == "squeezed" and result.steps == 5 else ""

    free = relax_batched(starts, model, relax, progress=False)
    watched = relax_batched(starts, model, relax, progress=False, watch=stop_squeezed)
    assert free[1].steps > 5
    assert watched[1].steps == 5 and is_stopped(watched[1]) and not watched[1].ok
    for one, other in zip(free, watched):
        if one.id != "squeezed":
            assert (other.steps, other.status) == (one.steps, one.status)
            # float32 sums run in another order once the batch shrinks: equal to ~1e-6 eV/atom
            assert other.energy_per_atom == pytest.approx(one.energy_per_atom, abs=1e-5)


@pytest.mark.slow
def test_the_relax_stage_stops_the_hopeless_on_the_hull(repo, starts, tmp_path):
    references = read_records(repo / SHIPPED_HULL)
    diagram = phase_diagram(references, OXYGEN)
    potential = describe(CHGNET)
    offsets = hull_offsets(starts, diagram, potential)
    assert offsets["squeezed"] == pytest.approx(e_above_hull_of(diagram, starts[1], 0.0, potential))
    assert early_stop_for(starts, None, OXYGEN, potential, 0.2, settings(enabled=False)) is None
    with pytest.raises(PipelineInputError):
        early_stop_for(starts, None, OXYGEN, potential, 0.2, settings())

    write_records(starts, tmp_path / "starts.json.gz")
    early = json.dumps({"enabled": True, "checks": [[3, 0.3]], "symmetrise_margin": None})
    common = ["--threads", "1", "--max-steps", "60", "--shard", "0", "--shards", "1"]
    for name, extra in (
        ("free", []),
        ("early", ["--early-stop", early, "--references-relaxed", str(repo / SHIPPED_HULL)]),
    ):
        argv = ["shard", "--input", str(tmp_path / "starts.json.gz"), *common, *extra]
        argv += ["--out", str(tmp_path / f"{name}.json.gz")]
        assert relax_stage.main([*argv, "--out-status", str(tmp_path / f"{name}.csv")]) == 0
    free, early = (pd.read_csv(tmp_path / f"{k}.csv").set_index("id") for k in ("free", "early"))
    assert early.loc["squeezed", "reason"].startswith(STOPPED)
    assert early.loc["squeezed", "steps"] == 3 < free.loc["squeezed", "steps"]
    kept = ["start-MgO", "start-MnO"]
    assert (early.loc[kept, "status"] == "ok").all()
    assert early.loc[kept, "energy_per_atom"].tolist() == pytest.approx(
        free.loc[kept, "energy_per_atom"].tolist(), abs=1e-5
    )
    assert math.isfinite(free.loc["start-MgO", "energy_per_atom"])


def test_a_looser_force_threshold_converges_at_its_first_step_below(bench):
    criteria = Criteria.default()
    path = pd.Series([0.9, 0.4, 0.12, 0.05]).to_numpy()  # a pass only at the last step
    forces = pd.Series([1.0, 0.3, 0.08, 0.04]).to_numpy()
    structure = bench.Structure("a", 2, path, True, 0, 0.05, 0.05, 1.0, forces)
    assert bench.loose_convergence(structure, bench.Rule()) is None
    assert bench.loose_convergence(structure, bench.Rule(fmax=0.1)) == 3
    assert bench.loose_convergence(structure, bench.Rule(fmax=0.05)) is None  # not earlier
    figures = bench.replay([structure], bench.Rule(fmax=0.1), criteria, "pass")
    assert figures["lost_passes"] == ["a"] and figures["speedup"] == pytest.approx(4 / 3, abs=1e-3)
