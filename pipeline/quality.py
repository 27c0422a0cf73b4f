"""Quality of a generator's samples: validity, uniqueness, novelty, stability, lattice statistics.

Protocols:

* Structural validity (CDVAE, Xie et al. 2022): every interatomic distance, periodic images
  included, at least ``screen.min_distance`` (0.5 Å, CDVAE's cut-off), as the validate stage
  measured it for every sample of every generator (``structurally_valid`` in validation.csv).
* Compositional validity (CDVAE): SMACT charge neutrality with the Pauling electronegativity
  test, one oxidation state per element (``smact_validity``). Mixed-valence compounds such as
  Mn3O4 fail it; the rate with SMACT's mixed-valence expansion is reported beside it.
* Uniqueness: distinct structures among a model's samples that pass validate's element,
  distance and volume checks (``new`` set, True or False, in validation.csv); novelty: those
  that are no known structure (``new`` True). Both answers are validate's: one matcher, one
  index of known structures (:mod:`pipeline.screen.known`).
* Stability: fractions of the samples that the screen's verdict calls ``metastable`` and
  ``synthesizable`` (E_hull within Kim et al.'s (2020) 0.2 and 0.08 eV/atom; thresholds in
  ``config.yaml``, applied once by :mod:`pipeline.screen.criteria`); S.U.N.: relaxed
  structures that are synthesizable and ``new`` (candidates.csv).
* Lattice statistics: the two-sample Kolmogorov-Smirnov statistic of each lattice parameter,
  relaxed samples against the training set.

Rates over new structures, as Kim et al. (2020) counted them: the export deduplicates the
relaxed structures (``duplicate_of``) and names the known structure each relaxed into
(``known_as``: a data-set structure, held-out ones included, or a relaxed hull phase): those
are *rediscovered*, not new; ``fraction_new_*`` are the E_hull fractions over the remaining
new unique relaxed structures (``n_new``, the count of ``new`` rows in candidates.csv).

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure
from scipy.stats import ks_2samp

from pipeline.formats import as_flag, is_blank

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
    uniqueness: float  # unique samples passing validate's checks / generated
    novelty: float  # unique samples that are no known structure / generated
    fraction_e_hull_le_metastable: float
    fraction_e_hull_le_synthesizable: float
    fraction_of_relaxed_e_hull_le_metastable: float
    fraction_of_relaxed_e_hull_le_synthesizable: float
    count_e_hull_le_metastable: int
    count_e_hull_le_synthesizable: int
    n_relaxed_unique: int  # distinct relaxed structures (deduplicated after relaxation)
    n_rediscovered: int  # distinct relaxed structures that are known structures
    n_new: int  # distinct relaxed structures known as none: the denominator of fraction_new_*
    count_new_e_hull_le_metastable: int
    count_new_e_hull_le_synthesizable: int
    fraction_new_e_hull_le_metastable: float  # of n_new, as Kim et al. (2020) counted
    fraction_new_e_hull_le_synthesizable: float
    sun_rate: float  # synthesizable, unique and new / generated
    # verdicts a repeated relaxation (rattled start) contradicts: among the relaxed, and among
    # those counted in count_new_e_hull_le_synthesizable (and so in the S.U.N. rate)
    n_verdict_unstable: int
    count_new_e_hull_le_synthesizable_verdict_unstable: int
    lattice_ks: dict[str, float] = field(default_factory=dict)


def evaluate_model(
    model: str,
    validation: pd.DataFrame,
    candidates: pd.DataFrame,
    relaxed: Sequence[Structure],
    training: Sequence[Structure],
) -> ModelQuality:
    """Quality figures of one model, counted from the screen's own tables.

    Parameters
    ----------
    validation
        The model's rows of validation.csv: every sample it generated.
    candidates
        The model's rows of candidates.csv: every converged relaxation, with the verdict.
    relaxed, training
        Structures for the lattice statistics.
    """
    n = len(validation)
    structural = as_flag(validation["structurally_valid"])
    formulas = [Composition(f).reduced_formula for f in validation["formula"]]
    compositional = np.array([compositionally_valid(f) for f in formulas], dtype=bool)
    mixed = np.array([compositionally_valid(f, mixed_valence=True) for f in formulas], dtype=bool)
    raw_new = validation["new"].map(lambda v: str(v).strip().lower())
    metastable = as_flag(candidates["metastable"])
    synthesizable = as_flag(candidates["synthesizable"])
    new = as_flag(candidates["new"])
    unique = is_blank(candidates["duplicate_of"])
    n_new = int(new.sum())
    unstable = (
        ~as_flag(candidates["verdict_stable"])
        if "verdict_stable" in candidates
        else pd.Series(False, index=candidates.index)
    )

    def rate(count: float, total: int = n) -> float:
        return float(count) / total if total else float("nan")

    return ModelQuality(
        model=model,
        n_generated=n,
        n_relaxed=len(candidates),
        structural_validity=rate(structural.sum()),
        compositional_validity=rate(compositional.sum()),
        compositional_validity_mixed_valence=rate(mixed.sum()),
        validity=rate((structural.to_numpy() & compositional).sum()),
        uniqueness=rate(raw_new.isin(["true", "false"]).sum()),
        novelty=rate((raw_new == "true").sum()),
        fraction_e_hull_le_metastable=rate(metastable.sum()),
        fraction_e_hull_le_synthesizable=rate(synthesizable.sum()),
        fraction_of_relaxed_e_hull_le_metastable=rate(metastable.sum(), len(candidates)),
        fraction_of_relaxed_e_hull_le_synthesizable=rate(synthesizable.sum(), len(candidates)),
        count_e_hull_le_metastable=int(metastable.sum()),
        count_e_hull_le_synthesizable=int(synthesizable.sum()),
        n_relaxed_unique=int(unique.sum()),
        n_rediscovered=int((unique & ~is_blank(candidates["known_as"])).sum()),
        n_new=n_new,
        count_new_e_hull_le_metastable=int((new & metastable).sum()),
        count_new_e_hull_le_synthesizable=int((new & synthesizable).sum()),
        fraction_new_e_hull_le_metastable=rate((new & metastable).sum(), n_new),
        fraction_new_e_hull_le_synthesizable=rate((new & synthesizable).sum(), n_new),
        sun_rate=rate((new & synthesizable).sum()),
        n_verdict_unstable=int(unstable.sum()),
        count_new_e_hull_le_synthesizable_verdict_unstable=int(
            (new & synthesizable & unstable).sum()
        ),
        lattice_ks=ks_statistics(relaxed, training),
    )
