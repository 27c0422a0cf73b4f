"""Rediscovery: can a generator find known crystals of a formula it was never shown?

    python bench/rediscovery.py --hold-out MgMn2O4 [--hold-out FORMULA ...]
                                [--configfile OVERLAY.yaml]
                                [--models wyckoff_diffusion pyxtal_random substitution]
                                [--per-composition 32] [--steps N] [--max-cell-atoms N]
                                [--portfolio] [--workdir DIR] [--score-only]

Runs the real workflow (``snakemake``) in a temporary folder with ``config.yaml``, the
``--configfile`` overlay if given (any chemical system and data source, e.g. a CIF folder:
``chemsys: Ba-Mn-O``, ``data: {source: cif_dir, cif_dir: ...}``, as for
``snakemake --configfile``; without it the bundled Mg-Mn-O set) and the bench's own overrides:
``data.exclude_formulas`` holds every structure of the held-out reduced formulas out of
training, ``compositions.targets`` asks each model for exactly the held-out cell compositions
(every cell of the held-out structures, those of at most ``--max-cell-atoms`` atoms if given:
the cells sampled are printed as ``targets``), ``--per-composition`` structures each;
everything else (training budget, relaxation, symmetrisation, hull) is the configuration's,
except ``--steps`` (the learned models' optimiser steps) and the graph diffusion's guide steps,
set to 0 (they train only the band-gap guide, which unguided sampling does not use).

The held-out structures are those of the run's own data stage (``results/data/known.json.gz``:
the data set with its held-out formulas, as parsed and filtered for the run; built first,
before the targets are chosen). Each model's converged relaxations of a held-out formula
(``results/screen/relax/<potential>/relaxed.json.gz``) are compared with every held-out
structure of that formula as given there (the bundled set: Materials Project prototypes with
substituted species; a CIF folder: e.g. experimentally reported structures; neither relaxed
with the screen's potential) by the screen's one matcher (:mod:`pipeline.screen.known`:
pymatgen's ``StructureMatcher`` with its default tolerances on primitive cells, so a
supercell matches its primitive cell). The held-out structures fall into structure types by the
same matcher (:func:`pipeline.screen.dedup.duplicates`; a type is named by its first
structure's space group and primitive size, e.g. ``P6_3/mmc/10``). Prints one JSON line; per
model and held-out formula: structures sampled, relaxations tried and converged, held-out
structures and types and which were matched, the energy rank (1 = lowest energy per atom among
the model's converged structures of the formula) of the first that matches, the best E_hull
(eV/atom, against the workflow's complete hull, which is built from the known structures,
held-out ones included: held out of training, not out of what is known, so 0 means as low as
the known ground state), and the non-P1 fraction (spglib, symprec 0.1 Å) of the raw and
relaxed structures; and the held-out types any model matched.

``--portfolio`` scores the models as one portfolio at the budget of one model: the first
``per-composition / len(models)`` draws of each per target cell (what a run with that many
per model samples: the draws are numbered in order), against each model alone with all of its
draws, and says whether the portfolio finds every held-out type a single source finds.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml
from pymatgen.core import Composition
from snakemake.utils import update_config
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.generators import finite_or_none, snakemake  # noqa: E402
from pipeline.chemsys import ChemicalSystem, composition_label  # noqa: E402
from pipeline.models.registry import MODELS  # noqa: E402
from pipeline.records import CrystalRecord, read_records  # noqa: E402
from pipeline.screen.dedup import duplicates, prepare  # noqa: E402
from pipeline.screen.known import KnownIndex  # noqa: E402
from pipeline.symmetry import space_group  # noqa: E402

# Models trained in two phases: (steps of the phase sampling uses, phase skipped here).
STEP_KEYS = {"graph_diffusion": ("steps", "guide_steps")}
# Sources that learn nothing: --steps does not apply.
UNTRAINED = ("pyxtal_random", "substitution")
KNOWN = "results/data/known.json.gz"
SAMPLE_NUMBER = re.compile(r"-(\d+)$")


def held_out_structures(known: Path, formulas: list[str]) -> dict[str, list[CrystalRecord]]:
    """Every structure of each held-out reduced formula among the run's known structures."""
    wanted = {Composition(f).reduced_formula for f in formulas}
    out: dict[str, list[CrystalRecord]] = {f: [] for f in sorted(wanted)}
    for record in read_records(known):
        formula = Composition(record.formula).reduced_formula
        if formula in out:
            out[formula].append(record)
    empty = [f for f, records in out.items() if not records]
    if empty:
        sys.exit(f"no structure of {empty} in the run's data ({known}): nothing to rediscover")
    return out


def target_cells(
    held_out: dict[str, list[CrystalRecord]], system: ChemicalSystem, max_atoms: int | None
) -> list[str]:
    """The cell compositions (``Ba2Mn2O6`` labels) of the held-out structures, smallest first;
    only those of at most ``max_atoms`` atoms if given."""
    labels = []
    for formula, records in held_out.items():
        counts = sorted(
            {tuple(r.species.count(el) for el in system.elements) for r in records}, key=sum
        )
        kept = [c for c in counts if max_atoms is None or sum(c) <= max_atoms]
        if not kept:
            sys.exit(f"{formula}: every held-out cell has more than {max_atoms} atoms")
        labels += [composition_label(system.elements, c) for c in kept]
    return labels


def overlay_config(
    user: dict, holdouts: list[str], targets: list[str], models: list[str], per_composition, steps
) -> dict:
    """The user's overlay with the overrides of one rediscovery run (no targets: the first
    phase, which builds the data)."""
    train: dict = {"models": models}
    for model in models:
        options = {}
        trained, skipped = STEP_KEYS.get(model, ("steps", None))
        if skipped:
            options[skipped] = 0
        if steps is not None and model not in UNTRAINED:
            options[trained] = steps
        if options:
            train[model] = options
    overlay = copy.deepcopy(user)
    update_config(
        overlay,
        {
            "data": {"exclude_formulas": holdouts},
            "compositions": {"targets": targets},
            "train": train,
            "sample": {"per_composition": per_composition},
        },
    )
    return overlay


def structure_types(references: list[CrystalRecord]) -> dict[str, str]:
    """Each held-out structure's type: the first matching structure's space group (spglib,
    0.1 Å) and primitive size, e.g. ``P6_3/mmc/10``; equal labels of unmatched structures
    get ``#2``, ``#3``."""
    prepared = [prepare(r.to_structure()) for r in references]
    first_of = duplicates(prepared, [r.id for r in references])
    labels: dict[str, str] = {}
    used: Counter = Counter()
    for record, structure, first in zip(references, prepared, first_of):
        if first is not None:
            labels[record.id] = labels[first]
            continue
        label = f"{space_group(structure.primitive).symbol}/{structure.nsites}"
        used[label] += 1
        labels[record.id] = label if used[label] == 1 else f"{label}#{used[label]}"
    return labels


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


def sample_index(record_id: str) -> int:
    """The draw number of a sample (``wyckoff_diffusion-Ba2Mn2O6-00013`` -> 13)."""
    return int(SAMPLE_NUMBER.search(record_id).group(1))


def score(
    workdir: Path,
    models: list[str],
    held_out: dict[str, list[CrystalRecord]],
    potential: str,
    draws: int | None = None,
) -> dict:
    """Per model and held-out formula: the rediscovery figures (see the module docstring);
    with ``draws``, of each model's first ``draws`` samples per target cell only."""
    relax_dir = workdir / f"results/screen/relax/{potential}"
    relaxed = read_records(relax_dir / "relaxed.json.gz")
    tried = pd.read_csv(relax_dir / "relax_status.csv", dtype={"id": str})["id"].tolist()
    hull = pd.read_csv(workdir / "results/screen/hull.csv", dtype={"id": str})
    e_hull = dict(zip(hull["id"], hull["e_above_hull"].astype(float)))
    samples = {
        model: read_records(workdir / f"results/samples/{model}/samples.json.gz")
        for model in models
    }
    types = {formula: structure_types(refs) for formula, refs in held_out.items()}
    figures: dict = {}
    for model in models:
        per_formula = {}
        for formula, references in tqdm(held_out.items(), desc=f"match {model}"):
            index = KnownIndex.build(references)
            raw = [
                r
                for r in samples[model]
                if Composition(r.formula).reduced_formula == formula
                and (draws is None or sample_index(r.id) < draws)
            ]
            raw_ids = {r.id for r in raw}
            ours = [r for r in relaxed if r.source == model and r.id in raw_ids]
            first, matched, matching, groups = first_match_rank(ours, index)
            hulls = [e_hull[r.id] for r in ours if r.id in e_hull]
            per_formula[formula] = {
                "sampled": len(raw),
                "relax_tried": sum(i in raw_ids for i in tried),
                "converged": len(ours),
                "held_out": len(references),
                "held_out_types": sorted(set(types[formula].values())),
                "held_out_matched": len(matched),
                "types_matched": sorted({types[formula][i] for i in matched}),
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


def portfolio(
    workdir: Path,
    models: list[str],
    held_out: dict[str, list[CrystalRecord]],
    potential: str,
    per_composition: int,
    single: dict,
) -> dict:
    """The portfolio at one source's budget: the first ``per_composition / len(models)``
    samples of each model per target cell (the same number of samples per target as one
    model's ``per_composition``), against each model alone with all of its samples. Does the
    portfolio find every held-out type that a single source finds?"""
    share = per_composition // len(models)
    parts = score(workdir, models, held_out, potential, draws=share)
    found = types_matched_by_any(parts)
    by_single = types_matched_by_any(single)
    missed = {f: sorted(set(t) - set(found.get(f, []))) for f, t in by_single.items()}
    return {
        "per_source": share,
        "samples": sum(f["sampled"] for m in parts.values() for f in m["formulas"].values()),
        "relax_tried": sum(
            f["relax_tried"] for m in parts.values() for f in m["formulas"].values()
        ),
        "types_matched": found,
        "types_matched_by_a_single_source": by_single,
        "types_missed": {f: t for f, t in missed.items() if t},
        "finds_every_single_source_type": not any(missed.values()),
        "sources": parts,
    }


def types_matched_by_any(figures: dict) -> dict[str, list[str]]:
    """Per held-out formula, the types at least one model matched."""
    out: dict[str, set[str]] = {}
    for model in figures.values():
        for formula, f in model["formulas"].items():
            out.setdefault(formula, set()).update(f["types_matched"])
    return {formula: sorted(found) for formula, found in out.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hold-out", action="append", required=True, metavar="FORMULA", dest="holdouts"
    )
    parser.add_argument(
        "--configfile",
        type=Path,
        help="overlay of config.yaml (chemical system, data source, budgets), as for snakemake",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=sorted(MODELS),
        help="default: the configuration's train.models and pyxtal_random",
    )
    parser.add_argument(
        "--per-composition", type=int, help="default: the configuration's sample.per_composition"
    )
    parser.add_argument("--steps", type=int, help="learned models' steps (default: config's)")
    parser.add_argument(
        "--max-cell-atoms", type=int, help="sample only held-out cells of at most this many atoms"
    )
    parser.add_argument(
        "--portfolio",
        action="store_true",
        help="also score the models together at one model's budget: the first"
        " per-composition/len(models) samples of each",
    )
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temp dir)")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="only score the finished run in --workdir (its results/screen/hull.csv)",
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.score_only and args.workdir is None:
        sys.exit("--score-only needs the --workdir of a finished run")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    user = {}
    if args.configfile:
        user = yaml.safe_load(args.configfile.read_text()) or {}
    update_config(config, copy.deepcopy(user))
    models = args.models or list(dict.fromkeys([*config["train"]["models"], "pyxtal_random"]))
    per_composition = args.per_composition or config["sample"]["per_composition"]
    system = ChemicalSystem.parse(config["chemsys"])
    potential = config["screen"]["potential"]

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        configfile = workdir / "rediscovery.yaml"
        workflow_s = None
        if not args.score_only:
            start = time.perf_counter()

            def run(targets: list[str], target: str) -> None:
                overlay = overlay_config(
                    user, args.holdouts, targets, models, per_composition, args.steps
                )
                configfile.write_text(yaml.safe_dump(overlay))
                snakemake(workdir, configfile, target)

            run([], KNOWN)  # the data first: the held-out structures as the run reads them
            held_out = held_out_structures(workdir / KNOWN, args.holdouts)
            run(target_cells(held_out, system, args.max_cell_atoms), "results/screen/hull.csv")
            workflow_s = round(time.perf_counter() - start, 1)
        held_out = held_out_structures(workdir / KNOWN, args.holdouts)
        figures = score(workdir, models, held_out, potential)
        mixed = None
        if args.portfolio:
            mixed = portfolio(workdir, models, held_out, potential, per_composition, figures)
        sampled = pd.read_csv(workdir / "results/compositions/targets.csv")
        targets = sampled.loc[sampled["selected"].astype(bool), "composition"].tolist()
    print(
        json.dumps(
            finite_or_none(
                {
                    "bench": "rediscovery",
                    "configfile": str(args.configfile) if args.configfile else None,
                    "chemsys": str(system),
                    "held_out": sorted(held_out),
                    "targets": targets,
                    "per_composition": per_composition,
                    "steps": args.steps,
                    "potential": potential,
                    "matcher": "pipeline.screen.known (StructureMatcher, default tolerances)",
                    "compared_with": "held-out structures as given in the run's data set",
                    "workflow_s": workflow_s,
                    "types_matched_by_any_model": types_matched_by_any(figures),
                    "models": figures,
                    "portfolio": mixed,
                }
            )
        )
    )


if __name__ == "__main__":
    main()
