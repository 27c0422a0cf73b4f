"""Stop the relaxations that cannot reach a verdict threshold, and leave every other one as it was.

Most of a screen's relaxation time goes to structures that end far above the hull or never
converge. A relaxation does not depend on its batch partners (:mod:`pipeline.screen.batched`),
so stopping some structures early leaves the path of every other one, step for step, as the
full path has it: their E_hull and verdicts cannot change. What can change is the verdict of a
stopped structure, so the rule stops only a structure that is still far above the largest
E_hull threshold of the verdict (the criteria's metastable one) at a check step:

* at each check step ``s`` of ``screen.early_stop.checks`` (a FIRE step and a margin), a
  structure that has neither converged nor failed and whose E_hull there exceeds the largest
  threshold plus that margin is stopped. FIRE goes downhill, and the energy still to be lost
  after ``s`` steps is measured, not assumed: how far E_hull at each step lies above the
  relaxed E_hull of the structures that end within the threshold is in docs/results.md
  (``bench/early_stop_rules.py``), and the margins sit above the largest such drop measured;
* a converged structure whose E_hull exceeds the largest threshold plus
  ``symmetrise_margin`` is not symmetrised and relaxed again (that second relaxation only
  lowers the energy, by less than the margin in every measured case).

A stopped structure fails, as one that does not converge within ``screen.max_steps`` does, with
the reason ``stopped early: ...``; it is within neither threshold. E_hull during a relaxation is
its energy per atom plus a per-structure offset (the composition's hull energy and the
potential's energy-scale corrections, taken at the start), as the prescreen places unrelaxed
structures. ``bench/relax_traces.py`` records every step of the full path and
``bench/early_stop_rules.py`` replays rules on it (docs/results.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from pymatgen.analysis.phase_diagram import PhaseDiagram

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import e_above_hull_of, phase_diagram
from pipeline.screen.relaxation import RelaxResult
from pipeline.settings import defaults_from_config

STOPPED = "stopped early"


@dataclass(frozen=True)
@defaults_from_config("screen.early_stop")
class EarlyStopSettings:
    """``config["screen"]["early_stop"]``: whether, when and how far above a threshold."""

    enabled: bool
    checks: tuple[tuple[int, float], ...]  # (FIRE step, eV/atom above the largest threshold)
    symmetrise_margin: float | None  # eV/atom above the largest threshold; None: always

    def __post_init__(self) -> None:
        checks = tuple((int(step), float(margin)) for step, margin in self.checks)
        object.__setattr__(self, "checks", checks)
        if any(step < 1 or margin < 0 for step, margin in checks):
            raise PipelineInputError("early_stop.checks: steps >= 1 and margins >= 0")
        if len({step for step, _ in checks}) != len(checks):
            raise PipelineInputError("early_stop.checks: one margin per step")
        if self.symmetrise_margin is not None and self.symmetrise_margin < 0:
            raise PipelineInputError("early_stop.symmetrise_margin must not be negative")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EarlyStopSettings:
        try:
            return cls(**json.loads(text))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise PipelineInputError(
                f"early stop: not a JSON object of EarlyStopSettings ({exc})"
            ) from None


class EarlyStop:
    """A step watch (:data:`pipeline.screen.relaxation.StepWatch`) that stops structures still
    far above the largest E_hull threshold at a check step.

    Parameters
    ----------
    hull_offset
        Per structure id: E_hull minus energy per atom (eV/atom), see :func:`hull_offsets`.
    largest_threshold
        The largest E_hull threshold of the verdict (eV/atom).
    settings
        The check steps and margins.
    """

    def __init__(
        self,
        hull_offset: Mapping[str, float],
        largest_threshold: float,
        settings: EarlyStopSettings,
    ):
        self.hull_offset = dict(hull_offset)
        self.largest_threshold = largest_threshold
        self.limits = {step: largest_threshold + margin for step, margin in settings.checks}
        self.symmetrise_margin = settings.symmetrise_margin

    def e_above_hull(self, result: RelaxResult) -> float:
        return result.energy_per_atom + self.hull_offset[result.id]

    def __call__(self, result: RelaxResult) -> str:
        limit = self.limits.get(result.steps)
        if limit is None:
            return ""
        e_hull = self.e_above_hull(result)
        if e_hull > limit:
            return (
                f"{STOPPED}: E_hull {e_hull:.3f} eV/atom at step {result.steps}, above {limit:.2f}"
            )
        return ""

    def worth_symmetrising(self, result: RelaxResult) -> bool:
        """Whether a converged relaxation goes on to the symmetrised second one."""
        if self.symmetrise_margin is None:
            return True
        e_hull = self.e_above_hull(result)
        return not e_hull > self.largest_threshold + self.symmetrise_margin


def hull_offsets(
    records: Sequence[CrystalRecord], diagram: PhaseDiagram, potential: str
) -> dict[str, float]:
    """Per record id, E_hull minus energy per atom on ``diagram`` with ``potential``'s energy
    scale (as :func:`pipeline.screen.potentials.describe` names it): E_hull is linear in the
    energy per atom, so one evaluation places every step of a relaxation."""
    offsets = {r.id: e_above_hull_of(diagram, r, 0.0, potential) for r in records}
    bad = [key for key, value in offsets.items() if not math.isfinite(value)]
    if bad:
        raise PipelineInputError(f"no E_hull offset for {bad[:3]}: not on the hull's elements?")
    return offsets


def early_stop_for(
    records: Sequence[CrystalRecord],
    references: Sequence[CrystalRecord] | None,
    oxygen_reference: str,
    potential: str,
    largest_threshold: float,
    settings: EarlyStopSettings,
) -> EarlyStop | None:
    """The step watch of ``settings`` for ``records`` on the hull of the relaxed
    ``references`` (the main potential's, described as ``potential``); None when disabled."""
    if not settings.enabled:
        return None
    if references is None:
        raise PipelineInputError("the early stop needs the main potential's hull references")
    diagram = phase_diagram(references, oxygen_reference)
    return EarlyStop(hull_offsets(records, diagram, potential), largest_threshold, settings)


def is_stopped(result: RelaxResult) -> bool:
    return result.reason.startswith(STOPPED)
