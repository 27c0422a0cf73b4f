"""Chemical systems: their elements, order and per-element atom caps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pymatgen.core import Element

from pipeline.errors import PipelineInputError


@dataclass(frozen=True)
class ChemicalSystem:
    """An ordered set of elements, e.g. ``Mg-Mn-O``.

    The order is the one the user wrote; it fixes the order of the per-element slots of
    the encodings and of the composition labels.
    """

    elements: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ChemicalSystem:
        """Parse ``"Mg-Mn-O"`` (or ``"Mg Mn O"``, ``"Mg,Mn,O"``)."""
        tokens = [t for t in text.replace(",", "-").replace(" ", "-").split("-") if t]
        if not tokens:
            raise PipelineInputError(f"empty chemical system {text!r}")
        for symbol in tokens:
            if not Element.is_valid_symbol(symbol):
                raise PipelineInputError(f"chemical system {text!r}: {symbol!r} is not an element")
        if len(set(tokens)) != len(tokens):
            raise PipelineInputError(f"chemical system {text!r} repeats an element")
        return cls(tuple(tokens))

    def __str__(self) -> str:
        return "-".join(self.elements)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.elements

    def foreign_elements(self, species: Iterable[str]) -> list[str]:
        """The elements of ``species`` that are not in this system, sorted."""
        return sorted({s for s in species if s not in self.elements})


def atom_caps_from_species(
    system: ChemicalSystem, species_lists: Iterable[Sequence[str]]
) -> dict[str, int]:
    """Largest number of atoms of each element in any one cell of a data set."""
    caps = {el: 0 for el in system.elements}
    for species in species_lists:
        for el, n in Counter(species).items():
            if el in caps:
                caps[el] = max(caps[el], n)
    return caps


def resolve_atom_caps(
    system: ChemicalSystem,
    configured: Mapping[str, int] | None,
    species_lists: Iterable[Sequence[str]],
) -> dict[str, int]:
    """Per-element caps: the configured ones, the others derived from the data.

    Raises
    ------
    PipelineInputError
        When a configured cap names an element outside ``system``.
    """
    configured = dict(configured or {})
    extra = [el for el in configured if el not in system.elements]
    if extra:
        raise PipelineInputError(
            f"atom caps {configured} name elements outside {system}: {', '.join(extra)}"
        )
    derived = atom_caps_from_species(system, species_lists)
    return {el: int(configured.get(el, derived[el])) for el in system.elements}


def parse_caps(items: Sequence[str] | None) -> dict[str, int] | None:
    """Parse ``["Mg=8", "Mn=8", "O=12"]`` (a CLI argument) into a caps mapping."""
    if not items:
        return None
    caps: dict[str, int] = {}
    for item in items:
        symbol, _, value = item.partition("=")
        if not value.strip().isdigit():
            raise PipelineInputError(f"atom cap {item!r} must read ELEMENT=COUNT, e.g. Mn=8")
        caps[symbol.strip()] = int(value)
    return caps


def composition_label(elements: Sequence[str], counts: Sequence[int]) -> str:
    """Cell composition in the system's element order, e.g. ``Mg2Mn2O6`` (zeros left out)."""
    return "".join(f"{el}{int(n)}" for el, n in zip(elements, counts) if n)
