"""The universal potentials against GPAW PBE(+U) on the same structures: E_hull and its verdicts.

Structures of a finished run: its exported candidates, its rediscoveries (``relaxed_known_as``)
and the known polymorphs of their formulas (the lowest ``--polymorphs`` per formula among the
hull's relaxed phases), topped up with the remaining candidates of lowest ML E_hull to at least
``--min-structures``. Every structure and the phases their E_hull needs
(:func:`pipeline.dft.hull.reference_ids`) are taken at the geometry the run's potential relaxed
them to; DFT (:mod:`pipeline.dft.check`, cached, MP2020-corrected) and each potential's single
point (MP2020-corrected where its training target was not) give one E_hull each against the same
references, excluding the structure itself. Prints ONE JSON line: per potential, the E_hull
difference to DFT (mean, mean absolute, largest), the agreement of the verdicts at
the run's two thresholds (its criteria.json), and the cost per structure; ``--rows`` writes
the per-structure table (CSV).

    python bench/ml_vs_dft.py --results /tmp/d/results --rows ml_vs_dft.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.dft.cache import DftCache, calculation_key  # noqa: E402
from pipeline.dft.check import calculate  # noqa: E402
from pipeline.dft.corrections import mp2020_entry  # noqa: E402
from pipeline.dft.gpaw_calc import DftSettings, require_gpaw  # noqa: E402
from pipeline.dft.hull import Phase, e_above_hull, reference_ids  # noqa: E402
from pipeline.dft.mp_inputs import mp_parameters  # noqa: E402
from pipeline.errors import PipelineInputError, exit_on_input_error  # noqa: E402
from pipeline.formats import read_table  # noqa: E402
from pipeline.records import CrystalRecord, read_records  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.potential_names import energy_scale  # noqa: E402
from pipeline.screen.potentials import PotentialSpec, ase_calculator  # noqa: E402
from pipeline.screen.single_point import energies_sequential  # noqa: E402
from pipeline.settings import default, parse_options  # noqa: E402


def reduced(record: CrystalRecord) -> str:
    return record.to_structure().composition.reduced_formula


def select(
    table: pd.DataFrame,
    relaxed: dict[str, CrystalRecord],
    phases: list[CrystalRecord],
    min_structures: int,
    polymorphs: int,
    rediscoveries: int,
) -> list[tuple[str, CrystalRecord]]:
    """(kind, record): exported, the ``rediscoveries`` of lowest ML E_hull, known polymorphs of
    their formulas, the other candidates of lowest ML E_hull up to ``min_structures``, then
    the known polymorphs of those candidates' formulas (the lowest is a reference of its
    formula anyway, so with ``polymorphs`` 1 they cost no calculation)."""
    table = table.loc[table["id"].isin(relaxed)].sort_values("e_above_hull", kind="stable")
    passes = table["passes"].astype(str).str.lower() == "true"
    known = table.get("relaxed_known_as", pd.Series(index=table.index, dtype=object)).notna()
    chosen: list[tuple[str, CrystalRecord]] = []

    def add_known_polymorphs() -> None:
        have = {reduced(r) for kind, r in chosen if kind == "known"}
        for formula in sorted({reduced(r) for _, r in chosen} - have):
            same = sorted(
                (p for p in phases if reduced(p) == formula),
                key=lambda p: p.properties["energy_per_atom"],
            )
            chosen.extend(("known", p) for p in same[:polymorphs])

    for kind, ids in (
        ("exported", table.loc[passes, "id"]),
        ("rediscovered", table.loc[known & ~passes, "id"].head(rediscoveries)),
    ):
        chosen += [(kind, relaxed[i]) for i in ids]
    add_known_polymorphs()
    taken = {r.id for _, r in chosen}
    rest = table.loc[~table["id"].isin(taken)]
    for record_id in rest["id"]:
        if len(chosen) >= min_structures:
            break
        chosen.append(("candidate", relaxed[record_id]))
    add_known_polymorphs()
    return chosen


def ml_energies(potential: str, records: list[CrystalRecord]) -> tuple[dict[str, float], float]:
    """Per-atom single-point energies on the potential's MP2020 scale, and seconds per structure."""
    start = time.perf_counter()
    raw = energies_sequential(records, ase_calculator(PotentialSpec(potential)), progress=False)
    seconds = (time.perf_counter() - start) / max(len(records), 1)
    corrected = {}
    for record, energy in zip(records, raw):
        if energy_scale(potential).mp2020_included or not math.isfinite(energy):
            corrected[record.id] = energy
            continue
        structure = record.to_structure()
        entry = mp2020_entry(
            structure, energy * len(structure), mp_parameters(structure), record.id
        )
        corrected[record.id] = entry.energy_per_atom
    return corrected, seconds


def hull_distances(
    structures: list[CrystalRecord],
    references: list[CrystalRecord],
    energies: dict[str, float],
) -> dict[str, float]:
    """E_hull of each structure against the references, all with ``energies``."""
    pool = [
        Phase(r.id, r.to_structure().composition, energies[r.id])
        for r in references
        if math.isfinite(energies.get(r.id, math.nan))
    ]
    distances = {}
    for record in structures:
        energy = energies.get(record.id, math.nan)
        if not math.isfinite(energy):
            distances[record.id] = math.nan
            continue
        phase = Phase(record.id, record.to_structure().composition, energy)
        try:
            distances[record.id] = e_above_hull(phase, pool).e_above_hull
        except PipelineInputError:
            distances[record.id] = math.nan
    return distances


def summary(rows: pd.DataFrame, method: str, thresholds: dict[str, float]) -> dict[str, object]:
    """E_hull difference to DFT and agreement of the verdicts of one method."""
    both = rows[["e_hull_dft", f"e_hull_{method}"]].dropna()
    dft, ml = both["e_hull_dft"], both[f"e_hull_{method}"]
    difference = ml - dft
    return {
        "structures": len(both),
        "mean_difference": round(float(difference.mean()), 3),
        "mean_abs_difference": round(float(difference.abs().mean()), 3),
        "max_abs_difference": round(float(difference.abs().max()), 3),
        **{
            f"agree_{name}": round(float(((ml <= t) == (dft <= t)).mean()), 3)
            for name, t in thresholds.items()
        },
        **{
            f"false_pass_{name}": int(((ml <= t) & (dft > t)).sum())
            for name, t in thresholds.items()
        },
        **{
            f"false_fail_{name}": int(((ml > t) & (dft <= t)).sum())
            for name, t in thresholds.items()
        },
    }


@exit_on_input_error
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, required=True, help="a finished run's results/")
    parser.add_argument("--potential", default=default("screen.potential"), help="of the run")
    parser.add_argument("--potentials", nargs="+", default=["chgnet", "sevennet", "m3gnet"])
    parser.add_argument(
        "--criteria", type=Path, help="the run's criteria.json (default: <results>/criteria.json)"
    )
    parser.add_argument("--min-structures", type=int, default=10)
    parser.add_argument(
        "--max-atoms",
        type=int,
        help="leave out candidates of more atoms per cell (their known polymorphs and the"
        " references stay: those are needed regardless)",
    )
    parser.add_argument("--polymorphs", type=int, default=1, help="known ones per formula")
    parser.add_argument("--rediscoveries", type=int, default=4, help="of lowest ML E_hull")
    parser.add_argument(
        "--formulas",
        nargs="+",
        help="only candidates of these reduced formulas (the references stay what they need)",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="leave out structures whose calculation or references the cache does not hold"
        " (listed as not_measured)",
    )
    parser.add_argument(
        "--plan", action="store_true", help="list the structures and references, compute nothing"
    )
    parser.add_argument("--options", default="{}", help="dft settings as JSON (config: dft)")
    parser.add_argument("--cache", type=Path, default=REPO / "results/dft_check/cache")
    parser.add_argument("--shipped", type=Path, nargs="*", default=[REPO / "resources/dft"])
    parser.add_argument("--log-dir", type=Path, help="GPAW's text output per calculation")
    parser.add_argument("--rows", type=Path, help="per-structure table (.csv)")
    args = parser.parse_args()
    require_gpaw()
    settings = DftSettings.from_options(
        {**dataclasses.asdict(default("dft")), **parse_options(args.options)}
    )
    # the run's verdict thresholds
    criteria = Criteria.read(args.criteria or args.results / "criteria.json")
    thresholds = {"synthesizable": criteria.synthesizable, "metastable": criteria.metastable}
    table = read_table(args.results / "candidates.csv", ["id", "e_above_hull", "passes"])
    formulas = set(args.formulas or [])

    def small(record: CrystalRecord) -> bool:
        """Whether a candidate may be measured (--max-atoms, --formulas)."""
        fits = not args.max_atoms or record.natoms <= args.max_atoms
        return fits and (not formulas or reduced(record) in formulas)

    relaxed = {
        r.id: r
        for r in read_records(args.results / f"screen/relax/{args.potential}/relaxed.json.gz")
        if small(r)
    }
    phases = read_records(args.results / f"hull/{args.potential}/references_relaxed.json.gz")
    chosen = select(
        table,
        relaxed,
        phases,  # a known polymorph is a reference of its formula anyway: no extra calculation
        args.min_structures,
        args.polymorphs,
        args.rediscoveries,
    )
    needed = reference_ids([r for _, r in chosen], phases)
    cache = DftCache(args.cache, args.shipped)
    not_measured = []
    if args.cached_only:  # leave out what the cache cannot answer: the structure or a reference
        phase_by_id = {p.id: p for p in phases}
        wanted = {r.id: r for _, r in chosen} | {
            i: phase_by_id[i] for ids in needed.values() for i in ids
        }

        def is_cached(record: CrystalRecord) -> bool:
            structure = record.to_structure()
            key = calculation_key(structure, mp_parameters(structure), settings)
            return cache.get(key) is not None

        missing = {i for i, record in wanted.items() if not is_cached(record)}
        not_measured = [r.id for _, r in chosen if {r.id, *needed[r.id]} & missing]
        chosen = [(kind, r) for kind, r in chosen if r.id not in not_measured]
    structures = [r for _, r in chosen]
    by_id = {p.id: p for p in phases}
    references = [by_id[i] for i in sorted({i for r in structures for i in needed[r.id]})]
    if args.plan:
        for record_id in not_measured:
            print(f"{'not cached':12} {record_id}", file=sys.stderr)
        for kind, record in chosen:
            print(f"{kind:12} {record.id} {reduced(record)} {record.natoms} atoms", file=sys.stderr)
        for record in references:
            print(
                f"{'reference':12} {record.id} {reduced(record)} {record.natoms} atoms",
                file=sys.stderr,
            )
        return

    everything = {r.id: r for r in [*references, *structures]}
    dft, cost = {}, {}
    for record in everything.values():
        calculation = calculate(record.id, record.to_structure(), settings, cache, args.log_dir)
        dft[record.id] = calculation.corrected_energy_per_atom
        cost[record.id] = calculation.result
        print(
            f"{record.id} ({record.natoms} atoms): {dft[record.id]:.4f} eV/atom,"
            f" {calculation.result.cpu_s:.0f} s CPU{' (cached)' if calculation.cached else ''}",
            file=sys.stderr,
            flush=True,
        )
    rows = pd.DataFrame(
        {
            "id": [r.id for r in structures],
            "kind": [kind for kind, _ in chosen],
            "formula": [reduced(r) for r in structures],
            "natoms": [r.natoms for r in structures],
        }
    )
    screened = dict(zip(table["id"].astype(str), table["e_above_hull"]))
    rows["e_hull_screen"] = rows["id"].map(screened)  # the run's verdict (NaN: known phases)
    rows["e_hull_dft"] = rows["id"].map(hull_distances(structures, references, dft))
    ml_seconds = {}
    for potential in args.potentials:
        energies, ml_seconds[potential] = ml_energies(potential, list(everything.values()))
        rows[f"e_hull_{potential}"] = rows["id"].map(
            hull_distances(structures, references, energies)
        )
    rows["dft_cpu_s"] = rows["id"].map(lambda i: round(cost[i].cpu_s, 1))
    rows["dft_wall_s"] = rows["id"].map(lambda i: round(cost[i].wall_s, 1))
    if args.rows:
        rows.to_csv(args.rows, index=False, float_format="%.4f")
    results = [cost[i] for i in everything]
    by_size = sorted(results, key=lambda r: r.natoms)
    print(
        json.dumps(
            {
                "structures": len(structures),
                "not_measured": not_measured,
                "kinds": rows["kind"].value_counts().to_dict(),
                "references": len(references),
                "dft_settings": settings.key(),
                "thresholds": thresholds,
                "potentials": {p: summary(rows, p, thresholds) for p in args.potentials},
                "cost": {
                    "dft_calculations": len(results),
                    "dft_converged": sum(r.converged for r in results),
                    "dft_cpu_s_median": round(statistics.median(r.cpu_s for r in results), 1),
                    "dft_wall_s_median": round(statistics.median(r.wall_s for r in results), 1),
                    "dft_cpu_s_per_atom_median": round(
                        statistics.median(r.cpu_s / r.natoms for r in results), 1
                    ),
                    "dft_cpu_s_largest": [by_size[-1].natoms, round(by_size[-1].cpu_s, 1)],
                    "ml_single_point_s": {p: round(s, 3) for p, s in ml_seconds.items()},
                },
            }
        )
    )


if __name__ == "__main__":
    main()
