"""Crystals of a composition no training structure has, by ionic substitution.

A composition absent from the training data (a new one, or one held out) has no training
structure of its own. Known structure types are still the best guess for it: most ternary
oxides crystallise in a structure type some other composition of the system takes, with
cations exchanged (Hautier et al., Inorg. Chem. 50, 656 (2011), on substitution between
ions; the bundled set itself is built that way). So a training crystal (space group,
lattice, element and free parameters per Wyckoff orbit) yields crystals of the target
composition by keeping every orbit where it is and redistributing the elements among
orbits of one ionic role, cations on cation orbits and anions on anion orbits, until the
cell has exactly the target composition (:func:`substitute`). Each substitution counts the
atoms it changes: the fewest changes from a known crystal is the nearest known structure
type, which :mod:`pipeline.models.wyckoff_diffusion` tries first.

A stoichiometry no training crystal has may still come from one with a few more sites of a
role, left empty in order (ordered-vacancy derivatives, such as the octahedral layers of
Mn5O8, CdI2-type with a quarter of their sites empty, or the defect spinels): the same
refilling, with whole orbits left empty, up to a given fraction of a role's sites.

How likely a substitution is comes from the data-mined ionic substitution probabilities
of Hautier et al. (pymatgen's ``SubstitutionProbability``, its ``lambda.json``):
:func:`rank_substitutions` orders the substitutions of many training crystals into a target
composition by :func:`substitution_probability`, most likely first, and prunes the unlikely.

An element's role is from pymatgen: an anion is an element with a negative common
oxidation state and a Pauling electronegativity of at least :data:`ANION_ELECTRONEGATIVITY`
(O, N, F, S, Cl, Se, Br, I, C); every other element is a cation. In a system of cations
only (an intermetallic), every orbit takes every element.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from pymatgen.core import Composition, Element, Species

from pipeline.represent.wyckoff import WyckoffCrystal, space_group

ANION_ELECTRONEGATIVITY = 2.5
MAX_PER_CRYSTAL = 256  # substitutions kept per crystal and cell (the first found)


@cache
def ionic_role(symbol: str) -> str:
    """``"anion"`` or ``"cation"`` (see the module docstring)."""
    element = Element(symbol)
    states = element.common_oxidation_states
    negative = bool(states) and min(states) < 0
    with warnings.catch_warnings():  # noble gases have no Pauling electronegativity (NaN)
        warnings.simplefilter("ignore")
        electronegativity = element.X
    return "anion" if negative and electronegativity >= ANION_ELECTRONEGATIVITY else "cation"


@dataclass(frozen=True)
class Substitution:
    """A training crystal with its orbits refilled for a target composition."""

    crystal: WyckoffCrystal  # the parent's lattice and parameters; empty orbits removed
    cell: str  # conventional | primitive: the cell that has the target composition
    changed: int  # atoms of that cell whose element changed or that were removed
    # atoms of that cell per (parent element, new element; None: left empty), sorted
    exchanges: tuple[tuple[str, str | None, int], ...] = ()

    @property
    def vacancies(self) -> int:
        """Atoms of the parent's cell left empty."""
        return sum(n for _, new, n in self.exchanges if new is None)


def substitute(
    crystal: WyckoffCrystal, counts: Mapping[str, int], max_vacancy_fraction: float = 0.0
) -> list[Substitution]:
    """Every refilling of ``crystal``'s orbits, one ionic role at a time, whose conventional
    or primitive cell has exactly the composition ``counts``.

    With ``max_vacancy_fraction`` > 0, whole orbits may also be left empty, at most that
    fraction of a role's sites. The unchanged crystal is among the results (``changed``
    0) when it already fits. At most :data:`MAX_PER_CRYSTAL` per cell, keeping the
    parent's element on an orbit tried first.
    """
    wanted = {el: int(n) for el, n in counts.items() if n}
    group = space_group(crystal.space_group)
    centring = crystal.template.centring
    found: list[Substitution] = []
    for cell, per_lattice_point in [("conventional", 1), ("primitive", centring)][
        : 2 if centring > 1 else 1
    ]:
        sizes = [group[o.wyckoff].multiplicity // per_lattice_point for o in crystal.orbits]
        parents = [o.element for o in crystal.orbits]
        for elements in _fillings(parents, sizes, wanted, max_vacancy_fraction):
            changed = sum(size for size, old, new in zip(sizes, parents, elements) if old != new)
            exchanges: Counter = Counter()
            for size, old, new in zip(sizes, parents, elements):
                exchanges[old, new] += size
            orbits = tuple(
                dataclasses.replace(orbit, element=new)
                for orbit, new in zip(crystal.orbits, elements)
                if new is not None
            )
            found.append(
                Substitution(
                    dataclasses.replace(crystal, orbits=orbits),
                    cell,
                    changed,
                    tuple(sorted(((o, n, k) for (o, n), k in exchanges.items()), key=str)),
                )
            )
    return found


def _fillings(
    parents: Sequence[str],
    sizes: Sequence[int],
    wanted: Mapping[str, int],
    max_vacancy_fraction: float,
) -> Iterator[tuple[str | None, ...]]:
    """Element (None: empty) per orbit giving exactly ``wanted``, each orbit taking an element
    of its parent element's role or, up to ``max_vacancy_fraction`` of a role's sites,
    staying empty."""
    roles = [ionic_role(el) for el in parents]
    by_role: dict[str, list[str | None]] = {}
    for element in sorted(wanted):
        by_role.setdefault(ionic_role(element), []).append(element)
    left: Counter = Counter(wanted)
    for role in set(roles) | set(by_role):
        sites = sum(size for size, r in zip(sizes, roles) if r == role)
        atoms = sum(wanted[el] for el in by_role.get(role, []) if el)
        empty = sites - atoms
        if empty and not (atoms and 0 < empty <= max_vacancy_fraction * sites):
            return
        if empty:
            by_role[role].append(None)
            left[(None, role)] = empty
    # Largest orbits first, so a count that cannot be met is found early.
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    chosen: list[str | None] = [None] * len(sizes)
    yielded = 0

    def key(element: str | None, role: str):
        return element if element is not None else (None, role)

    def fill(k: int) -> Iterator[tuple[str | None, ...]]:
        if k == len(order):
            yield tuple(chosen)
            return
        i = order[k]
        options = by_role[roles[i]]
        # The parent's element first: the fewest changes are found first.
        for element in sorted(options, key=lambda el: (el != parents[i], el is None)):
            slot = key(element, roles[i])
            if left[slot] >= sizes[i]:
                left[slot] -= sizes[i]
                chosen[i] = element
                yield from fill(k + 1)
                left[slot] += sizes[i]

    for filling in fill(0):
        yield filling
        yielded += 1
        if yielded >= MAX_PER_CRYSTAL:
            return


# ------------------------------------------------------------- substitution probabilities

# Each element's ions: (species, fraction of the element's atoms).
IonStates = Mapping[str, tuple[tuple[Species, float], ...]]


@cache
def _probability_model():
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionProbability,
    )

    return SubstitutionProbability()


@cache
def ion_states(formula: str) -> IonStates | None:
    """The ions of each element of ``formula``: pymatgen's most probable charge-balanced
    oxidation states (``Composition.oxi_state_guesses``, from ICSD frequencies); a mixed
    valence (Mn 3.5 in MgMn4O8) as the two neighbouring states in the fractions that give it
    (half Mn3+, half Mn4+). None when no charge-balanced assignment exists."""
    guesses = Composition(formula).oxi_state_guesses()
    if not guesses:
        return None
    states = {}
    for element, state in guesses[0].items():
        low = math.floor(state + 1e-6)
        high_fraction = state - low
        if high_fraction < 1e-6:
            states[element] = ((Species(element, low), 1.0),)
        else:
            states[element] = (
                (Species(element, low), 1.0 - high_fraction),
                (Species(element, low + 1), high_fraction),
            )
    return states


def substitution_probability(
    parent_formula: str, target_formula: str, exchanges: Sequence[tuple[str, str | None, int]]
) -> float | None:
    """How likely a crystal of ``target_formula`` takes the structure of its parent, a
    crystal of ``parent_formula`` whose atoms become those of ``exchanges`` (parent element,
    new element or None for a vacancy, atoms).

    Hautier et al.'s probability conditional on the target, as pymatgen's
    ``SubstitutionPredictor`` computes it for a substitution into a given composition: the
    product over the target's ions of the conditional probability of the parent ion their
    sites held (``SubstitutionProbability.cond_prob(parent ion, target ion)``). A target ion
    whose sites held several parent ions (a partial substitution) takes the geometric mean
    over its atoms, as a mixed valence does over its ions, so a one-to-one substitution gets
    exactly pymatgen's figure and every substitution into one target is a product of as many
    factors. None when an ion is outside the data-mined table or a formula has no
    charge-balanced oxidation states: such a substitution has no probability.
    """
    model = _probability_model()
    parent, target = ion_states(parent_formula), ion_states(target_formula)
    if parent is None or target is None:
        return None
    atoms: Counter = Counter()
    for _, new, n in exchanges:
        if new is not None:
            atoms[new] += n
    log_probability = 0.0
    for old, new, n in exchanges:
        if new is None:
            continue
        for parent_ion, parent_share in parent[old]:
            for target_ion, target_share in target[new]:
                if parent_ion not in model.species or target_ion not in model.species:
                    return None
                weight = n / atoms[new] * parent_share * target_share
                log_probability += weight * math.log(model.cond_prob(parent_ion, target_ion))
    return math.exp(log_probability)


@dataclass(frozen=True)
class RankedSubstitution:
    """A substitution into a target composition with its parent and probability."""

    substitution: Substitution
    parent: str  # id of the training crystal
    probability: float | None  # :func:`substitution_probability`; None: not defined

    @property
    def description(self) -> str:
        """The changes, e.g. ``Mn->Mg x4, Mg->Mn x2, Mn->vacancy x2``."""
        changes = [
            f"{old}->{new or 'vacancy'} x{n}"
            for old, new, n in self.substitution.exchanges
            if old != new
        ]
        return ", ".join(changes) or "none"

    def order(self) -> tuple:
        """Full exchanges before ordered-vacancy derivatives; the most probable first, those
        without a probability after; then the fewest changed atoms."""
        p = self.probability
        return (self.substitution.vacancies > 0, p is None, -(p or 0.0), self.substitution.changed)


def rank_substitutions(
    parents: Sequence[WyckoffCrystal],
    counts: Mapping[str, int],
    max_vacancy_fraction: float,
    min_probability: float,
    rng: np.random.Generator,
) -> list[RankedSubstitution]:
    """Every substitution of ``parents`` into the cell composition ``counts``
    (:func:`substitute`), best first (:meth:`RankedSubstitution.order`, ties in a random
    order from ``rng``), without those less probable than ``min_probability`` and without
    the unchanged parents (a training crystal of the target's own composition is known, no
    candidate). One crystal reached from several parents counts once, at its best.
    """
    target_formula = Composition(dict(counts)).reduced_formula
    best: dict[tuple, RankedSubstitution] = {}
    for parent in parents:
        parent_formula = Composition(dict(parent.template.conventional_counts())).reduced_formula
        for sub in substitute(parent, counts, max_vacancy_fraction):
            if sub.changed == 0:
                continue
            probability = substitution_probability(parent_formula, target_formula, sub.exchanges)
            if probability is not None and probability < min_probability:
                continue
            ranked = RankedSubstitution(sub, parent.id, probability)
            crystal = sub.crystal
            key = (
                crystal.template,
                sub.cell,
                tuple(np.round(crystal.lattice, 2)),
                tuple(sorted((o.element, o.wyckoff, *np.round(o.xyz, 3)) for o in crystal.orbits)),
            )
            if key not in best or ranked.order() < best[key].order():
                best[key] = ranked
    found = list(best.values())
    ties = rng.permutation(len(found))
    order = sorted(range(len(found)), key=lambda i: (found[i].order(), ties[i]))
    return [found[i] for i in order]
