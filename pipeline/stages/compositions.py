"""Stage compositions: the target cell compositions the generators are asked for.

As Kim et al. (2020) did to go beyond the known compositions: every cell composition
within the encoding's per-element atom caps that can be charge balanced with the
configured oxidation-state ranges (an element may mix states within its range, e.g.
Mn(II)/Mn(III) in Mn3O4, so a composition is balanced when
``sum(n_el * min_el) <= 0 <= sum(n_el * max_el)``); :mod:`pipeline.target_compositions`.

Each composition gets a ``status``: ``known`` (a composition class of the training set),
``new_cell`` (its reduced formula is in the data set, in a cell size the training set
lacks) or ``new`` (a stoichiometry absent from the data set). ``--target-set`` and
``--max-targets`` choose which rows are ``selected`` for sampling: known ones with the most
structures in the data set first, then new ones (smallest cells first), then new cells.
``--targets`` instead selects exactly the compositions it names (charge balanced or not): a
reduced formula (``BaTi2O5``) stands for each of its cells within the caps, a cell
composition (``Ba2Ti4O10``) for that cell only.
Run ``python -m pipeline.stages.compositions --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.chemsys import composition_label
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.settings import setting_argument
from pipeline.target_compositions import (
    TARGET_SETS,
    complete_oxidation_states,
    enumerate_compositions,
    explicit_target_counts,
    parse_oxidation_states,
    select_targets,
    target_table,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.compositions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--encoded",
        type=Path,
        required=True,
        help="point-cloud training set (.npz): elements, caps, compositions",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        required=True,
        help="the data stage's summary.csv (reduced formulas of the data set)",
    )
    parser.add_argument(
        "--oxidation-states",
        nargs="*",
        metavar="EL=LOW:HIGH",
        help="e.g. Mg=2 Mn=2:4 O=-2; elements left out get their common oxidation states"
        " (pymatgen, else SMACT)",
    )
    setting_argument(
        parser,
        "--require-all-elements",
        "compositions.require_all_elements",
        action=argparse.BooleanOptionalAction,
        help="only compositions containing every element",
    )
    setting_argument(
        parser,
        "--target-set",
        "sample.target_set",
        choices=TARGET_SETS,
        help="which compositions to sample, by status (all: any)",
    )
    setting_argument(parser, "--max-targets", "sample.max_targets", type=int, help="0: no limit")
    setting_argument(
        parser,
        "--targets",
        "compositions.targets",
        nargs="*",
        metavar="FORMULA",
        help="sample exactly these compositions (overrides --target-set and --max-targets): a"
        " reduced formula means each of its cells within the caps, a cell composition that cell",
    )
    parser.add_argument("--out", type=Path, required=True, help="targets (.csv)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.encoded.is_file() or not args.summary.is_file():
        raise PipelineInputError(f"input not found: {args.encoded} or {args.summary}")
    with np.load(args.encoded) as encoded:
        elements = [str(e) for e in encoded["elements"]]
        caps = [int(c) for c in encoded["caps"]]
        training_counts = Counter(map(tuple, encoded["counts"].tolist()))
    summary = pd.read_csv(args.summary)
    ranges, notes = complete_oxidation_states(
        elements, parse_oxidation_states(args.oxidation_states or [])
    )
    for note in notes:
        print(f"note: {note}")
    compositions = enumerate_compositions(elements, caps, ranges, args.require_all_elements)
    explicit = explicit_target_counts(args.targets, elements, caps)
    unbalanced = [c for c in explicit if c not in set(compositions)]
    if unbalanced:
        print(
            "note: explicit targets outside the charge-balanced enumeration (sampled anyway): "
            + ", ".join(composition_label(elements, c) for c in unbalanced)
        )
    compositions = compositions + unbalanced
    if not compositions:
        raise PipelineInputError("no charge-balanced composition within the atom caps")
    table = target_table(elements, compositions, training_counts, summary)
    table = select_targets(
        table,
        args.target_set,
        args.max_targets or None,
        [composition_label(elements, c) for c in explicit],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(
        json.dumps(
            {
                "compositions": len(table),
                **table["status"].value_counts().to_dict(),
                "selected": int(table["selected"].sum()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
