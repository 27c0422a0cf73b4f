"""The screen's stability verdict on the main potential's hull, and whether it is robust.

Until the criteria module decides ``passes`` from every configured filter, the stability
part of the verdict is taken here: a relaxed candidate passes when its E_hull is at most
both thresholds (``screen.e_hull``: synthesizable 0.08 and metastable 0.2 eV/atom), and a
candidate without an energy (its relaxation failed) does not.

A relaxation can carry a difference in the last bits of a number (another CPU, BLAS or
release) into another local minimum, so a verdict near a threshold may not survive another
install. :func:`verdict_stability` relaxes candidates again from their start rattled by
``rattle`` Å (seeded per candidate) along the same path and reports whether the verdict
lands on the other side of a threshold: ``verdict_stable = false`` marks a pass or fail
(or a count at either threshold) that depends on such noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.convex_hull import e_above_hull
from pipeline.screen.relaxation import RelaxResult

# Relaxes records along the screen's path (e.g. relax, then symmetrise): one result each.
RelaxPath = Callable[[Sequence[CrystalRecord]], list[RelaxResult]]


@dataclass(frozen=True)
class HullThresholds:
    """The E_hull limits of a pass (eV/atom): at most both."""

    synthesizable: float
    metastable: float

    def passes(self, e_hull: float) -> bool:
        """Whether a candidate with this E_hull passes (NaN, no energy: it does not)."""
        return math.isfinite(e_hull) and e_hull <= min(self.synthesizable, self.metastable)

    def within(self, e_hull: float) -> tuple[bool, bool]:
        """Whether ``e_hull`` is within (synthesizable, metastable)."""
        finite = math.isfinite(e_hull)
        return finite and e_hull <= self.synthesizable, finite and e_hull <= self.metastable

    @property
    def largest(self) -> float:
        return max(self.synthesizable, self.metastable)


def hull_energy(diagram: PhaseDiagram, formula: str, energy_per_atom: float, name: str) -> float:
    """E_hull (eV/atom) of ``energy_per_atom`` for ``formula``; NaN for a NaN energy."""
    if not math.isfinite(energy_per_atom):
        return math.nan
    composition = Composition(formula)
    entry = PDEntry(composition, energy_per_atom * composition.num_atoms, name=name)
    return e_above_hull(diagram, entry).e_above_hull


def result_e_hull(diagram: PhaseDiagram, record: CrystalRecord, result: RelaxResult) -> float:
    """E_hull of a relaxation's result; NaN unless it converged."""
    return hull_energy(
        diagram, record.formula, result.energy_per_atom if result.ok else math.nan, record.id
    )


def rattled(record: CrystalRecord, amplitude: float, seed: int = 0) -> CrystalRecord:
    """``record`` with every atom moved by a random vector of length ``amplitude`` (Å).

    The direction comes from a generator seeded by ``seed`` and the record's id, so a
    candidate gets the same rattle in every run and in every shard.
    """
    if amplitude <= 0:
        raise PipelineInputError("the rattle amplitude must be positive")
    digest = hashlib.sha256(f"{seed}:{record.id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    structure = record.to_structure()
    directions = rng.normal(size=(len(structure), 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    moved = structure.cart_coords + amplitude * directions
    shaken = structure.copy()
    for index, coords in enumerate(moved):
        shaken.replace(index, structure[index].species, coords, coords_are_cartesian=True)
    return CrystalRecord.from_structure(
        shaken,
        id=record.id,
        source=record.source,
        parent=record.parent,
        properties=dict(record.properties),
    )


@dataclass
class VerdictCheck:
    """A candidate's E_hull from its relaxation and from the repeat under a rattle."""

    id: str
    e_above_hull: float
    e_above_hull_repeat: float
    passes: bool
    repeated: bool
    verdict_stable: bool  # the repeat is on the same side of every threshold (or not repeated)


def verdict_stability(
    starts: Sequence[CrystalRecord],
    e_hull: Sequence[float],
    relax_path: RelaxPath,
    diagram: PhaseDiagram,
    thresholds: HullThresholds,
    rattle: float = 1e-4,
    window: float | None = 0.1,
    seed: int = 0,
) -> list[VerdictCheck]:
    """Repeat the relaxation of candidates from a rattled start; does the verdict flip?

    Parameters
    ----------
    starts
        The structures the relaxations started from (as relaxed: the prescreened ones).
    e_hull
        Each start's E_hull after its relaxation (eV/atom; NaN where it failed).
    relax_path
        Relaxes a list of records along the screen's path (the main potential with its
        settings, then the symmetrisation when the screen symmetrises); one result each.
    diagram
        The main potential's hull.
    thresholds
        The E_hull limits of a pass.
    rattle
        Å each atom of a repeated start is moved (a random direction per atom).
    window
        Repeat only candidates whose E_hull lies within ``window`` eV/atom of a threshold
        (the others are marked stable without a repeat); ``None``: repeat every candidate,
        failed relaxations included.

    Returns
    -------
    One :class:`VerdictCheck` per start, in order.
    """
    if len(starts) != len(e_hull):
        raise PipelineInputError("give one E_hull per start")
    limits = (thresholds.synthesizable, thresholds.metastable)
    repeat = [
        index
        for index, energy in enumerate(e_hull)
        if window is None
        or (math.isfinite(energy) and min(abs(energy - t) for t in limits) <= window)
    ]
    again = relax_path([rattled(starts[index], rattle, seed) for index in repeat])
    repeated = {index: result for index, result in zip(repeat, again)}
    checks = []
    for index, (start, energy) in enumerate(zip(starts, e_hull)):
        passes = thresholds.passes(energy)
        if index not in repeated:
            checks.append(VerdictCheck(start.id, energy, math.nan, passes, False, True))
            continue
        energy_repeat = result_e_hull(diagram, start, repeated[index])
        stable = thresholds.within(energy) == thresholds.within(energy_repeat)
        checks.append(VerdictCheck(start.id, energy, energy_repeat, passes, True, stable))
    return checks
