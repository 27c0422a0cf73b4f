"""Templates of a composition no training structure has, by ionic substitution.

A composition absent from the training data (a new one, or one held out) has no training
template of its own. Known structure types are still the best guess for it: most ternary
oxides crystallise in a structure type some other composition of the system takes, with
cations exchanged (Hautier et al., Inorg. Chem. 50, 656 (2011), on substitution between
ions; the bundled set itself is built that way). So a training template (space group and
element per Wyckoff orbit) yields templates of the target composition by keeping every
orbit where it is and redistributing the elements among orbits of one ionic role:
cations take cation orbits, anions anion orbits, until the cell has exactly the target
composition (:func:`substitutions`).

An element's role is from pymatgen: an anion is an element with a negative common
oxidation state and a Pauling electronegativity of at least :data:`ANION_ELECTRONEGATIVITY`
(O, N, F, S, Cl, Se, Br, I, C); every other element is a cation. In a system of cations
only (an intermetallic), every orbit takes every element.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from pymatgen.core import Element

from pipeline.represent.wyckoff import Template, space_group

ANION_ELECTRONEGATIVITY = 2.5
MAX_PER_TEMPLATE = 256  # assignments kept per template and cell (the first, in a fixed order)


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


def substitutions(template: Template, counts: Mapping[str, int]) -> list[tuple[Template, str]]:
    """Every template made from ``template`` by exchanging elements between orbits of one
    ionic role whose conventional or primitive cell has exactly the composition ``counts``.

    Returns distinct pairs ``(template, cell)``, ``cell`` being ``"conventional"`` or
    ``"primitive"``; the unchanged template is among them when it already fits. At most
    :data:`MAX_PER_TEMPLATE` per cell.
    """
    wanted = {el: int(n) for el, n in counts.items() if n}
    group = space_group(template.space_group)
    # Orbits on the same Wyckoff position are interchangeable: count them per position.
    positions = Counter((index, ionic_role(el)) for el, index in template.sites)
    found: dict[Template, str] = {}
    cells = [("conventional", 1)]
    if template.centring > 1:
        cells.append(("primitive", template.centring))
    for cell, per_lattice_point in cells:
        slots = [
            Slot(index, role, n, group[index].multiplicity // per_lattice_point)
            for (index, role), n in sorted(positions.items())
        ]
        for sites in _fillings(slots, wanted):
            found.setdefault(Template(template.space_group, sites), cell)
    return list(found.items())


@dataclass(frozen=True)
class Slot:
    """``orbits`` orbits of one Wyckoff position and ionic role, ``size`` atoms each."""

    index: int
    role: str
    orbits: int
    size: int


def _fillings(slots: Sequence[Slot], wanted: Mapping[str, int]) -> Iterator[tuple]:
    """Sorted ``(element, index)`` sites filling ``slots`` with exactly ``wanted``, each orbit
    taking an element of its role."""
    by_role: dict[str, list[str]] = {}
    for element in sorted(wanted):
        by_role.setdefault(ionic_role(element), []).append(element)
    for role in {s.role for s in slots} | set(by_role):
        atoms = sum(s.orbits * s.size for s in slots if s.role == role)
        if atoms != sum(wanted[el] for el in by_role.get(role, [])):
            return
    # Largest orbits first, so a count that cannot be met is found early.
    order = sorted(slots, key=lambda s: -s.size)
    left = Counter(wanted)
    sites: list[tuple[str, int]] = []
    yielded = 0

    def split(slot: Slot, elements: list[str], orbits: int) -> Iterator[None]:
        """Give the slot's ``orbits`` orbits to ``elements``, as many each as ``left`` allows."""
        if not elements:
            if orbits == 0:
                yield
            return
        element, rest = elements[0], elements[1:]
        most = orbits if not rest else min(orbits, left[element] // slot.size)
        for k in range(most, -1, -1):
            if k * slot.size > left[element]:
                continue
            left[element] -= k * slot.size
            sites.extend([(element, slot.index)] * k)
            yield from split(slot, rest, orbits - k)
            del sites[len(sites) - k :]
            left[element] += k * slot.size

    def fill(k: int) -> Iterator[tuple]:
        if k == len(order):
            if not +left:
                yield tuple(sorted(sites))
            return
        slot = order[k]
        for _ in split(slot, by_role[slot.role], slot.orbits):
            yield from fill(k + 1)

    for filling in fill(0):
        yield filling
        yielded += 1
        if yielded >= MAX_PER_TEMPLATE:
            return
