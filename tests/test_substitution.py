"""Templates of unseen compositions by ionic substitution into training templates."""

from __future__ import annotations

from collections import Counter

from pymatgen.core import Composition

from pipeline.represent.substitution import ionic_role, substitutions
from pipeline.represent.wyckoff import Template, encode_record, space_group


def template(number: int, sites: dict[str, list[str]]) -> Template:
    """A template from Wyckoff labels, e.g. ``{"Mg": ["8a"], "O": ["32e"]}``."""
    group = space_group(number)
    index = {group[i].get_label(): i for i in range(len(group))}
    return Template(
        number,
        tuple(sorted((el, index[label]) for el, labels in sites.items() for label in labels)),
    )


SPINEL = template(227, {"Mg": ["8a"], "Mn": ["16d"], "O": ["32e"]})


def labels(found: list[tuple[Template, str]]) -> dict[str, str]:
    return {t.label: cell for t, cell in found}


def test_ionic_roles_of_common_elements():
    assert {el: ionic_role(el) for el in ("O", "S", "F", "N")} == dict.fromkeys(
        ("O", "S", "F", "N"), "anion"
    )
    assert {el: ionic_role(el) for el in ("Mg", "Mn", "Ti", "Li", "P", "Ar")} == dict.fromkeys(
        ("Mg", "Mn", "Ti", "Li", "P", "Ar"), "cation"
    )


def test_cations_exchange_orbits_and_anions_stay():
    # The inverse spinel's cation count, in the primitive (F-centred: 1/4) and conventional cell.
    assert labels(substitutions(SPINEL, {"Mg": 4, "Mn": 2, "O": 8})) == {
        "227:Mg16d,Mn8a,O32e": "primitive"
    }
    assert labels(substitutions(SPINEL, {"Mg": 16, "Mn": 8, "O": 32})) == {
        "227:Mg16d,Mn8a,O32e": "conventional"
    }
    # The template's own composition gives the template itself.
    assert labels(substitutions(SPINEL, {"Mg": 2, "Mn": 4, "O": 8})) == {SPINEL.label: "primitive"}


def test_no_substitution_changes_the_anion_count_or_splits_an_orbit():
    assert substitutions(SPINEL, {"Mg": 3, "Mn": 3, "O": 8}) == []  # 8a + 16d: 2 + 4 per cell
    assert substitutions(SPINEL, {"Mg": 2, "Mn": 5, "O": 7}) == []


def test_orbits_of_one_position_are_counted_not_permuted():
    # Four 2i orbits of cations in P-1: which two take Mg does not make another template.
    triclinic = template(2, {"Mg": ["2i", "2i"], "Mn": ["2i", "2i"], "O": ["2i"] * 4})
    found = labels(substitutions(triclinic, {"Mg": 2, "Mn": 6, "O": 8}))
    assert found == {"2:Mg2i,Mn2i,Mn2i,Mn2i,O2i,O2i,O2i,O2i": "conventional"}


def test_every_substitution_of_a_training_template_has_the_asked_composition(
    bundled_records,
):
    # MgMn2O4's templates (bundled, encoded at 0.1 Å) as templates of Mg2MnO4: the composition
    # asked, the same space group, oxygen where oxygen was.
    mgmn2o4 = [r for r in bundled_records if Composition(r.formula).reduced_formula == "MgMn2O4"]
    templates = {encode_record(r, 0.1).template for r in mgmn2o4[:40]}
    asked = Counter({"Mg": 4, "Mn": 2, "O": 8})
    found = 0
    for source in templates:
        for variant, cell in substitutions(source, asked):
            found += 1
            counts = (
                variant.conventional_counts()
                if cell == "conventional"
                else variant.primitive_counts()
            )
            assert counts == asked
            assert variant.space_group == source.space_group
            oxygen = sorted(i for el, i in variant.sites if el == "O")
            assert oxygen == sorted(i for el, i in source.sites if el == "O")
    assert found >= len(templates) // 2
