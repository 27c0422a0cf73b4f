"""Rediscovery: can a generator find known crystals of a formula it was never shown?

    python bench/rediscovery.py --hold-out MgMn2O4 [--hold-out FORMULA ...]
                                [--models graph_diffusion pyxtal_random]
                                [--per-composition 32] [--steps N]
                                [--workdir DIR]

Runs the real workflow (``snakemake``) in a temporary folder on the bundled Mg-Mn-O data with
an overlay config: ``data.exclude_formulas`` holds every structure of the held-out reduced
formulas out of training, ``compositions.targets`` asks each model for exactly the held-out
cell compositions (every cell of the held-out structures within the encoding's caps; a
cell written as its reduced formula stands for each of its multiples within the caps, see
:func:`pipeline.target_compositions.explicit_target_counts`: the cells sampled are printed as
``targets``), ``--per-composition`` structures each; everything else (training budget, relaxation, symmetrisation, hull) is
``config.yaml``'s, except ``--steps`` (the learned models' optimiser steps) and the graph
diffusion's guide steps, set to 0 (they train only the band-gap guide, which unguided sampling
does not use).

Each model's relaxed structures of a held-out formula (``results/screen/relax/chgnet/relaxed.json.gz``) are
compared with every held-out structure of that formula in the bundled set, as given there
(the Kim et al. (2020) structures: Materials Project prototypes with substituted species, not
relaxed with the screen's potential), by the screen's one matcher
(:mod:`pipeline.screen.known`: pymatgen's ``StructureMatcher`` with its default tolerances on
primitive cells, so a supercell matches its primitive cell). Prints one JSON
line; per model and held-out formula: structures sampled and relaxed, held-out structures and
how many were matched, the energy rank (1 = lowest energy per atom among the model's relaxed
structures of the formula) of the first that matches, the best E_hull (eV/atom, against the
workflow's complete hull, which is built from the known structures, held-out ones included:
held out of training, not out of what is known, so 0 means as low as the known ground state),
and the non-P1 fraction (spglib, symprec 0.1 Å) of the raw and relaxed structures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml
from pymatgen.core import Composition
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.generators import finite_or_none, snakemake  # noqa: E402
from pipeline.chemsys import ChemicalSystem, composition_label  # noqa: E402
from pipeline.models.registry import MODELS  # noqa: E402
from pipeline.records import CrystalRecord, read_records  # noqa: E402
from pipeline.screen.dedup import prepare  # noqa: E402
from pipeline.screen.known import KnownIndex  # noqa: E402
from pipeline.symmetry import space_group  # noqa: E402

# Models trained in two phases: (steps of the phase sampling uses, phase skipped here).
STEP_KEYS = {"graph_diffusion": ("steps", "guide_steps")}


def held_out_structures(dataset: Path, formulas: list[str]) -> dict[str, list[CrystalRecord]]:
    """Every structure of each held-out reduced formula in the bundled set."""
    wanted = {Composition(f).reduced_formula: f for f in formulas}
    out: dict[str, list[CrystalRecord]] = {f: [] for f in wanted}
    for record in read_records(dataset):
        formula = Composition(record.formula).reduced_formula
        if formula in out:
            out[formula].append(record)
    empty = [f for f, records in out.items() if not records]
    if empty:
        sys.exit(f"no structure of {empty} in {dataset}: nothing to rediscover")
    return out


def target_cells(
    held_out: dict[str, list[CrystalRecord]],
    system: ChemicalSystem,
    caps: dict[str, int],
) -> list[str]:
    """The cell compositions (``Mg2Mn1O4`` labels) of the held-out structures within ``caps``
    (no caps: all)."""
    labels = []
    for formula, records in held_out.items():
        counts = sorted(
            {tuple(r.species.count(el) for el in system.elements) for r in records},
            key=sum,
        )
        counts = [
            c for c in counts if all(n <= caps.get(el, n) for n, el in zip(c, system.elements))
        ]
        if not counts:
            sys.exit(f"{formula}: every held-out cell exceeds encoding.max_atoms {caps}")
        labels += [composition_label(system.elements, c) for c in counts]
    return labels


def overlay_config(
    holdouts: list[str], targets: list[str], models: list[str], per_composition: int, steps
) -> dict:
    """The overrides of ``config.yaml`` for one rediscovery run."""
    train: dict = {"models": models}
    for model in models:
        options = {}
        trained, skipped = STEP_KEYS.get(model, ("steps", None))
        if skipped:
            options[skipped] = 0
        if steps is not None and model != "pyxtal_random":
            options[trained] = steps
        if options:
            train[model] = options
    return {
        "data": {"exclude_formulas": holdouts},
        "compositions": {"targets": targets},
        "train": train,
        "sample": {"per_composition": per_composition},
    }


def first_match_rank(
    relaxed: list[CrystalRecord], references: KnownIndex
) -> tuple[int | None, set[str], int, list[int]]:
    """Rank (by energy, from 1) of the first relaxed structure matching a reference; which
    references were matched; how many relaxed structures match one; their space groups."""
    ranked = sorted(relaxed, key=lambda r: r.properties.get("energy_per_atom", math.inf))
    first, matched, matching, groups = None, set(), 0, []
    for rank, record in enumerate(ranked, start=1):
        structure = record.to_structure()
        hits = set(references.all_known_as(prepare(structure)))
        if hits:
            matching += 1
            matched |= hits
            groups.append(space_group(structure).number)
            first = first or rank
    return first, matched, matching, groups


def non_p1(records: list[CrystalRecord]) -> float | None:
    if not records:
        return None
    return sum(space_group(r.to_structure()).number != 1 for r in records) / len(records)


def score(
    workdir: Path,
    models: list[str],
    held_out: dict[str, list[CrystalRecord]],
) -> dict:
    """Per model and held-out formula: the rediscovery figures (see the module docstring)."""
    relaxed = read_records(workdir / "results/screen/relax/chgnet/relaxed.json.gz")
    hull = pd.read_csv(workdir / "results/screen/hull.csv", dtype={"id": str})
    e_hull = dict(zip(hull["id"], hull["e_above_hull"].astype(float)))
    figures: dict = {}
    for model in models:
        samples = read_records(workdir / f"results/samples/{model}/samples.json.gz")
        per_formula = {}
        for formula, references in tqdm(held_out.items(), desc=f"match {model}"):
            index = KnownIndex.build(references)
            ours = [
                r
                for r in relaxed
                if r.source == model and Composition(r.formula).reduced_formula == formula
            ]
            raw = [r for r in samples if Composition(r.formula).reduced_formula == formula]
            first, matched, matching, groups = first_match_rank(ours, index)
            hulls = [e_hull[r.id] for r in ours if r.id in e_hull]
            per_formula[formula] = {
                "sampled": len(raw),
                "relaxed": len(ours),
                "held_out": len(references),
                "held_out_matched": len(matched),
                "relaxed_matching": matching,
                "first_match_energy_rank": first,
                "matched_space_groups": dict(Counter(groups)),
                "best_e_hull": min(hulls) if hulls else None,
                "non_p1_fraction_raw": non_p1(raw),
                "non_p1_fraction_relaxed": non_p1(ours),
            }
        figures[model] = {
            "formulas_rediscovered": sum(f["held_out_matched"] > 0 for f in per_formula.values()),
            "held_out_matched": sum(f["held_out_matched"] for f in per_formula.values()),
            "formulas": per_formula,
        }
    return figures


def main() -> None:
    with open(REPO / "config.yaml") as handle:
        defaults = yaml.safe_load(handle)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hold-out", action="append", required=True, metavar="FORMULA", dest="holdouts"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=sorted(MODELS),
        help="default: config.yaml's train.models and pyxtal_random",
    )
    parser.add_argument(
        "--per-composition", type=int, help="default: config.yaml's sample.per_composition"
    )
    parser.add_argument("--steps", type=int, help="learned models' steps (default: config's)")
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temp dir)")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="only score the finished run in --workdir (its results/screen/hull.csv)",
    )
    args = parser.parse_args()
    if args.score_only and args.workdir is None:
        parser.error("--score-only needs the --workdir of a finished run")
    models = args.models or list(dict.fromkeys([*defaults["train"]["models"], "pyxtal_random"]))
    per_composition = args.per_composition or defaults["sample"]["per_composition"]
    system = ChemicalSystem.parse(defaults["chemsys"])
    held_out = held_out_structures(REPO / defaults["data"]["bundled"]["dataset"], args.holdouts)
    targets = target_cells(held_out, system, defaults["encoding"]["max_atoms"] or {})

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        configfile = workdir / "rediscovery.yaml"
        workflow_s = None
        if not args.score_only:
            overlay = overlay_config(sorted(held_out), targets, models, per_composition, args.steps)
            configfile.write_text(yaml.safe_dump(overlay))
            start = time.perf_counter()
            snakemake(workdir, configfile, "results/screen/hull.csv")
            workflow_s = round(time.perf_counter() - start, 1)
        figures = score(workdir, models, held_out)
        sampled = pd.read_csv(workdir / "results/compositions/targets.csv")
        targets = sampled.loc[sampled["selected"].astype(bool), "composition"].tolist()
    print(
        json.dumps(
            finite_or_none(
                {
                    "bench": "rediscovery",
                    "held_out": sorted(held_out),
                    "targets": targets,
                    "per_composition": per_composition,
                    "steps": args.steps,
                    "matcher": "pipeline.screen.known (StructureMatcher, default tolerances)",
                    "compared_with": "held-out structures as given in the bundled set",
                    "workflow_s": workflow_s,
                    "models": figures,
                }
            )
        )
    )


if __name__ == "__main__":
    main()
