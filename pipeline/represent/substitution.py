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

An element's role is from pymatgen: an anion is an element with a negative common
oxidation state and a Pauling electronegativity of at least :data:`ANION_ELECTRONEGATIVITY`
(O, N, F, S, Cl, Se, Br, I, C); every other element is a cation. In a system of cations
only (an intermetallic), every orbit takes every element.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from pymatgen.core import Element

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
            orbits = tuple(
                dataclasses.replace(orbit, element=new)
                for orbit, new in zip(crystal.orbits, elements)
                if new is not None
            )
            found.append(Substitution(dataclasses.replace(crystal, orbits=orbits), cell, changed))
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
