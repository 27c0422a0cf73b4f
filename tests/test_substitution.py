"""Crystals of unseen compositions by ionic substitution into training crystals."""

from __future__ import annotations

from collections import Counter

from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from pipeline.represent.substitution import ionic_role, substitute
from pipeline.represent.wyckoff import Orbit, WyckoffCrystal, decode, encode_record, space_group


def crystal(number: int, lattice, orbits: list[tuple[str, str, tuple]]) -> WyckoffCrystal:
    """A crystal from Wyckoff labels, e.g. ``("Mg", "8a", (0, 0, 0))``."""
    group = space_group(number)
    index = {group[i].get_label(): i for i in range(len(group))}
    return WyckoffCrystal(
        "test", number, lattice, tuple(Orbit(el, index[label], xyz) for el, label, xyz in orbits)
    )


# Normal spinel MgMn2O4 as cubic Fd-3m (origin choice 2: Mg 8a, Mn 16d, O 32e).
SPINEL = crystal(
    227,
    (8.2, 8.2, 8.2, 90.0, 90.0, 90.0),
    [
        ("Mg", "8a", (0.125, 0.125, 0.125)),
        ("Mn", "16d", (0.5, 0.5, 0.5)),
        ("O", "32e", (0.26,) * 3),
    ],
)


def summary(found) -> set[tuple[str, str, int]]:
    return {(s.crystal.template.label, s.cell, s.changed) for s in found}


def test_ionic_roles_of_common_elements():
    anions, cations = ("O", "S", "F", "N"), ("Mg", "Mn", "Ti", "Li", "P", "Ar")
    assert {ionic_role(el) for el in anions} == {"anion"}
    assert {ionic_role(el) for el in cations} == {"cation"}


def test_cations_exchange_orbits_and_anions_stay():
    # The inverse composition in the primitive (F-centred: a quarter) and the conventional cell.
    assert summary(substitute(SPINEL, {"Mg": 4, "Mn": 2, "O": 8})) == {
        ("227:Mg16d,Mn8a,O32e", "primitive", 6)
    }
    assert summary(substitute(SPINEL, {"Mg": 16, "Mn": 8, "O": 32})) == {
        ("227:Mg16d,Mn8a,O32e", "conventional", 24)
    }
    # Its own composition gives the crystal itself, nothing changed.
    assert summary(substitute(SPINEL, {"Mg": 2, "Mn": 4, "O": 8})) == {
        (SPINEL.template.label, "primitive", 0)
    }


def test_no_substitution_changes_the_anion_count_or_splits_an_orbit():
    assert substitute(SPINEL, {"Mg": 3, "Mn": 3, "O": 8}) == []  # 8a + 16d: 2 + 4 per cell
    assert substitute(SPINEL, {"Mg": 2, "Mn": 5, "O": 7}) == []


def test_orbits_left_empty_only_up_to_the_vacancy_fraction():
    # lambda-MnO2: the spinel with its tetrahedral 8a orbit empty (2 of 6 cation sites).
    assert substitute(SPINEL, {"Mn": 4, "O": 8}, 0.25) == []
    found = substitute(SPINEL, {"Mn": 4, "O": 8}, 0.4)
    assert summary(found) == {("227:Mn16d,O32e", "primitive", 2)}
    structure = decode(found[0].crystal, primitive=True).to_structure()
    assert structure.composition.reduced_formula == "MnO2"
    assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() == 227


def test_every_substitution_of_training_crystals_has_the_asked_composition(bundled_records):
    # MgMn2O4's crystals (bundled, encoded at 0.1 Å) as crystals of Mg2MnO4: the composition
    # asked, the same space group and lattice, oxygen where oxygen was, fewest changes first.
    mgmn2o4 = [r for r in bundled_records if Composition(r.formula).reduced_formula == "MgMn2O4"]
    parents = [encode_record(r, 0.1) for r in mgmn2o4[:40]]
    asked = Counter({"Mg": 4, "Mn": 2, "O": 8})
    found = 0
    for parent in parents:
        subs = substitute(parent, asked)
        for sub in subs:
            found += 1
            record = decode(sub.crystal, primitive=sub.cell == "primitive")
            assert Counter(record.species) == asked
            assert sub.crystal.space_group == parent.space_group
            assert sub.crystal.lattice == parent.lattice
            oxygen = [o for o in sub.crystal.orbits if o.element == "O"]
            assert oxygen == [o for o in parent.orbits if o.element == "O"]
            assert sub.changed >= 2  # Mg2MnO4 from MgMn2O4: at least two Mn become Mg
    assert found >= len(parents) // 2
