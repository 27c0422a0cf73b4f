"""Target compositions: which cell compositions the generators are asked for.

As Kim et al. (2020) did to go beyond the known compositions: every cell composition
within the encoding's per-element atom caps that can be charge balanced with the
configured oxidation-state ranges (an element may mix states within its range, e.g.
Mn(II)/Mn(III) in Mn3O4, so a composition is balanced when
``sum(n_el * min_el) <= 0 <= sum(n_el * max_el)``): :func:`enumerate_compositions`.

Each composition gets a ``status`` (:func:`target_table`): ``known`` (a composition class
of the training set), ``new_cell`` (its reduced formula is in the data set, in a cell size
the training set lacks) or ``new`` (a stoichiometry absent from the data set).
:func:`select_targets` marks the rows to sample (``selected``): of a target set (``known``,
``new`` or ``all``, config ``sample.target_set``) at most ``max_targets``, known ones with
the most structures in the data set first, then new ones (smallest cells first), then new
cells; or exactly the compositions named explicitly (:func:`explicit_target_counts`, config
``compositions.targets``). :func:`pipeline.models.base.read_targets` reads the selected rows back for sampling.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from pymatgen.core import Composition, Element

from pipeline.chemsys import composition_label
from pipeline.errors import PipelineInputError

TARGET_SETS = ("known", "new", "all")
STATUS_ORDER = {"known": 0, "new": 1, "new_cell": 2}


@dataclass(frozen=True)
class OxidationRange:
    """Lowest and highest oxidation state of an element, e.g. Mn 2..4."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> OxidationRange:
        """``"2"`` or ``"2:4"`` or ``"-2"``."""
        low, _, high = text.partition(":")
        try:
            result = cls(int(low), int(high or low))
        except ValueError:
            raise PipelineInputError(
                f"oxidation state range {text!r}: write N or LOW:HIGH"
            ) from None
        if result.low > result.high:
            raise PipelineInputError(f"oxidation state range {text!r}: low above high")
        return result


def default_oxidation_range(symbol: str) -> tuple[OxidationRange, str]:
    """Lowest to highest common oxidation state of an element, and where it comes from.

    pymatgen's common oxidation states, or SMACT's (its ICSD-derived list) for the elements
    pymatgen gives none.
    """
    states = tuple(Element(symbol).common_oxidation_states)
    source = "pymatgen common oxidation states"
    if not states:
        import smact

        states = tuple(smact.Element(symbol).oxidation_states or ())
        source = "SMACT oxidation states"
    if not states:
        raise PipelineInputError(
            f"no known oxidation states of {symbol}: set compositions.oxidation_states.{symbol}"
        )
    return OxidationRange(min(states), max(states)), source


def complete_oxidation_states(
    elements: Sequence[str], configured: Mapping[str, OxidationRange]
) -> tuple[dict[str, OxidationRange], list[str]]:
    """The configured ranges of ``elements``, the missing ones from :func:`default_oxidation_range`.

    Returns the ranges and one note per defaulted element.
    """
    ranges, notes = {}, []
    for el in elements:
        if el in configured:
            ranges[el] = configured[el]
            continue
        ranges[el], source = default_oxidation_range(el)
        notes.append(
            f"oxidation states of {el} not configured: {ranges[el].low}..{ranges[el].high}"
            f" from {source}"
        )
    return ranges, notes


def parse_oxidation_states(items: Sequence[str]) -> dict[str, OxidationRange]:
    """``["Mg=2", "Mn=2:4", "O=-2"]`` into ranges per element."""
    ranges = {}
    for item in items:
        element, _, value = item.partition("=")
        if not value:
            raise PipelineInputError(f"oxidation states {item!r}: write ELEMENT=LOW:HIGH")
        ranges[element.strip()] = OxidationRange.parse(value.strip())
    return ranges


def is_charge_balanced(counts: Sequence[int], ranges: Sequence[OxidationRange]) -> bool:
    """True when some assignment of states within the ranges sums to zero charge."""
    low = sum(n * r.low for n, r in zip(counts, ranges))
    high = sum(n * r.high for n, r in zip(counts, ranges))
    return low <= 0 <= high


def enumerate_compositions(
    elements: Sequence[str],
    caps: Sequence[int],
    oxidation_states: Mapping[str, OxidationRange],
    require_all_elements: bool = True,
) -> list[tuple[int, ...]]:
    """Charge-balanced atom counts per element within the caps, in lexicographic order."""
    missing = [el for el in elements if el not in oxidation_states]
    if missing:
        raise PipelineInputError(f"no oxidation-state range for {missing}")
    ranges = [oxidation_states[el] for el in elements]
    lowest = 1 if require_all_elements else 0
    return [
        counts
        for counts in itertools.product(*(range(lowest, cap + 1) for cap in caps))
        if sum(counts) > 0 and is_charge_balanced(counts, ranges)
    ]


def explicit_target_counts(
    targets: Sequence[str], elements: Sequence[str], caps: Sequence[int]
) -> list[tuple[int, ...]]:
    """Atom counts per element of the explicitly asked compositions, in the order given.

    A formula written in its reduced form (``BaTi2O5``) stands for every multiple of it
    within ``caps``; any other (``Ba2Ti4O10``) for exactly that cell.
    """
    chosen: list[tuple[int, ...]] = []
    for text in targets:
        try:
            composition = Composition(text)
        except (ValueError, KeyError) as exc:
            raise PipelineInputError(f"target {text!r} is not a formula ({exc})") from None
        amounts = {el.symbol: n for el, n in composition.items()}
        foreign = sorted(set(amounts) - set(elements))
        if foreign or not amounts:
            raise PipelineInputError(
                f"target {text!r}: elements {foreign} are outside the system {'-'.join(elements)}"
            )
        if any(abs(n - round(n)) > 1e-8 for n in amounts.values()):
            raise PipelineInputError(f"target {text!r}: atom counts must be whole numbers")
        cell = tuple(int(round(amounts.get(el, 0))) for el in elements)
        _, factor = composition.get_reduced_composition_and_factor()
        multiples = (
            range(1, 1 + min(c // n for c, n in zip(caps, cell) if n)) if factor == 1 else [1]
        )
        found = [
            tuple(k * n for n in cell)
            for k in multiples
            if all(k * n <= cap for n, cap in zip(cell, caps))
        ]
        if not found:
            over = ", ".join(
                f"{el} {n} > {cap}" for el, n, cap in zip(elements, cell, caps) if n > cap
            )
            raise PipelineInputError(
                f"target {text!r} does not fit the encoding's atom caps ({over});"
                " raise encoding.max_atoms"
            )
        chosen.extend(c for c in found if c not in chosen)
    return chosen


def target_table(
    elements: Sequence[str],
    compositions: Sequence[tuple[int, ...]],
    training_counts: Mapping[tuple[int, ...], int],
    dataset: pd.DataFrame,
) -> pd.DataFrame:
    """One row per composition: status, structures in the data set and in the training set.

    ``dataset`` is the data stage's summary (``composition``, ``reduced_formula``,
    ``n_structures``)."""
    dataset_structures = dict(zip(dataset["composition"], dataset["n_structures"]))
    dataset_reduced_formulas = set(dataset["reduced_formula"])
    rows = []
    for counts in compositions:
        label = composition_label(elements, counts)
        reduced = Composition(dict(zip(elements, counts))).reduced_formula
        if counts in training_counts:
            status = "known"
        elif reduced in dataset_reduced_formulas:
            status = "new_cell"
        else:
            status = "new"
        rows.append(
            {
                "composition": label,
                "reduced_formula": reduced,
                **{f"n_{el}": n for el, n in zip(elements, counts)},
                "natoms": sum(counts),
                "status": status,
                "n_dataset_structures": int(dataset_structures.get(label, 0)),
                "n_training_structures": int(training_counts.get(counts, 0)),
            }
        )
    return pd.DataFrame(rows)


def select_targets(
    table: pd.DataFrame,
    target_set: str,
    max_targets: int | None,
    explicit: Sequence[str] = (),
) -> pd.DataFrame:
    """Sort into sampling priority and mark the chosen rows in a ``selected`` column: at
    most ``max_targets`` of the rows whose status is ``target_set`` (``all``: any status).

    ``explicit`` (composition labels) overrides ``target_set`` and ``max_targets``: exactly
    those rows are selected.
    """
    if target_set not in TARGET_SETS:
        raise PipelineInputError(f"target set {target_set!r}: use one of {TARGET_SETS}")
    table = table.assign(_rank=table["status"].map(STATUS_ORDER))
    table = table.sort_values(
        ["_rank", "n_dataset_structures", "n_training_structures", "natoms", "composition"],
        ascending=[True, False, False, True, True],
    ).drop(columns="_rank")
    if explicit:
        return table.assign(selected=table["composition"].isin(explicit)).reset_index(drop=True)
    eligible = table["status"].isin(list(STATUS_ORDER) if target_set == "all" else [target_set])
    chosen = eligible.cumsum() <= (max_targets if max_targets else len(table))
    return table.assign(selected=eligible & chosen).reset_index(drop=True)
