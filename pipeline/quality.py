"""Quality of a generator's samples: validity, uniqueness, novelty, stability, lattice statistics.

Protocols:

* Structural validity (CDVAE, Xie et al. 2022): every interatomic distance, periodic images
  included, above 0.5 Å.
* Compositional validity (CDVAE): SMACT charge neutrality with the Pauling electronegativity
  test, one oxidation state per element (``smact_validity``). Mixed-valence compounds such as
  Mn3O4 fail it; the rate with SMACT's mixed-valence expansion is reported beside it.
* Uniqueness: distinct structures (pymatgen ``StructureMatcher``, default tolerances) among a
  model's structurally valid samples as generated; novelty: unique samples matching no
  training structure (:mod:`pipeline.screen.dedup`).
* Stability: fractions of the samples at E_hull <= 0.2 and <= 0.08 eV/atom, Kim et al.'s
  (2020) metastable and synthesizable thresholds; S.U.N.: relaxed structures that are stable
  (at the second threshold), unique and novel.
* Lattice statistics: the two-sample Kolmogorov-Smirnov statistic of each lattice parameter,
  relaxed samples against the training set.

Rates over new structures, as Kim et al. (2020) counted them: the relaxed structures are
deduplicated after relaxation (``StructureMatcher``), and a structure that relaxed into a
training structure (an unrelaxed prototype of the training set, or its relaxed polymorph
on the hull) is *rediscovered*, not new; ``fraction_new_*`` are the E_hull fractions over
the remaining new unique relaxed structures (``n_new``).

The other rates are fractions of the samples generated, so a sample lost at validation or
relaxation, or never relaxed, counts against its model. The stability rates are also given as fractions
of the relaxations that converged (``*_of_relaxed``): Kim et al. relaxed every generated
structure with DFT, while the pipeline relaxes the ``screen.max_candidates`` that its
prescreen ranks best, so the rates per relaxed structure are biased upwards by that choice
and the rates per generated structure downwards by the structures never relaxed.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from scipy.stats import ks_2samp

from pipeline.records import CrystalRecord
from pipeline.screen.dedup import (
    Prepared,
    default_matcher,
    novel_mask,
    prepare,
    unique_indices,
)
from pipeline.settings import default

MIN_DISTANCE = 0.5  # Å, CDVAE's structural-validity cut-off
# The E_hull thresholds (eV/atom) Kim et al. (2020) counted at: their figures below are at these.
KIM2020_THRESHOLDS = (0.2, 0.08)
LATTICE_PARAMETERS = ("a", "b", "c", "alpha", "beta", "gamma")

# Kim et al., ACS Cent. Sci. 6, 1412 (2020): the same screen on their GAN's samples.
KIM2020_REFERENCE = {
    "known_compositions": {
        "compositions": 11,
        "structures": 3300,
        "e_hull_le_0.2": 368,
        "fraction_e_hull_le_0.2": 368 / 3300,
        "e_hull_le_0.08": 35,
        "fraction_e_hull_le_0.08": 35 / 3300,
    },
    "new_compositions": {
        "compositions": 20,
        "structures": 6000,
        "e_hull_le_0.2": 753,
        "fraction_e_hull_le_0.2": 753 / 6000,
        "e_hull_le_0.08": 113,
        "fraction_e_hull_le_0.08": 113 / 6000,
    },
    "source": "S. Kim et al., ACS Cent. Sci. 6, 1412-1420 (2020), doi:10.1021/acscentsci.0c00426",
}


def structurally_valid(structure: Structure, min_distance: float = MIN_DISTANCE) -> bool:
    """CDVAE's test: all interatomic distances (periodic images too) above ``min_distance``."""
    if structure.volume < 0.1:
        return False
    return len(structure.get_neighbor_list(min_distance, exclude_self=True)[0]) == 0


@functools.cache
def compositionally_valid(reduced_formula: str, mixed_valence: bool = False) -> bool:
    """SMACT charge neutrality and Pauling electronegativity test (CDVAE's settings)."""
    from smact.screening import smact_validity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(
            smact_validity(
                Composition(reduced_formula),
                use_pauling_test=True,
                include_alloys=True,
                mixed_valence=mixed_valence,
            )
        )


def lattice_parameters(structures: Iterable[Structure]) -> dict[str, np.ndarray]:
    """a, b, c (Å) and alpha, beta, gamma (degrees) of each structure."""
    values = np.array([[*s.lattice.abc, *s.lattice.angles] for s in structures]).reshape(-1, 6)
    return {name: values[:, i] for i, name in enumerate(LATTICE_PARAMETERS)}


def ks_statistics(
    generated: Sequence[Structure], training: Sequence[Structure]
) -> dict[str, float]:
    """Two-sample K-S statistic of each lattice parameter (NaN without generated structures)."""
    if not generated or not training:
        return dict.fromkeys(LATTICE_PARAMETERS, float("nan"))
    gen, ref = lattice_parameters(generated), lattice_parameters(training)
    return {name: float(ks_2samp(gen[name], ref[name]).statistic) for name in LATTICE_PARAMETERS}


@dataclass
class ModelQuality:
    """Quality figures of one generator's samples (rates are fractions of ``n_generated``)."""

    model: str
    n_generated: int
    n_relaxed: int  # relaxations that converged
    structural_validity: float
    compositional_validity: float
    compositional_validity_mixed_valence: float
    validity: float  # both structural and compositional (CDVAE)
    uniqueness: float  # unique structurally valid samples / generated
    novelty: float  # unique, structurally valid and novel samples / generated
    fraction_e_hull_le_metastable: float
    fraction_e_hull_le_synthesizable: float
    fraction_of_relaxed_e_hull_le_metastable: float
    fraction_of_relaxed_e_hull_le_synthesizable: float
    count_e_hull_le_metastable: int
    count_e_hull_le_synthesizable: int
    n_relaxed_unique: int  # distinct relaxed structures (deduplicated after relaxation)
    n_rediscovered: int  # distinct relaxed structures matching a training structure
    n_new: int  # distinct relaxed structures matching none: the denominator of fraction_new_*
    count_new_e_hull_le_metastable: int
    count_new_e_hull_le_synthesizable: int
    fraction_new_e_hull_le_metastable: float  # of n_new, as Kim et al. (2020) counted
    fraction_new_e_hull_le_synthesizable: float
    sun_rate: float  # stable (<= synthesizable threshold), unique and novel / generated
    lattice_ks: dict[str, float] = field(default_factory=dict)


def evaluate_model(
    model: str,
    samples: Sequence[CrystalRecord],
    relaxed: Sequence[CrystalRecord],
    e_above_hull: Mapping[str, float],
    training: Sequence[Structure],
    training_prepared: Sequence[Prepared] | None = None,
    matcher: StructureMatcher | None = None,
    metastable: float = default("screen.e_hull.metastable"),
    synthesizable: float = default("screen.e_hull.synthesizable"),
    known_relaxed: Sequence[Prepared] = (),
) -> ModelQuality:
    """Quality figures of one model: its raw samples, their relaxed versions, their E_hull.

    ``training_prepared`` (``prepare`` of each training structure) saves the reduction when
    several models are evaluated against the same training set. ``known_relaxed``: the
    training structures as relaxed into the hull, prepared; a relaxed sample matching
    one of them or a training structure is rediscovered, not new."""
    matcher = matcher or default_matcher()
    if training_prepared is None:
        training_prepared = [prepare(t) for t in training]
    n = len(samples)
    raw = [s.to_structure() for s in samples]
    structural = [structurally_valid(s) for s in raw]
    formulas = [s.composition.reduced_formula for s in raw]
    compositional = [compositionally_valid(f) for f in formulas]
    mixed = [compositionally_valid(f, mixed_valence=True) for f in formulas]
    valid_prepared = [prepare(s) for s, ok in zip(raw, structural) if ok]
    unique_generated = unique_indices(valid_prepared, matcher)
    novel_generated = novel_mask(
        [valid_prepared[i] for i in unique_generated], training_prepared, matcher
    )
    relaxed_structures = [r.to_structure() for r in relaxed]
    relaxed_prepared = [prepare(s) for s in relaxed_structures]
    unique = unique_indices(relaxed_prepared, matcher)
    novel = novel_mask(
        [relaxed_prepared[i] for i in unique], [*training_prepared, *known_relaxed], matcher
    )
    unique_novel_ids = {relaxed[i].id for i, is_new in zip(unique, novel) if is_new}
    hull = np.array([e_above_hull.get(r.id, np.nan) for r in relaxed], dtype=float)
    metastable_count = int(np.sum(hull <= metastable))
    synthesizable_count = int(np.sum(hull <= synthesizable))
    new_hull = np.array([e for r, e in zip(relaxed, hull) if r.id in unique_novel_ids])
    new_metastable = int(np.sum(new_hull <= metastable))
    new_synthesizable = int(np.sum(new_hull <= synthesizable))
    sun = sum(1 for r, e in zip(relaxed, hull) if e <= synthesizable and r.id in unique_novel_ids)

    def rate(count: float, total: int = n) -> float:
        return float(count) / total if total else float("nan")

    return ModelQuality(
        model=model,
        n_generated=n,
        n_relaxed=len(relaxed),
        structural_validity=rate(sum(structural)),
        compositional_validity=rate(sum(compositional)),
        compositional_validity_mixed_valence=rate(sum(mixed)),
        validity=rate(sum(a and b for a, b in zip(structural, compositional))),
        uniqueness=rate(len(unique_generated)),
        novelty=rate(int(np.sum(novel_generated))),
        fraction_e_hull_le_metastable=rate(metastable_count),
        fraction_e_hull_le_synthesizable=rate(synthesizable_count),
        fraction_of_relaxed_e_hull_le_metastable=rate(metastable_count, len(relaxed)),
        fraction_of_relaxed_e_hull_le_synthesizable=rate(synthesizable_count, len(relaxed)),
        count_e_hull_le_metastable=metastable_count,
        count_e_hull_le_synthesizable=synthesizable_count,
        n_relaxed_unique=len(unique),
        n_rediscovered=len(unique) - len(unique_novel_ids),
        n_new=len(unique_novel_ids),
        count_new_e_hull_le_metastable=new_metastable,
        count_new_e_hull_le_synthesizable=new_synthesizable,
        fraction_new_e_hull_le_metastable=rate(new_metastable, len(unique_novel_ids)),
        fraction_new_e_hull_le_synthesizable=rate(new_synthesizable, len(unique_novel_ids)),
        sun_rate=rate(sun),
        lattice_ks=ks_statistics(relaxed_structures, training),
    )
