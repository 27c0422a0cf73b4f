"""The DFT spot-check of the ML verdict: GPAW PBE(+U) E_hull of the top exported candidates.

Each candidate is computed at its ML geometry, together with the phases its E_hull needs at
the same level (:func:`pipeline.dft.hull.reference_ids`), every energy corrected as MP2020
corrects GGA(+U) (:mod:`pipeline.dft.corrections`) and cached per structure and setting
(:mod:`pipeline.dft.cache`). The verdict, computed here once: ``passes_dft`` (DFT E_hull at
most the synthesizable threshold) and whether the ML verdict agrees with it at the
synthesizable and at the metastable threshold.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure
from tqdm import tqdm

from pipeline.dft.cache import DftCache, calculation_key
from pipeline.dft.corrections import mp2020_entry
from pipeline.dft.gpaw_calc import DftEnergy, DftSettings, single_point
from pipeline.dft.hull import Phase, e_above_hull, reference_ids
from pipeline.dft.mp_inputs import mp_parameters
from pipeline.dft.verdicts import write_verdicts
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.criteria import Criteria


@dataclass(frozen=True)
class Calculation:
    """One structure's DFT energy, raw and MP2020-corrected (eV/atom), and whether cached."""

    name: str
    structure: Structure
    result: DftEnergy
    corrected_energy_per_atom: float
    cached: bool

    def phase(self) -> Phase:
        return Phase(self.name, self.structure.composition, self.corrected_energy_per_atom)


@dataclass(frozen=True)
class DftVerdict:
    """The DFT check of one candidate (a row of ``dft_check.csv``)."""

    id: str
    formula: str
    natoms: int
    e_above_hull: float  # the ML value, eV/atom
    e_above_hull_dft: float  # NaN where a calculation failed
    dft_decomposition: str
    dft_references: str
    passes_dft: bool
    dft_agrees: bool  # ML and DFT on the same side of the synthesizable threshold
    dft_agrees_metastable: bool  # ... and of the metastable one
    dft_energy_per_atom: float  # MP2020-corrected, eV/atom
    dft_magnetic_moment: float  # μB per cell
    dft_cpu_s: float
    dft_wall_s: float
    dft_cached: bool
    dft_error: str


def calculate(
    name: str,
    structure: Structure,
    settings: DftSettings,
    cache: DftCache,
    log_dir: Path | None = None,
) -> Calculation:
    """The cached or newly computed, MP2020-corrected DFT energy of one structure."""
    parameters = mp_parameters(structure)
    key = calculation_key(structure, parameters, settings)
    result = cache.get(key)
    cached = result is not None
    if result is None:
        log = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log = log_dir / f"{key[:16]}_{structure.composition.reduced_formula}.txt"
        result = single_point(structure, parameters, settings, log=log)
        cache.put(key, name, structure, parameters, settings, result)
    corrected = math.nan
    if result.converged:
        entry = mp2020_entry(structure, result.energy, parameters, name)
        corrected = entry.energy_per_atom
    return Calculation(name, structure, result, corrected, cached)


def check_candidates(
    candidates: Sequence[CrystalRecord],
    ml_e_above_hull: dict[str, float],
    phases: Sequence[CrystalRecord],
    settings: DftSettings,
    cache: DftCache,
    criteria: Criteria,
    log_dir: Path | None = None,
    on_calculation: Callable[[Calculation], None] | None = None,
) -> list[DftVerdict]:
    """DFT verdicts of ``candidates`` against the ML-hull ``phases`` they need.

    ``ml_e_above_hull``: each candidate's ML E_hull (the verdict under test). References are
    computed first (they are shared and mostly cached), then the candidates.
    """
    needed = reference_ids(candidates, phases)
    by_id = {r.id: r for r in phases}
    wanted = sorted({i for ids in needed.values() for i in ids})
    jobs = [(i, by_id[i].to_structure()) for i in wanted]
    jobs += [(c.id, c.to_structure()) for c in candidates]
    done: dict[str, Calculation] = {}
    for name, structure in tqdm(jobs, desc="dft", unit="structure"):
        done[name] = calculate(name, structure, settings, cache, log_dir)
        if on_calculation is not None:
            on_calculation(done[name])
    references = [done[i].phase() for i in wanted if done[i].result.converged]
    failed = {i: done[i].result.error for i in wanted if not done[i].result.converged}
    return [
        verdict(c, ml_e_above_hull[c.id], done[c.id], references, needed[c.id], failed, criteria)
        for c in candidates
    ]


def verdict(
    candidate: CrystalRecord,
    ml_e_hull: float,
    calculation: Calculation,
    references: Sequence[Phase],
    needed: Sequence[str],
    failed: dict[str, str],
    criteria: Criteria,
) -> DftVerdict:
    """One candidate's row: DFT E_hull, its verdict and the agreement with the ML one."""
    result = calculation.result
    errors = [f"{calculation.name}: {result.error}"] if not result.converged else []
    errors += [f"{name}: {failed[name]}" for name in needed if name in failed]
    e_hull, decomposition = math.nan, ""
    if not errors:
        try:
            distance = e_above_hull(calculation.phase(), references)
            e_hull, decomposition = distance.e_above_hull, distance.describe()
        except PipelineInputError as exc:
            errors.append(str(exc))
    ok = math.isfinite(e_hull)

    ml_within, dft_within = criteria.within(ml_e_hull), criteria.within(e_hull)

    return DftVerdict(
        id=candidate.id,
        formula=calculation.structure.composition.reduced_formula,
        natoms=len(calculation.structure),
        e_above_hull=ml_e_hull,
        e_above_hull_dft=e_hull,
        dft_decomposition=decomposition,
        dft_references=" ".join(needed),
        passes_dft=dft_within[0],
        dft_agrees=ok and ml_within[0] == dft_within[0],
        dft_agrees_metastable=ok and ml_within[1] == dft_within[1],
        dft_energy_per_atom=calculation.corrected_energy_per_atom,
        dft_magnetic_moment=result.magnetic_moment,
        dft_cpu_s=result.cpu_s,
        dft_wall_s=result.wall_s,
        dft_cached=calculation.cached,
        dft_error="; ".join(errors),
    )


def top_exported(table: pd.DataFrame, top_n: int) -> list[str]:
    """Ids of the first ``top_n`` candidates that pass (``candidates.csv`` is ranked)."""
    if top_n < 1:
        raise PipelineInputError("dft.top_n must be at least 1")
    passes = table["passes"].astype(str).str.strip().str.lower() == "true"
    return table.loc[passes, "id"].astype(str).head(top_n).tolist()


def write_dft_check(verdicts: Sequence[DftVerdict], path: str | Path) -> Path:
    """Write ``dft_check.csv`` (:mod:`pipeline.dft.verdicts`): one row per :class:`DftVerdict`."""
    return write_verdicts(verdicts, [f.name for f in dataclasses.fields(DftVerdict)], path)
