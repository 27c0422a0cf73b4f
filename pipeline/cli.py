"""Command-line arguments that several stage CLIs share."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

from pipeline.chemsys import ChemicalSystem, parse_caps, resolve_atom_caps
from pipeline.settings import default


def add_system_arguments(parser: argparse.ArgumentParser) -> None:
    """``--chemsys`` and ``--max-atoms``: the chemical system and the encoding's caps."""
    parser.add_argument(
        "--chemsys", default=default("chemsys"), help="chemical system, e.g. Mg-Mn-O"
    )
    parser.add_argument(
        "--max-atoms",
        nargs="*",
        metavar="EL=N",
        help="per-element atom caps of the encoding; derived from the data if omitted",
    )


def add_e_hull_thresholds(parser: argparse.ArgumentParser) -> None:
    """``--metastable`` and ``--synthesizable``: the E_hull thresholds of Kim et al. (2020)."""
    parser.add_argument(
        "--metastable",
        type=float,
        default=default("screen.e_hull.metastable"),
        help="E_hull threshold of 'metastable', eV/atom",
    )
    parser.add_argument(
        "--synthesizable",
        type=float,
        default=default("screen.e_hull.synthesizable"),
        help="E_hull threshold of 'synthesizable' (and of S.U.N.), eV/atom",
    )


def system_and_caps(
    args: argparse.Namespace, species_lists: Iterable[Sequence[str]]
) -> tuple[ChemicalSystem, dict[str, int]]:
    """The parsed system and its caps (configured, or derived from ``species_lists``)."""
    system = ChemicalSystem.parse(args.chemsys)
    return system, resolve_atom_caps(system, parse_caps(args.max_atoms), species_lists)
