import pytest

from pipeline.chemsys import (
    ChemicalSystem,
    atom_caps_from_species,
    composition_label,
    parse_caps,
    resolve_atom_caps,
)
from pipeline.errors import PipelineInputError


def test_parse_keeps_the_users_order():
    assert ChemicalSystem.parse("Mg-Mn-O").elements == ("Mg", "Mn", "O")
    assert ChemicalSystem.parse("O, Mn Mg").elements == ("O", "Mn", "Mg")


@pytest.mark.parametrize(
    "text, message", [("Mg-Xx-O", "'Xx' is not an element"), ("Mg-Mg", "repeats"), ("", "empty")]
)
def test_parse_rejects_bad_systems(text, message):
    with pytest.raises(PipelineInputError, match=message):
        ChemicalSystem.parse(text)


def test_caps_derived_from_bundled_data(mgmno, bundled_records):
    caps = atom_caps_from_species(mgmno, (r.species for r in bundled_records))
    assert caps == {"Mg": 8, "Mn": 8, "O": 12}


def test_configured_caps_win_and_the_others_come_from_the_data(mgmno):
    assert resolve_atom_caps(mgmno, {"Mg": 4, "Mn": 4, "O": 8}, []) == {"Mg": 4, "Mn": 4, "O": 8}
    data = [["Mg", "Mn", "O", "O", "O"], ["Mn", "Mn", "O"]]
    assert resolve_atom_caps(mgmno, {"Mg": 4}, data) == {"Mg": 4, "Mn": 2, "O": 3}
    with pytest.raises(PipelineInputError, match="outside Mg-Mn-O: Ti"):
        resolve_atom_caps(mgmno, {"Mg": 4, "Ti": 4}, [])


def test_parse_caps_argument():
    assert parse_caps(["Mg=8", "O=12"]) == {"Mg": 8, "O": 12}
    assert parse_caps(None) is None
    with pytest.raises(PipelineInputError, match="ELEMENT=COUNT"):
        parse_caps(["Mg:8"])


def test_composition_label_skips_absent_elements():
    assert composition_label(("Mg", "Mn", "O"), (2, 0, 2)) == "Mg2O2"
