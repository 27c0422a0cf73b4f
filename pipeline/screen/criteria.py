"""The screen's verdict, decided once: which candidates pass, and why the others fail.

Every threshold of the screen lives in ``config.yaml`` (``screen.e_hull``,
``screen.band_gap``, ``screen.pourbaix.max_delta_g``, ``screen.consensus``,
``screen.second_opinion``) and is applied here, by the export stage, to the one table of
every relaxed candidate. The stages before it write measurements only (energies, E_hull,
band gaps, Delta G_pbx, which known structure a candidate is); the stages after it (report,
evaluate, explorer) read the verdict columns of ``candidates.csv`` and the thresholds this
module wrote beside it (``criteria.json``), and decide nothing themselves.

Verdict columns (:meth:`Criteria.apply`):

* ``metastable``, ``synthesizable``: E_hull with the main potential within the two
  thresholds of Kim et al. (2020);
* ``in_band_gap_window``: the band gap (at the window's level of theory) within the window;
* ``verdict_stable``: where the E_hull stage has ``e_above_hull_repeat`` (the candidate relaxed
  again from a start rattled by 1e-4 Å, for those near a threshold), both on the same side of
  both thresholds; a verdict that flips is not robust to the last bits of a number;
* ``agrees``: with a second opinion, its E_hull on the same side of both thresholds as the
  main potential's (NaN on either side: no agreement); informs, never filters;
* ``new``: the relaxed candidate is no known structure (``known_as`` empty) and duplicates
  no earlier candidate (``duplicate_of`` empty);
* ``passes`` and ``failed``: every criterion met, or the ';'-joined names of those missed:
  ``e_above_hull`` (above the synthesizable threshold), ``consensus:<potential>`` (that
  potential's E_hull from its own relaxation above it), ``band_gap``, ``delta_g_pbx``, ``new``. A missing
  measurement fails its criterion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineInputError
from pipeline.formats import REPEAT_E_HULL, consensus_column, is_blank, second_opinion_column
from pipeline.settings import default_settings
from pipeline.settings.typed import ScreenSettings


@dataclass(frozen=True)
class Criteria:
    """The thresholds of the screen's verdict (see the module docstring)."""

    metastable: float  # eV/atom
    synthesizable: float  # eV/atom: the pass threshold
    band_gap_min: float  # eV, at band_gap_level
    band_gap_max: float
    band_gap_level: str  # HSE | PBE
    max_delta_g_pbx: float  # eV/atom
    second_opinion: str | None  # its E_hull decides `agrees`
    consensus: tuple[str, ...]  # potentials whose own E_hull must pass too

    def __post_init__(self) -> None:
        if self.band_gap_level not in ("PBE", "HSE"):
            raise PipelineInputError(
                f"band-gap level must be PBE or HSE, not {self.band_gap_level!r}"
            )
        if not self.band_gap_min <= self.band_gap_max:
            raise PipelineInputError(
                f"band-gap window: min {self.band_gap_min} > max {self.band_gap_max}"
            )
        if not self.synthesizable <= self.metastable:
            raise PipelineInputError(
                f"E_hull thresholds: synthesizable {self.synthesizable} > metastable"
                f" {self.metastable}"
            )

    @classmethod
    def from_settings(cls, screen: ScreenSettings) -> Criteria:
        """The criteria of a run's screen settings (the main potential is no consensus)."""
        return cls(
            metastable=screen.e_hull.metastable,
            synthesizable=screen.e_hull.synthesizable,
            band_gap_min=screen.band_gap.min,
            band_gap_max=screen.band_gap.max,
            band_gap_level=screen.band_gap.level,
            max_delta_g_pbx=screen.pourbaix.max_delta_g,
            second_opinion=screen.second_opinion,
            consensus=tuple(p for p in screen.consensus if p != screen.potential),
        )

    @classmethod
    def default(cls) -> Criteria:
        """The criteria of the packaged ``config.yaml``."""
        return cls.from_settings(default_settings().screen)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Criteria:
        try:
            values = json.loads(text)
            values["consensus"] = tuple(values.get("consensus", ()))
            return cls(**values)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise PipelineInputError(f"criteria: not a JSON object of Criteria ({exc})") from None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Criteria:
        if not path.is_file():
            raise PipelineInputError(f"criteria file not found: {path}")
        return cls.from_json(path.read_text())

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` with the verdict columns added (a copy).

        Needs ``e_above_hull``, ``band_gap``, ``delta_g_pbx``, ``known_as`` and
        ``duplicate_of``; the second opinion's ``e_above_hull_<potential>`` and each consensus
        potential's ``e_above_hull_<potential>_relaxed``.
        """
        needed = ["e_above_hull", "band_gap", "delta_g_pbx", "known_as", "duplicate_of"]
        needed += [consensus_column(p) for p in self.consensus]
        if self.second_opinion:
            needed.append(second_opinion_column(self.second_opinion))
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise PipelineInputError(f"the screen's table lacks the columns {missing}")
        out = table.copy()
        e_hull = out["e_above_hull"].astype(float)
        out["metastable"] = e_hull.le(self.metastable)
        out["synthesizable"] = e_hull.le(self.synthesizable)
        gap = out["band_gap"].astype(float)
        out["in_band_gap_window"] = gap.ge(self.band_gap_min) & gap.le(self.band_gap_max)
        if REPEAT_E_HULL in out.columns:
            # the repeat (a near-threshold candidate relaxed again from a rattled start) on the
            # same side of both thresholds; a candidate far from both was not repeated
            repeat = out[REPEAT_E_HULL].astype(float)
            out["verdict_stable"] = repeat.isna() | self.agreement(e_hull, repeat)
        if self.second_opinion:
            out["agrees"] = self.agreement(
                e_hull, out[second_opinion_column(self.second_opinion)].astype(float)
            )
        out["new"] = is_blank(out["known_as"]) & is_blank(out["duplicate_of"])
        checks = {"e_above_hull": out["synthesizable"]}
        for potential in self.consensus:
            other = out[consensus_column(potential)].astype(float)
            checks[f"consensus:{potential}"] = other.le(self.synthesizable)
        checks["band_gap"] = out["in_band_gap_window"]
        checks["delta_g_pbx"] = out["delta_g_pbx"].astype(float).le(self.max_delta_g_pbx)
        checks["new"] = out["new"]
        passed = pd.DataFrame(checks, index=out.index)
        out["failed"] = [
            ";".join(name for name, ok in row.items() if not ok) for _, row in passed.iterrows()
        ]
        out["passes"] = passed.all(axis=1)
        return out

    def within(self, e_hull: float) -> tuple[bool, bool]:
        """One E_hull (eV/atom; NaN: none) within (synthesizable, metastable)."""
        known = e_hull == e_hull  # NaN is unequal to itself
        return known and e_hull <= self.synthesizable, known and e_hull <= self.metastable

    def near_threshold(self, e_hull: pd.Series, window: float) -> pd.Series:
        """E_hull known and within ``window`` eV/atom of either threshold: the candidates
        whose verdict a repeated relaxation checks (``verdict_stable``)."""
        distance = pd.concat(
            [(e_hull - t).abs() for t in (self.metastable, self.synthesizable)], axis=1
        ).min(axis=1)
        return e_hull.notna() & distance.le(window)

    def agreement(self, e_hull: pd.Series, other: pd.Series) -> pd.Series:
        """Both E_hull known and on the same side of each threshold."""
        agrees = e_hull.notna() & other.notna()
        for threshold in (self.metastable, self.synthesizable):
            agrees &= e_hull.le(threshold) == other.le(threshold)
        return agrees
