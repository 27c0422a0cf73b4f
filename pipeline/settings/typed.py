"""The configuration as one typed object: :class:`Settings`, built from ``config.yaml``.

Each section of ``config.yaml`` is a frozen dataclass with one field per key and no default
of its own: the values come from the file (shipped with the package as
``pipeline/settings/config.yaml``) merged with the user's overlay, so a setting is written
once. :func:`build` turns a validated mapping into the dataclasses, rejecting a key the
dataclass does not name (the schema does too; this catches a dataclass that fell behind).
A model's own hyperparameters (``train.<model>``, ``sample.<model>``) stay mappings here;
each model turns its mapping into its options dataclass (:mod:`pipeline.models.base`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.errors import PipelineInputError

T = TypeVar("T")


@dataclass(frozen=True)
class EncodingSettings:
    max_atoms: Mapping[str, int]  # atom slots per element; missing elements come from the data
    wyckoff_symprec: float  # Å


@dataclass(frozen=True)
class BundledData:
    dataset: str
    references: str


@dataclass(frozen=True)
class MaterialsProjectData:
    require_all_elements: bool
    reference_e_above_hull: float  # eV/atom
    thermo_type: str  # GGA_GGA+U | R2SCAN


@dataclass(frozen=True)
class DataSettings:
    source: str  # bundled | mp | cif_dir
    bundled: BundledData
    cif_dir: str | None
    mp: MaterialsProjectData
    exclude_formulas: tuple[str, ...]


@dataclass(frozen=True)
class AugmentSettings:
    per_composition: int
    operations: tuple[str, ...]


@dataclass(frozen=True)
class CompositionSettings:
    oxidation_states: Mapping[str, tuple[int, int]]
    require_all_elements: bool
    targets: tuple[str, ...]  # explicit formulas; empty: enumerate charge-balanced cells


@dataclass(frozen=True)
class TrainSettings:
    models: tuple[str, ...]
    device: str
    threads: int
    checkpoint_every: int
    options: Mapping[str, Mapping[str, Any]]  # train.<model>: that model's hyperparameters


@dataclass(frozen=True)
class SampleSettings:
    target_set: str  # known | new | all: which rows of targets.csv are sampled
    max_targets: int
    per_composition: int
    options: Mapping[str, Mapping[str, Any]]  # sample.<model>


@dataclass(frozen=True)
class EHullThresholds:
    metastable: float  # eV/atom
    synthesizable: float  # eV/atom: the export's threshold


@dataclass(frozen=True)
class PbeToHse:
    slope: float
    intercept: float


@dataclass(frozen=True)
class BandGapSettings:
    predictor: str  # cgcnn | megnet
    level: str  # HSE | PBE: the level of min and max
    min: float  # eV
    max: float  # eV
    pbe_to_hse: PbeToHse | None


@dataclass(frozen=True)
class PourbaixSettings:
    potential_v: float  # V vs RHE
    ph_range: tuple[float, float]
    ph_step: float
    ion_concentration: float  # mol/L
    ion_source: str  # ase | mp
    max_delta_g: float  # eV/atom


@dataclass(frozen=True)
class HullRelaxSettings:
    fmax: float  # eV/Å
    max_steps: int


@dataclass(frozen=True)
class VerdictCheck:
    window: float  # eV/atom around a threshold: the candidates relaxed again
    rattle: float  # Å


@dataclass(frozen=True)
class ScreenCascade:
    first_potential: str
    first_checkpoint: str
    first_fmax: float  # eV/Å
    first_max_steps: int
    margin: float  # eV/atom above the largest E_hull threshold
    main_max_steps: int


@dataclass(frozen=True)
class ScreenEarlyStop:
    enabled: bool
    checks: tuple[tuple[int, float], ...]  # (FIRE step, eV/atom above the largest threshold)
    symmetrise_margin: float | None  # eV/atom above the largest threshold; None: always


@dataclass(frozen=True)
class ScreenSettings:
    potential: str
    checkpoints: Mapping[str, str]
    relax_mode: str
    fmax: float
    max_steps: int
    symmetrise: bool
    batch_atoms: int | None
    device: str
    shards: int
    max_candidates: int | None
    min_distance: float
    min_volume_per_atom: float
    max_volume_per_atom: float
    hull_polymorphs_per_formula: int
    hull_relax: HullRelaxSettings
    hull_shipped: str | None
    second_opinion: str | None
    consensus: tuple[str, ...]
    oxygen_reference: str  # fitted | molecule
    verdict_check: VerdictCheck
    cascade: ScreenCascade
    early_stop: ScreenEarlyStop
    e_hull: EHullThresholds
    band_gap: BandGapSettings
    pourbaix: PourbaixSettings


@dataclass(frozen=True)
class DftCheckSettings:
    """``dft``: the opt-in GPAW spot check of the top exported candidates."""

    check: bool
    top_n: int
    mode: str  # pw | lcao
    ecut: float
    basis: str
    kpoint_density: float | None
    smearing: float
    max_iterations: int
    shipped: str | None


@dataclass(frozen=True)
class DiscoverySettings:
    """``discovery``: rounds that learn from what the screen confirmed."""

    rounds: int  # 1: one pass (round 1 only)
    confirm_e_hull: float  # eV/atom, main potential: confirmed at or below it
    split: str  # adaptive | fixed: how a round's samples are shared among the sources
    floor: float  # least share of a round's samples per source
    finetune_steps: int  # per round, for a learned source


@dataclass(frozen=True)
class Settings:
    """Every setting of a run, as ``config.yaml`` (plus overlays) gives it."""

    chemsys: str
    seed: int
    encoding: EncodingSettings
    data: DataSettings
    augment: AugmentSettings
    compositions: CompositionSettings
    train: TrainSettings
    sample: SampleSettings
    screen: ScreenSettings
    dft: DftCheckSettings
    discovery: DiscoverySettings

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> Settings:
        """The typed settings of a (validated) configuration mapping."""
        return build(cls, config, "")


# Sections whose keys that are not fields are the hyperparameters of one model each.
MODEL_OPTION_SECTIONS = (TrainSettings, SampleSettings)


def build(cls: type[T], values: Any, where: str) -> T:
    """``values`` as an instance of the dataclass ``cls``, nested sections included."""
    if not isinstance(values, Mapping):
        raise PipelineInputError(f"{where or 'config'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    given = dict(values)
    if cls in MODEL_OPTION_SECTIONS:
        given["options"] = {k: v for k, v in values.items() if k not in fields}
        given = {k: v for k, v in given.items() if k in fields}
    unknown = sorted(set(given) - set(fields))
    missing = sorted(set(fields) - set(given))
    if unknown or missing:
        raise PipelineInputError(
            f"{where or 'config'}: unknown keys {unknown}, missing keys {missing}"
            if unknown and missing
            else f"{where or 'config'}: unknown keys {unknown}"
            if unknown
            else f"{where or 'config'}: missing keys {missing}"
        )
    return cls(**{name: _convert(hints[name], given[name], _join(where, name)) for name in fields})


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(hint: Any, value: Any, where: str) -> Any:
    """A YAML value as the field type ``hint`` wants it (lists as tuples, sections built)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _convert(options[0], value, where)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is tuple:
        args = typing.get_args(hint)
        items = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            items = [Any] * len(value)
        return tuple(_convert(item, v, where) for item, v in zip(items, value))
    if origin is Mapping or hint is Mapping:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(value).items()}
    return value
