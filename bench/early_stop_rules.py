"""Which early-stopping rule takes the most structures to a verdict per core-hour, offline?

Reads the step-by-step records of ``bench/relax_traces.py`` (one ``--set NAME TRACES SUMMARY``
per run, e.g. the default run's samples and a hold-out run's) and replays the screen under
each rule of a grid. A relaxation does not depend on its batch partners, so a rule that stops
some structures leaves every other path exactly as recorded: the replay is what the screen
would do. A rule (:class:`Rule`) stops a structure that has neither converged nor failed

* at a check step ``s``, when its E_hull there exceeds the largest E_hull threshold plus the
  margin of that step (the ``gates``);
* at any step from ``stall_from`` on, when its E_hull is above the largest threshold plus
  ``stall_margin`` and fell less than ``stall_drop`` eV/atom over the last ``stall_window``
  steps;
* before it starts, when its unrelaxed E_hull (the prescreen's) exceeds ``unrelaxed_max``;

and skips the symmetrised second relaxation of a converged structure whose E_hull exceeds the
largest threshold plus ``symmetrise_margin``. A stopped structure fails (within neither
threshold), as a relaxation that does not converge does.

Cost is counted in atom-steps (one structure of n atoms advanced one FIRE step costs n; the
symmetrised second relaxations included): the batched potential's work grows with the atoms of
a batch, and ``bench/throughput.py`` measures the chosen rule's CPU time beside the full path's.
Prints ONE JSON line: per set, the full path's cost and verdicts, the least cost any rule could
reach without changing a verdict (every structure that ends above the largest threshold or
fails stopped at once), how far E_hull at each check step lies above the final E_hull of the
structures that end within the largest threshold, and the best rules of the grid by their
worst speedup over the sets, among those that lose no pass and keep >= ``--agreement`` of the
verdicts at each threshold on every set.

    python bench/early_stop_rules.py --set default traces.csv.gz summary.csv \\
        --set holdout h_traces.csv.gz h_summary.csv

``--guard pass`` protects the pass verdict only: the gates sit above the synthesizable threshold,
a rule meets the bar when it loses no pass and keeps >= ``--agreement`` of the pass verdicts
(the within-0.2 rate may fall), and the grid adds rules of three gates.

``--fmax F ...`` adds every rule again with a looser force threshold: a relaxation converges
at the first step whose largest force is below F, with the E_hull it has there (no symmetrised
second relaxation).

``--compare FULL_SUMMARY EARLY_SUMMARY`` instead compares the verdicts of a measured early-stop
run (``bench/relax_traces.py --early-stop``) with the full path's, structure by structure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.screen.criteria import Criteria  # noqa: E402


@dataclass(frozen=True)
class Rule:
    gates: tuple[tuple[int, float], ...] = ()  # (check step, margin above the largest threshold)
    stall_from: int = 0  # 0: no stall test
    stall_window: int = 20
    stall_drop: float = 0.01  # eV/atom over the window
    stall_margin: float = 0.3
    unrelaxed_max: float = math.inf
    fmax: float = 0.0  # > 0: converged at the first step with a max force below it (eV/Å)
    symmetrise_margin: float = math.inf


@dataclass
class Structure:
    id: str
    natoms: int
    first: np.ndarray  # E_hull after each step of the first relaxation (step k at index k - 1)
    first_ok: bool
    symmetrise_steps: int
    e_first: float  # E_hull of the converged first relaxation (NaN: failed)
    e_final: float  # after the symmetrised second relaxation (NaN: failed)
    e_unrelaxed: float
    max_force: np.ndarray = field(default_factory=lambda: np.zeros(0))  # after each step


def load(traces: Path, summary: Path) -> list[Structure]:
    steps = pd.read_csv(traces, dtype={"id": str})
    rows = pd.read_csv(summary, dtype={"id": str})
    by_phase = {key: group for key, group in steps.groupby(["id", "phase"])}
    out = []
    for row in rows.itertuples():
        path = by_phase[(row.id, "first")].sort_values("step")
        first = path["e_above_hull"].to_numpy()
        sym = by_phase.get((row.id, "symmetrise"))
        out.append(
            Structure(
                id=row.id,
                natoms=int(row.natoms),
                first=first,
                first_ok=row.first_status == "ok",
                symmetrise_steps=0 if sym is None else len(sym),
                e_first=float(row.e_hull_first),
                e_final=float(row.e_hull_final),
                e_unrelaxed=float(row.e_hull_unrelaxed),
                max_force=path["max_force"].to_numpy(),
            )
        )
    return out


def stop_step(structure: Structure, rule: Rule, largest: float) -> int | None:
    """The step at which ``rule`` stops the first relaxation (0: before it), or None."""
    if structure.e_unrelaxed > rule.unrelaxed_max:
        return 0
    gates = dict(rule.gates)
    path = structure.first
    # the watch acts on a step only while the relaxation goes on past it
    for step in range(1, len(path)):
        e_hull = path[step - 1]
        margin = gates.get(step)
        if margin is not None and e_hull > largest + margin:
            return step
        if rule.stall_from and step >= rule.stall_from and step > rule.stall_window:
            drop = path[step - 1 - rule.stall_window] - e_hull
            if e_hull > largest + rule.stall_margin and drop < rule.stall_drop:
                return step
    return None


def loose_convergence(structure: Structure, rule: Rule) -> int | None:
    """The step at which the first relaxation converges under ``rule.fmax`` before it did
    under the screen's threshold, or None (no looser threshold, or no earlier step)."""
    if rule.fmax <= 0 or len(structure.max_force) == 0:
        return None
    below = np.flatnonzero(structure.max_force <= rule.fmax)
    if len(below) == 0:
        return None
    step = int(below[0]) + 1
    return step if step < len(structure.first) or not structure.first_ok else None


GUARDS = ("all", "pass")


def guarded_threshold(criteria: Criteria, guard: str) -> float:
    """The E_hull threshold the gates sit above: the largest (every verdict kept) or the
    pass's (only the pass verdict kept)."""
    if guard == "pass":
        return criteria.synthesizable
    return max(criteria.metastable, criteria.synthesizable)


def replay(structures: list[Structure], rule: Rule, criteria: Criteria, guard: str = "all") -> dict:
    largest = guarded_threshold(criteria, guard)
    cost = full_cost = 0
    same = {"synthesizable": 0, "metastable": 0}
    lost, lost_meta, stopped = [], [], []
    for s in structures:
        full = len(s.first) + s.symmetrise_steps
        full_cost += s.natoms * full
        step = stop_step(s, rule, largest)
        converged = loose_convergence(s, rule)
        if converged is not None and (step is None or converged <= step):
            # converged earlier; no symmetrised second relaxation counted
            e_hull, steps = float(s.first[converged - 1]), converged
        elif step is not None:
            e_hull, steps = math.nan, step
            stopped.append(s)
        elif s.first_ok and s.e_first > largest + rule.symmetrise_margin:
            e_hull, steps = s.e_first, len(s.first)
        else:
            e_hull, steps = s.e_final, full
        cost += s.natoms * steps
        ours, theirs = criteria.within(e_hull), criteria.within(s.e_final)
        same["synthesizable"] += ours[0] == theirs[0]
        same["metastable"] += ours[1] == theirs[1]
        if theirs[0] and not ours[0]:
            lost.append(s.id)
        if theirs[1] and not ours[1]:
            lost_meta.append(s.id)
    n = len(structures)
    return {
        "speedup": round(full_cost / cost, 3),
        "same_synthesizable": round(same["synthesizable"] / n, 4),
        "same_metastable": round(same["metastable"] / n, 4),
        "lost_passes": lost,
        "lost_metastable": lost_meta,
        "stopped": len(stopped),
        "stopped_converging": sum(s.first_ok for s in stopped),
    }


def full_path(structures: list[Structure], criteria: Criteria, guard: str = "all") -> dict:
    largest = guarded_threshold(criteria, guard)
    cost = sum(s.natoms * (len(s.first) + s.symmetrise_steps) for s in structures)
    needed = sum(
        s.natoms * (len(s.first) + s.symmetrise_steps) for s in structures if s.e_final <= largest
    )
    within = [criteria.within(s.e_final) for s in structures]
    return {
        "structures": len(structures),
        "atom_steps": cost,
        "symmetrise_atom_steps": sum(s.natoms * s.symmetrise_steps for s in structures),
        "converged": sum(s.first_ok for s in structures),
        "synthesizable": sum(w[0] for w in within),
        "metastable": sum(w[1] for w in within),
        "not_converged_atom_steps": sum(
            s.natoms * len(s.first) for s in structures if not s.first_ok
        ),
        # every structure ending above the guarded threshold (or failing) stopped at once
        "best_possible_speedup": round(cost / max(needed, 1), 3),
    }


def headroom(
    structures: list[Structure], criteria: Criteria, steps: list[int], guard: str = "all"
) -> dict:
    """How far E_hull at each check step lies above the final E_hull, for the structures that
    end within the guarded threshold: the margin a gate needs (largest and median)."""
    largest = guarded_threshold(criteria, guard)
    out = {}
    for step in steps:
        gaps = [
            float(s.first[step - 1] - s.e_final)
            for s in structures
            if s.e_final <= largest and len(s.first) > step
        ]
        out[str(step)] = {
            "running": len(gaps),
            "max": round(max(gaps), 3) if gaps else None,
            "median": round(float(np.median(gaps)), 3) if gaps else None,
        }
    return out


def finite(values: dict) -> dict:
    """JSON has no infinity: an unused limit is null."""
    return {k: None if v == math.inf else v for k, v in values.items()}


def grid(guard: str = "all") -> list[Rule]:
    rules = [Rule()]
    for step, margin in itertools.product((25, 50, 75, 100, 150, 200), (0.2, 0.3, 0.5, 1.0)):
        rules.append(Rule(gates=((step, margin),)))
    for (s1, m1), (s2, m2) in itertools.product(
        ((30, 1.0), (50, 0.5), (50, 1.0)), ((100, 0.3), (150, 0.2), (150, 0.3), (200, 0.2))
    ):
        rules.append(Rule(gates=((s1, m1), (s2, m2))))
    if guard == "pass":  # far above the pass early, closer later
        for first, second, third in itertools.product(
            itertools.product((20, 30, 50), (1.5, 2.0, 2.5, 3.0)),
            itertools.product((75, 100), (0.75, 1.0, 1.25)),
            itertools.product((150, 200), (0.2, 0.3, 0.5, 0.75)),
        ):
            rules.append(Rule(gates=(first, second, third)))
    for start, window, drop, margin in itertools.product(
        (50, 100, 150), (10, 30), (0.002, 0.01), (0.1, 0.3)
    ):
        rules.append(
            Rule(stall_from=start, stall_window=window, stall_drop=drop, stall_margin=margin)
        )
    for limit in (2.0, 4.0, 8.0):
        rules.append(Rule(unrelaxed_max=limit))
    for margin in (0.0, 0.1, 0.3):
        rules.append(Rule(symmetrise_margin=margin))
    extra = []
    for rule in rules[1:]:
        for sym in (0.1, 0.3):
            if rule.symmetrise_margin == math.inf:
                extra.append(Rule(**{**asdict(rule), "symmetrise_margin": sym}))
    return rules + extra


def compare(full: Path, early: Path, criteria: Criteria) -> dict:
    """The verdicts of a measured early-stop run (``bench/relax_traces.py --early-stop``)
    beside the full path's, structure by structure (their two ``--summary`` files)."""
    ours = pd.read_csv(early, dtype={"id": str}).set_index("id")
    theirs = pd.read_csv(full, dtype={"id": str}).set_index("id").loc[ours.index]
    pairs = [
        (criteria.within(float(a)), criteria.within(float(b)))
        for a, b in zip(ours["e_hull_final"], theirs["e_hull_final"])
    ]
    n = len(pairs)
    ids = list(ours.index)
    finite_both = ours["e_hull_final"].notna() & theirs["e_hull_final"].notna()
    return {
        "structures": n,
        "stopped_early": int(ours["first_reason"].fillna("").str.startswith("stopped").sum()),
        "same_synthesizable": round(sum(o[0] == t[0] for o, t in pairs) / n, 4),
        "same_metastable": round(sum(o[1] == t[1] for o, t in pairs) / n, 4),
        "lost_passes": [i for i, (o, t) in zip(ids, pairs) if t[0] and not o[0]],
        "lost_metastable": [i for i, (o, t) in zip(ids, pairs) if t[1] and not o[1]],
        "gained": [i for i, (o, t) in zip(ids, pairs) if o[1] and not t[1]],
        "largest_e_hull_difference_of_the_others": float(
            (ours["e_hull_final"] - theirs["e_hull_final"])[finite_both].abs().max()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--set",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "TRACES", "SUMMARY"),
        dest="sets",
    )
    parser.add_argument("--agreement", type=float, default=0.95)
    parser.add_argument(
        "--guard",
        choices=GUARDS,
        default="all",
        help="all: keep every verdict (gates above the largest threshold); pass: keep the pass"
        " verdict only (gates above the synthesizable threshold)",
    )
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument(
        "--fmax",
        type=float,
        nargs="*",
        default=[],
        help="also every rule with each of these looser force thresholds (eV/Å)",
    )
    parser.add_argument("--rule", default=None, help="JSON of one Rule: replay only it")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("FULL_SUMMARY", "EARLY_SUMMARY"),
        help="only compare a measured early-stop run's verdicts with the full path's",
    )
    args = parser.parse_args()
    criteria = Criteria.default()
    if args.compare:
        print(json.dumps(compare(Path(args.compare[0]), Path(args.compare[1]), criteria)))
        return
    if not args.sets:
        parser.error("give --set NAME TRACES SUMMARY (or --compare)")
    sets = {name: load(Path(t), Path(s)) for name, t, s in args.sets}
    if args.rule:
        values = json.loads(args.rule)
        values["gates"] = tuple(tuple(g) for g in values.get("gates", ()))
        rules = [Rule(**values)]
    else:
        rules = grid(args.guard)
        rules += [replace(rule, fmax=f) for f in args.fmax for rule in rules]
    scored = []
    for rule in rules:
        figures = {
            name: replay(structures, rule, criteria, args.guard)
            for name, structures in sets.items()
        }
        ok = all(
            not f["lost_passes"]
            and f["same_synthesizable"] >= args.agreement
            and (args.guard == "pass" or f["same_metastable"] >= args.agreement)
            for f in figures.values()
        )
        worst = min(f["speedup"] for f in figures.values())
        scored.append((ok, worst, rule, figures))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    check_steps = [25, 50, 75, 100, 150, 200]
    print(
        json.dumps(
            {
                "thresholds": [criteria.synthesizable, criteria.metastable],
                "guard": args.guard,
                "full": {name: full_path(s, criteria, args.guard) for name, s in sets.items()},
                "headroom": {
                    name: headroom(s, criteria, check_steps, args.guard) for name, s in sets.items()
                },
                "rules": [
                    {
                        "meets_bar": ok,
                        "worst_speedup": worst,
                        "rule": finite(asdict(rule)),
                        **figures,
                    }
                    for ok, worst, rule, figures in scored[: args.top]
                ],
                # the best rule that pipeline.screen.early_stop implements (gates and the
                # symmetrise margin; stall tests and an unrelaxed limit are the bench's only)
                "best_implemented": next(
                    (
                        {"meets_bar": ok, "rule": finite(asdict(rule)), **figures}
                        for ok, _, rule, figures in scored
                        if not rule.stall_from and rule.unrelaxed_max == math.inf
                    ),
                    None,
                ),
                "rules_meeting_bar": sum(item[0] for item in scored),
                "rules_tried": len(scored),
            },
        )
    )


if __name__ == "__main__":
    main()
