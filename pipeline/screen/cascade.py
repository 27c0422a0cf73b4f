"""A screening cascade: a cheap first pass decides which structures the main potential relaxes.

Relaxing every valid sample with the main potential (CHGNet by default, up to
``screen.max_steps`` FIRE steps) is most of a run, and most samples end far above the hull
or never converge. The cascade spends that effort only where a pass is possible:

1. **First pass**: every structure is relaxed with a cheaper potential (batched M3GNet by
   default, about half CHGNet's cost per step) to a loose force threshold within a few
   steps. The geometry it reached is kept, converged or not.
2. **Gate**: one single-point energy of the *main* potential at that geometry places it on
   the main potential's hull. Relaxing further with FIRE lowers the energy, so this E_hull
   is close to an upper bound of where the main relaxation ends; a structure more than
   ``margin`` eV/atom above the largest threshold is rejected with that figure as reason.
   A structure whose first pass diverged (another potential's failure says little about
   the main one) goes on from its own start, as on the full path.
3. **Main pass**: the promoted structures are relaxed with the main potential and the
   screen's settings from the first pass's geometry, within ``main_max_steps``, and
   symmetrised as the full path does.

Each structure ends with a :class:`~pipeline.screen.relaxation.RelaxResult` of the main
potential (a rejected one: failed, with the gate's reason), so the hull and the verdicts
read the cascade's results as they read the full path's. What it costs, and how its
verdicts compare with the full path's, is measured by ``bench/throughput.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pymatgen.analysis.phase_diagram import PhaseDiagram

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import e_above_hull_of
from pipeline.screen.modes import relax_records, single_point_records
from pipeline.screen.potentials import PotentialSpec, describe
from pipeline.screen.relaxation import FAILED, RelaxResult, RelaxSettings
from pipeline.screen.symmetrise import symmetrise_and_rerelax
from pipeline.settings import defaults_from_config

PROMOTED, REJECTED, RESTARTED = "promoted", "rejected", "restarted"


@dataclass(frozen=True)
@defaults_from_config("screen.cascade")
class CascadeSettings:
    """``config["screen"]["cascade"]``: the first pass, the gate, the main pass's step limit."""

    first_potential: str  # chgnet | sevennet | m3gnet
    first_checkpoint: str  # "": the potential's default checkpoint
    first_fmax: float  # eV/Å
    first_max_steps: int
    margin: float  # eV/atom above the largest E_hull threshold
    main_max_steps: int

    def __post_init__(self) -> None:
        if self.first_fmax <= 0 or self.first_max_steps < 1 or self.main_max_steps < 1:
            raise PipelineInputError("the cascade needs fmax > 0 and step limits >= 1")
        if self.margin < 0:
            raise PipelineInputError("the cascade's margin must not be negative")


@dataclass
class CascadeOutcome:
    """What the cascade did with one structure."""

    id: str
    fate: str  # promoted | rejected | restarted (first pass diverged: main pass from the start)
    first_steps: int
    first_reason: str
    e_above_hull_gate: float  # main potential's E_hull at the first pass's geometry (eV/atom)
    reason: str = ""


def run_cascade(
    records: Sequence[CrystalRecord],
    main: PotentialSpec,
    main_settings: RelaxSettings,
    diagram: PhaseDiagram,
    largest_threshold: float,
    settings: CascadeSettings = CascadeSettings(),
    mode: str = "batched",
    batch_atoms: int | None = None,
    symmetrise: bool = True,
    progress: bool = False,
) -> tuple[list[RelaxResult], list[CascadeOutcome]]:
    """Relax ``records`` through the cascade (see the module docstring).

    Parameters
    ----------
    records
        The structures to screen (the prescreened ones).
    main
        The main potential; ``main_settings`` its relaxation settings (``fmax``, divergence
        limits; the step limit is ``settings.main_max_steps``).
    diagram
        The main potential's hull.
    largest_threshold
        The largest E_hull threshold a verdict or a rate uses (eV/atom).

    Returns
    -------
    The main potential's result of each record (input order) and what the cascade did.
    """
    first_spec = PotentialSpec(settings.first_potential, settings.first_checkpoint, main.device)
    first_relax = replace(
        main_settings, fmax=settings.first_fmax, max_steps=settings.first_max_steps
    )
    first = relax_records(
        records, first_spec, first_relax, mode, batch_atoms, progress, keep_unconverged=True
    )
    reached = [
        _moved(record, result) if result.structure is not None else record
        for record, result in zip(records, first)
    ]
    energies = single_point_records(reached, main, mode, batch_atoms, progress)
    outcomes = []
    gate = largest_threshold + settings.margin
    main_potential = describe(main)
    for record, result, energy in zip(records, first, energies):
        e_hull = e_above_hull_of(diagram, record, energy, main_potential)
        outcome = CascadeOutcome(record.id, PROMOTED, result.steps, result.reason, e_hull)
        if result.structure is None:
            outcome.fate = RESTARTED
        elif not math.isfinite(e_hull) or e_hull > gate:
            outcome.fate = REJECTED
            outcome.reason = (
                f"cascade: E_hull {e_hull:.3f} eV/atom at the {settings.first_potential}"
                f" geometry, above {gate:.2f}"
            )
        outcomes.append(outcome)

    main_relax = replace(main_settings, max_steps=settings.main_max_steps)
    promoted = [k for k, o in enumerate(outcomes) if o.fate == PROMOTED]
    restarted = [k for k, o in enumerate(outcomes) if o.fate == RESTARTED]
    results = [
        RelaxResult(id=r.id, status=FAILED, reason=o.reason) for r, o in zip(records, outcomes)
    ]
    for indices, starts, step_limit in (
        (promoted, [reached[k] for k in promoted], main_relax),
        (restarted, [records[k] for k in restarted], main_settings),
    ):
        if not indices:
            continue
        relaxed = relax_records(starts, main, step_limit, mode, batch_atoms, progress)
        if symmetrise:
            symmetrise_and_rerelax(starts, relaxed, main, step_limit, mode, batch_atoms, progress)
        for index, result in zip(indices, relaxed):
            results[index] = result
    return results, outcomes


def _moved(record: CrystalRecord, result: RelaxResult) -> CrystalRecord:
    """``record`` at the geometry its first pass reached (same id, source and parent)."""
    return CrystalRecord.from_structure(
        result.structure, id=record.id, source=record.source, parent=record.parent
    )


def summary(outcomes: Sequence[CascadeOutcome]) -> dict[str, int]:
    """How many structures each fate took."""
    fates = [o.fate for o in outcomes]
    return {fate: fates.count(fate) for fate in (PROMOTED, REJECTED, RESTARTED)}
