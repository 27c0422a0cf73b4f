"""Crystals as space-group templates with free Wyckoff parameters (DiffCSP++, Jiao et al. 2024).

A crystal in its conventional standard cell (PyXtal's settings: monoclinic unique axis b,
rhombohedral groups in the hexagonal cell) is

* a :class:`Template`: the space group and, per element, the Wyckoff positions its atoms
  occupy (PyXtal's index within the group; letters for display);
* per occupied position (an :class:`Orbit`), the free parameters ``xyz`` of its
  representative: the representative is ``R0 @ xyz + t0`` for the position's first
  operation ``(R0, t0)``, so only the components of ``xyz`` whose column of ``R0`` is
  non-zero matter (:func:`free_mask`), and since ``R0`` is integer they live on the torus;
* the lattice parameters ``a, b, c, alpha, beta, gamma`` (Å, degrees); its crystal system
  fixes some angles and ties some lengths (:func:`lattice_projection`).

Every atom of the cell is ``A_i @ xyz + b_i`` with ``A_i = R_i @ R0``, ``b_i = R_i @ t0 + t_i``
over the position's operations ``(R_i, t_i)`` (:func:`orbit_operators`), so a structure
built from any parameters has the template's space group (or a supergroup) by construction.

Templates come from real structures (:func:`encode_record`, PyXtal's ``from_seed`` at a
loose tolerance, since the bundled structures are unrelaxed prototypes) or from PyXtal's
random Wyckoff assignment for a composition (:func:`random_template`). A dataset of encoded
crystals is a ``.npz`` file (:func:`save_wyckoff_dataset`, :func:`load_wyckoff_dataset`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from pyxtal import pyxtal
from pyxtal.symmetry import Group

from pipeline.arrays import load_arrays, save_arrays
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError, lattice_from_parameters
from pipeline.symmetry import crystal_system_of

# Lattice points per conventional cell, by the first letter of the Hermann-Mauguin symbol.
CENTRING = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "R": 3, "F": 4}
DUPLICATE_TOLERANCE = 1e-3  # fractional; two atoms of one orbit this close are one site


@dataclass(frozen=True)
class Orbit:
    """Atoms of one element on one Wyckoff position; ``xyz`` are its free parameters."""

    element: str
    wyckoff: int  # PyXtal's index of the position within the group (0: general)
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Template:
    """A space group with the Wyckoff positions each element occupies."""

    space_group: int
    sites: tuple[tuple[str, int], ...]  # (element, Wyckoff index), sorted

    @property
    def label(self) -> str:
        """E.g. ``225:Mg4a,O4b``."""
        group = space_group(self.space_group)
        names = [f"{el}{group[index].get_label()}" for el, index in self.sites]
        return f"{self.space_group}:" + ",".join(names)

    @property
    def centring(self) -> int:
        return CENTRING[space_group(self.space_group).symbol[0]]

    def conventional_counts(self) -> Counter[str]:
        group = space_group(self.space_group)
        counts: Counter[str] = Counter()
        for element, index in self.sites:
            counts[element] += group[index].multiplicity
        return counts

    def primitive_counts(self) -> Counter[str]:
        return Counter({el: n // self.centring for el, n in self.conventional_counts().items()})


@dataclass(frozen=True)
class WyckoffCrystal:
    """A crystal as its space group, lattice parameters and orbits."""

    id: str
    space_group: int
    lattice: tuple[float, ...]  # a, b, c (Å), alpha, beta, gamma (degrees)
    orbits: tuple[Orbit, ...]

    @property
    def template(self) -> Template:
        return Template(
            self.space_group, tuple(sorted((o.element, o.wyckoff) for o in self.orbits))
        )

    @property
    def crystal_system(self) -> str:
        return crystal_system_of(self.space_group)


@cache
def space_group(number: int) -> Group:
    return Group(number)


@cache
def orbit_operators(number: int, wyckoff: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, b, free)`` of a Wyckoff position: atom ``i`` of its orbit sits at
    ``A[i] @ xyz + b[i]`` (mod 1), and ``free`` (3,) marks the parameters that move it."""
    position = space_group(number)[wyckoff]
    first = position.ops[0]
    rotation0, translation0 = first.rotation_matrix, first.translation_vector
    a = np.stack([op.rotation_matrix @ rotation0 for op in position.ops])
    b = np.stack([op.rotation_matrix @ translation0 + op.translation_vector for op in position.ops])
    free = np.abs(rotation0).sum(axis=0) > 0
    return a, b, free


# Site-symmetry operations by rotation type, as (determinant, trace) of the rotation part,
# which no choice of basis changes: 2, 3, 4, 6, -1, m, -3, -4, -6 (the identity left out).
ROTATION_TYPES = ((1, -1), (1, 0), (1, 1), (1, 2), (-1, -3), (-1, 1), (-1, 0), (-1, -1), (-1, -2))
SITE_FEATURES = len(ROTATION_TYPES) + 4  # :func:`site_symmetry_features`


@cache
def site_symmetry_features(number: int, wyckoff: int) -> np.ndarray:
    """What the site symmetry of a Wyckoff position is, whatever its orientation and group:
    ``log(1 + n)`` for the number ``n`` of its operations of each of :data:`ROTATION_TYPES`
    (which tells its point group: ``m-3m`` has nine 2-fold axes, eight 3-fold, six 4-fold, an
    inversion centre, ...; a general position has none), then its free parameters one-hot
    (0 to 3). Shape ``(SITE_FEATURES,)``."""
    operations = space_group(number)[wyckoff].symmetry[0]
    kinds = Counter(
        (round(np.linalg.det(op.rotation_matrix)), round(np.trace(op.rotation_matrix)))
        for op in operations
    )
    freedom = np.zeros(4)
    freedom[int(orbit_operators(number, wyckoff)[2].sum())] = 1.0
    return np.concatenate([np.log1p([kinds[k] for k in ROTATION_TYPES]), freedom])


def free_parameters(number: int, wyckoff: int, position: np.ndarray) -> np.ndarray:
    """The parameters ``xyz`` whose representative is ``position``.

    Each free parameter appears alone with coefficient +-1 in some row of the first
    operation (true of every position in the International Tables), which gives it.
    """
    first = space_group(number)[wyckoff].ops[0]
    rotation, translation = first.rotation_matrix, first.translation_vector
    xyz = np.zeros(3)
    for column in np.flatnonzero(np.abs(rotation).sum(axis=0) > 0):
        rows = [
            r
            for r in range(3)
            if abs(rotation[r, column]) == 1 and np.count_nonzero(rotation[r]) == 1
        ]
        if not rows:
            raise ValueError(f"position {wyckoff} of group {number}: parameter {column} not alone")
        xyz[column] = rotation[rows[0], column] * (position[rows[0]] - translation[rows[0]])
    return xyz % 1.0


def lattice_projection(system: str) -> np.ndarray:
    """Orthogonal projector (6, 6) onto the lattice features a crystal system leaves free.

    Features: three log lengths, then the three angles' deviations from the system's
    fixed values (:func:`fixed_angles`). Tied lengths are averaged; fixed angles zeroed.
    """
    p = np.zeros((6, 6))
    if system == "cubic":
        p[:3, :3] = 1 / 3
    elif system in ("tetragonal", "trigonal", "hexagonal"):
        p[:2, :2] = 0.5
        p[2, 2] = 1.0
    else:
        p[:3, :3] = np.eye(3)
    if system == "triclinic":
        p[3:, 3:] = np.eye(3)
    elif system == "monoclinic":
        p[4, 4] = 1.0  # beta: PyXtal's monoclinic cells have unique axis b
    return p


def fixed_angles(system: str) -> np.ndarray:
    """Angles (degrees) the free angle features deviate from: gamma = 120 in hexagonal cells."""
    return np.array([90.0, 90.0, 120.0 if system in ("trigonal", "hexagonal") else 90.0])


def encode_record(record: CrystalRecord, symprec: float) -> WyckoffCrystal:
    """The conventional cell, space group and orbits PyXtal finds in ``record`` at ``symprec`` Å.

    A structure whose symmetry PyXtal cannot analyse becomes P1 with every atom an orbit.
    """
    crystal = pyxtal()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            crystal.from_seed(record.to_structure(), tol=symprec)
        number = int(crystal.group.number)
        lattice = tuple(float(v) for v in crystal.lattice.get_para(degree=True))
        orbits = tuple(
            Orbit(
                str(site.specie),
                int(site.wp.index),
                tuple(free_parameters(number, int(site.wp.index), np.asarray(site.position))),
            )
            for site in crystal.atom_sites
        )
    except Exception:  # noqa: BLE001 - PyXtal raises many types; P1 is always valid
        structure = record.to_structure()
        number, lattice = 1, tuple(float(v) for v in structure.lattice.parameters)
        orbits = tuple(
            Orbit(str(site.specie), 0, tuple(float(x) for x in site.frac_coords % 1.0))
            for site in structure
        )
    return WyckoffCrystal(record.id, number, lattice, orbits)


def orbit_positions(number: int, orbit: Orbit) -> np.ndarray:
    """Fractional coordinates (m, 3) of every atom of ``orbit``, wrapped into [0, 1)."""
    a, b, _ = orbit_operators(number, orbit.wyckoff)
    return (a @ np.asarray(orbit.xyz) + b) % 1.0


def decode(crystal: WyckoffCrystal, primitive: bool = False) -> CrystalRecord:
    """The structure of ``crystal`` (its conventional cell, or the primitive one).

    Raises :class:`DecodeError` for an impossible cell, or when parameters put atoms of an
    orbit onto each other (the structure would lose atoms and its composition).
    """
    lattice = lattice_from_parameters(np.array(crystal.lattice[:3]), np.array(crystal.lattice[3:]))
    species: list[str] = []
    coords: list[np.ndarray] = []
    for orbit in crystal.orbits:
        positions = orbit_positions(crystal.space_group, orbit)
        delta = positions[:, None, :] - positions[None, :, :]
        delta -= np.round(delta)
        close = np.abs(delta).max(axis=2) < DUPLICATE_TOLERANCE
        if close.sum() > len(positions):
            raise DecodeError(f"orbit {orbit.element}{orbit.wyckoff} collapses onto itself")
        species += [orbit.element] * len(positions)
        coords.append(positions)
    structure = Structure(lattice, species, np.concatenate(coords))
    if primitive:
        centring = CENTRING[space_group(crystal.space_group).symbol[0]]
        reduced = structure.get_primitive_structure(tolerance=0.01)
        if len(reduced) * centring != len(structure):
            raise DecodeError(f"primitive cell of {len(reduced)} atoms, not {len(structure)}")
        structure = reduced
    return CrystalRecord.from_structure(structure, id=crystal.id)


def compatible(template: Template, counts: Mapping[str, int]) -> str | None:
    """``"conventional"`` or ``"primitive"``: which cell of ``template`` has exactly the cell
    composition ``counts``; None if neither."""
    wanted = Counter({el: int(n) for el, n in counts.items() if n})
    if template.conventional_counts() == wanted:
        return "conventional"
    if template.centring > 1 and template.primitive_counts() == wanted:
        return "primitive"
    return None


def random_template(
    counts: Mapping[str, int], rng: np.random.Generator, tries: int = 50
) -> Template | None:
    """A random space group (2-230) and Wyckoff assignment of the cell composition
    ``counts`` whose primitive cell has exactly those atoms (PyXtal's ``from_random``);
    None when ``tries`` groups give none."""
    elements = [el for el, n in counts.items() if n]
    for _ in range(tries):
        number = int(rng.integers(2, 231))
        centring = CENTRING[space_group(number).symbol[0]]
        conventional = [int(counts[el]) * centring for el in elements]
        if not space_group(number).check_compatible(conventional)[0]:
            continue
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(
                    3, number, elements, conventional, random_state=int(rng.integers(2**31))
                )
        except Exception:  # noqa: BLE001 - PyXtal raises many types when it cannot place atoms
            continue
        if not crystal.valid:
            continue
        return Template(
            number, tuple(sorted((str(s.specie), int(s.wp.index)) for s in crystal.atom_sites))
        )
    return None


# ----------------------------------------------------------------------------- datasets


def crystals_to_arrays(
    crystals: Sequence[WyckoffCrystal], elements: Sequence[str]
) -> dict[str, np.ndarray]:
    """Crystals as flat arrays (orbits of crystal ``k`` follow those of 0..k-1)."""
    return {
        "space_group": np.array([c.space_group for c in crystals], dtype=np.int64),
        "lattice": np.array([c.lattice for c in crystals], dtype=np.float64).reshape(-1, 6),
        "num_orbits": np.array([len(c.orbits) for c in crystals], dtype=np.int64),
        "orbit_element": np.array(
            [list(elements).index(o.element) for c in crystals for o in c.orbits], dtype=np.int64
        ),
        "orbit_wyckoff": np.array([o.wyckoff for c in crystals for o in c.orbits], dtype=np.int64),
        "orbit_xyz": np.array([o.xyz for c in crystals for o in c.orbits]).reshape(-1, 3),
    }


def crystals_from_arrays(
    arrays: Mapping[str, np.ndarray], elements: Sequence[str], ids: Sequence[str]
) -> list[WyckoffCrystal]:
    """The crystals of :func:`crystals_to_arrays`' arrays."""
    starts = np.concatenate([[0], np.cumsum(arrays["num_orbits"])]).astype(int)
    return [
        WyckoffCrystal(
            str(ids[k]),
            int(arrays["space_group"][k]),
            tuple(float(v) for v in arrays["lattice"][k]),
            tuple(
                Orbit(
                    elements[int(arrays["orbit_element"][j])],
                    int(arrays["orbit_wyckoff"][j]),
                    tuple(float(v) for v in arrays["orbit_xyz"][j]),
                )
                for j in range(starts[k], starts[k + 1])
            ),
        )
        for k in range(len(arrays["space_group"]))
    ]


def save_wyckoff_dataset(
    crystals: Sequence[WyckoffCrystal], elements: Sequence[str], symprec: float, path: Path
) -> None:
    """Write encoded crystals (:func:`crystals_to_arrays`) with their ids and elements."""
    save_arrays(
        path,
        **crystals_to_arrays(crystals, elements),
        ids=np.array([c.id for c in crystals]),
        elements=np.array(list(elements)),
        symprec=np.array(symprec),
    )


def load_wyckoff_dataset(path: Path) -> tuple[list[WyckoffCrystal], tuple[str, ...]]:
    """The crystals and the chemical system's elements of a file from :func:`save_wyckoff_dataset`."""
    arrays = load_arrays(path, "Wyckoff dataset", "orbit_wyckoff")
    elements = tuple(str(e) for e in arrays["elements"])
    crystals = crystals_from_arrays(arrays, elements, arrays["ids"])
    if not crystals:
        raise PipelineInputError(f"{path} holds no crystals")
    return crystals, elements
