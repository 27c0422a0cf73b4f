"""Space groups of crystals, and how symmetric a set of crystals is.

Every stage that measures symmetry uses these functions, so a space group means the same
everywhere: spglib through pymatgen's ``SpacegroupAnalyzer`` at two tolerances,
:data:`LOOSE_SYMPREC` (0.1 Å, the usual tolerance for relaxed ML-potential structures)
and :data:`STRICT_SYMPREC` (0.01 Å), with ``angle_tolerance`` 5°.

:func:`wyckoff_template` gives a structure's space group and the Wyckoff position of each
symmetry-distinct site per element (from ``pyxtal``), the template a Wyckoff-constrained
generator draws from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

LOOSE_SYMPREC = 0.1
STRICT_SYMPREC = 0.01
ANGLE_TOLERANCE = 5.0
CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)
# Columns of :func:`symmetry_table`, in order.
SYMMETRY_COLUMNS = (
    "space_group",
    "space_group_number",
    "crystal_system",
    "space_group_strict",
    "space_group_number_strict",
)


@dataclass(frozen=True)
class SpaceGroup:
    """A space group as spglib finds it: Hermann-Mauguin symbol, number (1-230), system."""

    symbol: str
    number: int
    crystal_system: str

    @property
    def is_p1(self) -> bool:
        return self.number == 1


# What spglib answers when it finds no symmetry at all (it fails on some broken cells,
# e.g. atoms on top of each other): nothing but the identity, as P1.
NO_SYMMETRY = SpaceGroup("P1", 1, "triclinic")


def crystal_system_of(number: int) -> str:
    """The crystal system of space group ``number`` (International Tables ranges)."""
    if not 1 <= number <= 230:
        raise ValueError(f"space group number {number} is not in 1-230")
    for last, system in zip((2, 15, 74, 142, 167, 194, 230), CRYSTAL_SYSTEMS):
        if number <= last:
            return system
    raise AssertionError("unreachable")


def space_group(structure: Structure, symprec: float = LOOSE_SYMPREC) -> SpaceGroup:
    """The space group spglib finds for ``structure`` at tolerance ``symprec`` (Å).

    Parameters
    ----------
    structure
        An ordered crystal.
    symprec
        Distance tolerance of spglib; :data:`LOOSE_SYMPREC` or :data:`STRICT_SYMPREC`.
    """
    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE)
        symbol, number = analyzer.get_space_group_symbol(), analyzer.get_space_group_number()
    # spglib raises (or returns no dataset) on cells it cannot analyse.
    except (TypeError, ValueError, AttributeError):
        return NO_SYMMETRY
    return SpaceGroup(symbol, int(number), crystal_system_of(int(number)))


def symmetry_row(structure: Structure) -> dict[str, object]:
    """The :data:`SYMMETRY_COLUMNS` of one structure: loose group, its system, strict group."""
    loose = space_group(structure, LOOSE_SYMPREC)
    strict = space_group(structure, STRICT_SYMPREC)
    return {
        "space_group": loose.symbol,
        "space_group_number": loose.number,
        "crystal_system": loose.crystal_system,
        "space_group_strict": strict.symbol,
        "space_group_number_strict": strict.number,
    }


def symmetry_table(structures: Iterable[Structure]) -> pd.DataFrame:
    """One row of :data:`SYMMETRY_COLUMNS` per structure, in order."""
    return pd.DataFrame([symmetry_row(s) for s in structures], columns=list(SYMMETRY_COLUMNS))


@dataclass(frozen=True)
class SymmetrySummary:
    """How symmetric a set of structures is.

    ``non_p1_fraction`` at :data:`LOOSE_SYMPREC`, ``non_p1_fraction_strict`` at
    :data:`STRICT_SYMPREC`; ``crystal_systems``: the fraction of structures in each of the
    seven systems (at the loose tolerance), every system present. Fractions are NaN for an
    empty set.
    """

    n_structures: int
    non_p1_fraction: float
    non_p1_fraction_strict: float
    crystal_systems: dict[str, float] = field(default_factory=dict)


def summarize_table(table: pd.DataFrame) -> SymmetrySummary:
    """The :class:`SymmetrySummary` of a :func:`symmetry_table`."""
    n = len(table)
    if n == 0:
        nan = float("nan")
        return SymmetrySummary(0, nan, nan, {system: nan for system in CRYSTAL_SYSTEMS})
    counts = Counter(table["crystal_system"])
    return SymmetrySummary(
        n_structures=n,
        non_p1_fraction=float((table["space_group_number"] != 1).mean()),
        non_p1_fraction_strict=float((table["space_group_number_strict"] != 1).mean()),
        crystal_systems={system: counts.get(system, 0) / n for system in CRYSTAL_SYSTEMS},
    )


def summarize_symmetry(structures: Iterable[Structure]) -> SymmetrySummary:
    """The :class:`SymmetrySummary` of ``structures``."""
    return summarize_table(symmetry_table(structures))


@dataclass(frozen=True)
class WyckoffSite:
    """One symmetry-distinct site: its element and Wyckoff label, e.g. ``("O", "4e")``."""

    element: str
    wyckoff: str  # multiplicity (in the conventional cell) and letter, as pyxtal labels it


@dataclass(frozen=True)
class WyckoffTemplate:
    """A structure's space group and its symmetry-distinct sites, in the conventional cell.

    Two structures share a template when they have the same space group number and the
    same multiset of (element, Wyckoff label): ``sites`` is sorted so templates compare equal.
    """

    space_group_number: int
    sites: tuple[WyckoffSite, ...]

    @property
    def composition(self) -> dict[str, int]:
        """Atoms per element in the conventional cell."""
        counts: Counter[str] = Counter()
        for site in self.sites:
            counts[site.element] += int(site.wyckoff[:-1])
        return dict(counts)


def wyckoff_template(structure: Structure, symprec: float = LOOSE_SYMPREC) -> WyckoffTemplate:
    """The :class:`WyckoffTemplate` of ``structure`` (pyxtal's ``from_seed`` at ``symprec``).

    Raises
    ------
    ValueError
        When pyxtal cannot symmetrise the structure.
    """
    from pyxtal import pyxtal

    crystal = pyxtal()
    try:
        crystal.from_seed(structure, tol=symprec)
    except Exception as exc:  # noqa: BLE001 - pyxtal raises many kinds on odd cells
        raise ValueError(f"pyxtal cannot symmetrise this structure: {exc}") from exc
    sites = sorted(
        (WyckoffSite(str(site.specie), site.wp.get_label()) for site in crystal.atom_sites),
        key=lambda s: (s.element, int(s.wyckoff[:-1]), s.wyckoff[-1]),
    )
    return WyckoffTemplate(int(crystal.group.number), tuple(sites))


def template_counts(structures: Sequence[Structure]) -> Counter[WyckoffTemplate]:
    """How many of ``structures`` have each Wyckoff template; unsymmetrisable ones skipped."""
    counts: Counter[WyckoffTemplate] = Counter()
    for structure in structures:
        try:
            counts[wyckoff_template(structure)] += 1
        except ValueError:
            continue
    return counts
