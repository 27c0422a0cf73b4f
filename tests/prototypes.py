"""Small CIF folders of chemical systems other than Mg-Mn-O, built from textbook prototypes.

write_cif_folder(tmp_path / "cifs", SR_TI_O)  # perovskite, Ruddlesden-Popper, rock salt, rutile
"""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Lattice, Structure

# (name, space group, lattice, species, Wyckoff coordinates): experimental structures,
# rounded; the pipeline relaxes them anyway.
Prototype = tuple[str, str, Lattice, list[str], list[list[float]]]

SR_TI_O: list[Prototype] = [
    (
        "SrTiO3_perovskite",
        "Pm-3m",
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]],
    ),
    (
        "Sr2TiO4_ruddlesden_popper",
        "I4/mmm",
        Lattice.tetragonal(3.88, 12.6),
        ["Sr", "Ti", "O", "O"],
        [[0, 0, 0.355], [0, 0, 0], [0, 0.5, 0], [0, 0, 0.16]],
    ),
    ("SrO_rock_salt", "Fm-3m", Lattice.cubic(5.16), ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    (
        "TiO2_rutile",
        "P4_2/mnm",
        Lattice.tetragonal(4.594, 2.959),
        ["Ti", "O"],
        [[0, 0, 0], [0.305, 0.305, 0]],
    ),
    (
        "Ti2O3_corundum",
        "R-3c",
        Lattice.hexagonal(5.157, 13.61),
        ["Ti", "O"],
        [[0, 0, 0.3447], [0.3125, 0, 0.25]],
    ),
]

BA_TI_O: list[Prototype] = [
    (
        "BaTiO3_perovskite",
        "Pm-3m",
        Lattice.cubic(4.00),
        ["Ba", "Ti", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]],
    ),
    (
        "Ba2TiO4_ruddlesden_popper",
        "I4/mmm",
        Lattice.tetragonal(4.0, 13.3),
        ["Ba", "Ti", "O", "O"],
        [[0, 0, 0.355], [0, 0, 0], [0, 0.5, 0], [0, 0, 0.15]],
    ),
    ("BaO_rock_salt", "Fm-3m", Lattice.cubic(5.52), ["Ba", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    *[p for p in SR_TI_O if p[0].startswith("Ti")],
]

LI_CO_O: list[Prototype] = [
    (
        "LiCoO2_layered",
        "R-3m",
        Lattice.hexagonal(2.816, 14.05),
        ["Li", "Co", "O"],
        [[0, 0, 0], [0, 0, 0.5], [0, 0, 0.24]],
    ),
    ("CoO_rock_salt", "Fm-3m", Lattice.cubic(4.26), ["Co", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Li2O_antifluorite", "Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25] * 3]),
]


def prototype_structure(prototype: Prototype) -> Structure:
    """The primitive cell of a prototype."""
    _, group, lattice, species, coords = prototype
    return Structure.from_spacegroup(group, lattice, species, coords).get_primitive_structure()


def write_cif_folder(folder: Path, prototypes: list[Prototype], strains=(1.0,)) -> Path:
    """One CIF per prototype and isotropic strain (``strains``: lattice scale factors).

    Strained copies are polymorphs of one formula as far as the pipeline knows: relaxation
    brings them back together, and the hull keeps the lowest.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for prototype in prototypes:
        structure = prototype_structure(prototype)
        for scale in strains:
            strained = structure.copy()
            strained.scale_lattice(structure.volume * scale**3)
            suffix = "" if scale == 1.0 else f"_x{scale:.2f}"
            strained.to(filename=str(folder / f"{prototype[0]}{suffix}.cif"))
    return folder
