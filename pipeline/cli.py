"""Command-line arguments that several stage CLIs share."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

from pipeline.chemsys import ChemicalSystem, parse_caps, resolve_atom_caps
from pipeline.settings import setting_argument


def add_system_arguments(parser: argparse.ArgumentParser) -> None:
    """``--chemsys`` and ``--max-atoms``: the chemical system and the encoding's caps."""
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    parser.add_argument(
        "--max-atoms",
        nargs="*",
        metavar="EL=N",
        help="per-element atom caps of the encoding; derived from the data if omitted",
    )


def system_and_caps(
    args: argparse.Namespace, species_lists: Iterable[Sequence[str]]
) -> tuple[ChemicalSystem, dict[str, int]]:
    """The parsed system and its caps (configured, or derived from ``species_lists``)."""
    system = ChemicalSystem.parse(args.chemsys)
    return system, resolve_atom_caps(system, parse_caps(args.max_atoms), species_lists)
