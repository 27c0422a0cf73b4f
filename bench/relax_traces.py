"""Every step of the screen's relaxations, recorded: the data an early-stopping rule is chosen on.

The structures (a prescreen output) are relaxed as the relax stage does (the main potential,
``screen.fmax`` and ``screen.max_steps``, batched, symmetrised), on one CPU thread, while a
:data:`~pipeline.screen.relaxation.StepWatch` records each structure's energy per atom, its E_hull
on the main potential's hull (the shipped references, ``screen.oxygen_reference``, the potential's
energy scale) and its largest force after every FIRE step, of the first relaxation and of the
symmetrised second one. Writes the steps (``--traces``) and one row per structure
(``--summary``: its unrelaxed E_hull from the prescreen table, how each relaxation ended, the
full path's final E_hull and whether it is within each E_hull threshold), and prints ONE JSON
line: CPU time, structure-steps and atom-steps of each phase. ``bench/early_stop_rules.py``
evaluates early-stopping rules on these files offline: a relaxation does not depend on its
batch partners, so stopping some leaves the others' paths as recorded.

    python bench/relax_traces.py --structures results/screen/prescreened.json.gz \\
        --prescreen-table results/screen/prescreen.csv \\
        --references results/hull/chgnet/references_relaxed.json.gz \\
        --traces traces.csv.gz --summary summary.csv
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.records import read_records  # noqa: E402
from pipeline.screen.batched import FireOptions  # noqa: E402
from pipeline.screen.convex_hull import e_above_hull_of, phase_diagram  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.early_stop import EarlyStop, EarlyStopSettings, is_stopped  # noqa: E402
from pipeline.screen.modes import reuse_freed_memory, use_cpu_threads  # noqa: E402
from pipeline.screen.potentials import PotentialSpec, batched_model, describe  # noqa: E402
from pipeline.screen.relaxation import RelaxResult, RelaxSettings  # noqa: E402
from pipeline.screen.symmetrise import symmetrise_and_rerelax  # noqa: E402
from pipeline.settings import default  # noqa: E402


class Recorder:
    """A step watch that records (id, phase, step, energy, E_hull, force) and, given an
    :class:`~pipeline.screen.early_stop.EarlyStop`, stops first relaxations as the relax stage
    does with ``screen.early_stop`` enabled."""

    def __init__(self, hull_offset: dict[str, float], early_stop: EarlyStop | None = None):
        self.hull_offset = hull_offset
        self.early_stop = early_stop
        self.phase = "first"
        self.rows: list[tuple] = []

    def __call__(self, result: RelaxResult) -> str:
        energy = result.energy_per_atom
        self.rows.append(
            (
                result.id,
                self.phase,
                result.steps,
                energy,
                energy + self.hull_offset[result.id],
                result.max_force,
            )
        )
        if self.early_stop is not None and self.phase == "first":
            return self.early_stop(result)
        return ""


def relax_with_fire(records, spec, settings, fire: FireOptions, watch):
    """The relax stage's batched relaxation with FIRE parameters ``fire``."""
    from pipeline.screen.batched import relax_batched

    return relax_batched(records, batched_model(spec), settings, None, False, False, watch, fire)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--structures", type=Path, required=True, help="prescreened.json.gz")
    parser.add_argument("--prescreen-table", type=Path, help="prescreen.csv (unrelaxed E_hull)")
    parser.add_argument("--references", type=Path, required=True, help="the main potential's hull")
    parser.add_argument("--traces", type=Path, required=True, help="every step (.csv.gz)")
    parser.add_argument("--summary", type=Path, required=True, help="one row per structure")
    parser.add_argument("--take", default="0/1", help="K/N: every N-th structure from the K-th")
    parser.add_argument(
        "--fire", default="{}", help="JSON overrides of FireOptions (default: ASE's FIRE)"
    )
    parser.add_argument("--no-symmetrise", action="store_true", help="first relaxations only")
    parser.add_argument(
        "--early-stop",
        type=EarlyStopSettings.from_json,
        help="JSON of EarlyStopSettings: relax with this early stop (enabled), as the relax"
        " stage does; the summary is then the early-stop path's",
    )
    args = parser.parse_args()

    use_cpu_threads(1)
    reuse_freed_memory()
    offset, every = (int(part) for part in args.take.split("/"))
    records = read_records(args.structures)[offset::every]
    diagram = phase_diagram(read_records(args.references), default("screen.oxygen_reference"))
    potential = default("screen.potential")
    spec = PotentialSpec(potential, default("screen.checkpoints")[potential])
    described = describe(spec)
    settings = RelaxSettings(fmax=default("screen.fmax"), max_steps=default("screen.max_steps"))
    fire = replace(FireOptions(), **json.loads(args.fire))
    criteria = Criteria.default()
    # E_hull is linear in the energy per atom: E_hull(E) = E + offset (this composition's
    # hull energy and the potential's corrections, taken at the start geometry).
    hull_offset = {r.id: e_above_hull_of(diagram, r, 0.0, described) for r in records}
    early_stop = None
    if args.early_stop:
        largest = max(criteria.metastable, criteria.synthesizable)
        early_stop = EarlyStop(hull_offset, largest, replace(args.early_stop, enabled=True))
    recorder = Recorder(hull_offset, early_stop)

    cpu, wall = time.process_time(), time.perf_counter()
    results = relax_with_fire(records, spec, settings, fire, recorder)
    first_cpu = time.process_time() - cpu
    first = [replace(r, structure=None) for r in results]
    recorder.phase = "symmetrise"
    cpu_sym = time.process_time()
    outcomes = (
        []
        if args.no_symmetrise or fire != FireOptions()
        else symmetrise_and_rerelax(
            records,
            results,
            spec,
            settings,
            "batched",
            None,
            False,
            watch=recorder,
            worth_symmetrising=early_stop.worth_symmetrising if early_stop else None,
        )
    )
    sym_cpu = time.process_time() - cpu_sym
    wall = time.perf_counter() - wall

    traces = pd.DataFrame(
        recorder.rows,
        columns=["id", "phase", "step", "energy_per_atom", "e_above_hull", "max_force"],
    )
    args.traces.parent.mkdir(parents=True, exist_ok=True)
    traces.to_csv(args.traces, index=False, float_format="%.7g")
    unrelaxed = {}
    if args.prescreen_table:
        table = pd.read_csv(args.prescreen_table, dtype={"id": str})
        unrelaxed = dict(zip(table["id"], table["e_above_hull"].astype(float)))
    rows = []
    for k, (record, one, final) in enumerate(zip(records, first, results)):
        sym = outcomes[k] if outcomes else None
        e_final = final.energy_per_atom + hull_offset[record.id] if final.ok else math.nan
        synthesizable, metastable = criteria.within(e_final)
        rows.append(
            {
                "id": record.id,
                "formula": record.formula,
                "natoms": record.natoms,
                "e_hull_unrelaxed": unrelaxed.get(record.id, math.nan),
                "first_status": one.status,
                "first_reason": one.reason,
                "first_steps": one.steps,
                "e_hull_first": one.energy_per_atom + hull_offset[record.id]
                if one.ok
                else math.nan,
                "symmetrise_tried": bool(sym and sym.tried),
                "symmetrised": bool(sym and sym.symmetrised),
                "e_hull_symmetrised": sym.energy_per_atom_symmetrised + hull_offset[record.id]
                if sym
                else math.nan,
                "total_steps": final.steps,
                "e_hull_final": e_final,
                "synthesizable": synthesizable,
                "metastable": metastable,
            }
        )
    summary = pd.DataFrame(rows)
    summary.to_csv(args.summary, index=False)
    natoms = dict(zip(summary["id"], summary["natoms"]))
    atom_steps = traces["id"].map(natoms)
    print(
        json.dumps(
            {
                "structures": len(records),
                "potential": described,
                "fire": fire.__dict__,
                "first_cpu_s": round(first_cpu, 1),
                "symmetrise_cpu_s": round(sym_cpu, 1),
                "wall_s": round(wall, 1),
                "first_structure_steps": int((traces["phase"] == "first").sum()),
                "symmetrise_structure_steps": int((traces["phase"] == "symmetrise").sum()),
                "first_atom_steps": int(atom_steps[traces["phase"] == "first"].sum()),
                "symmetrise_atom_steps": int(atom_steps[traces["phase"] == "symmetrise"].sum()),
                "early_stop": asdict(args.early_stop) if args.early_stop else None,
                "stopped_early": sum(is_stopped(r) for r in first),
                "not_symmetrised_above_margin": sum(
                    r.ok and not early_stop.worth_symmetrising(r) for r in first
                )
                if early_stop
                else 0,
                "converged": int(summary["first_status"].eq("ok").sum()),
                "synthesizable": int(summary["synthesizable"].sum()),
                "metastable": int(summary["metastable"].sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
