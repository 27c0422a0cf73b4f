"""The universal ML potentials of the screen: one place that builds them.

Three potentials, named as in ``screen.potential``:

* ``chgnet``: CHGNet (weights ship in the ``chgnet`` wheel; checkpoint ``0.3.0``);
* ``sevennet``: SevenNet (weights ship in the ``sevenn`` wheel; ``7net-0`` or
  ``7net-l3i5``, or a path to a checkpoint file);
* ``m3gnet``: by default ``MP-2021.2.8-EFS``, the universal potential of the original
  TensorFlow package as a torch port (:mod:`pipeline.screen.m3gnet`; weights converted
  into ``resources/potentials/``, or a path to another converted ``.npz``); any other
  checkpoint is a matgl model, loaded with ``matgl.load_model`` from a local model folder
  or, by name, from matgl's Hugging Face hub (needs network the first time).

:func:`ase_calculator` gives an ASE calculator (sequential relaxation), :func:`batched_model`
a torch-sim model (batched relaxation: chgnet, sevennet and the M3GNet port),
:func:`describe` the string recorded with every result so an energy can always be traced
to its potential.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from pipeline.errors import PipelineInputError
from pipeline.screen.m3gnet import CHECKPOINT_NAME as M3GNET_PORT
from pipeline.screen.potential_names import POTENTIALS
from pipeline.settings import default_settings

PACKAGES = {"chgnet": "chgnet", "sevennet": "sevenn", "m3gnet": "matgl"}
BATCHED_POTENTIALS = ("chgnet", "sevennet", "m3gnet")


@dataclass(frozen=True)
class PotentialSpec:
    """Which potential, which of its checkpoints, and the torch device to run on."""

    name: str
    checkpoint: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.name not in POTENTIALS:
            raise PipelineInputError(f"unknown potential {self.name!r}; choose from {POTENTIALS}")
        if not self.checkpoint:
            # screen.checkpoints of config.yaml
            checkpoint = default_settings().screen.checkpoints[self.name]
            object.__setattr__(self, "checkpoint", checkpoint)


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_m3gnet_port(spec: PotentialSpec) -> bool:
    """Whether ``spec`` is the torch port of the TensorFlow M3GNet (not a matgl model)."""
    return spec.name == "m3gnet" and (
        spec.checkpoint == M3GNET_PORT or spec.checkpoint.endswith(".npz")
    )


def describe(spec: PotentialSpec) -> str:
    """The potential as recorded in outputs, e.g. ``chgnet 0.4.2 checkpoint 0.3.0``."""
    if is_m3gnet_port(spec):
        return f"m3gnet (torch port of m3gnet 0.2.4) checkpoint {spec.checkpoint}"
    package = PACKAGES[spec.name]
    return f"{spec.name} ({package} {package_version(package)}) checkpoint {spec.checkpoint}"


def package_version(package: str) -> str:
    """The installed version of a Python package, or ``not installed``."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def potential_version(potential: str) -> str:
    """The version of the package that provides ``potential`` (``unknown`` if none does)."""
    package = PACKAGES.get(potential)
    return package_version(package) if package else "unknown"


def ase_calculator(spec: PotentialSpec):
    """An ASE calculator (energy in eV, forces in eV/Å, stress in eV/Å^3)."""
    if spec.name == "chgnet":
        from chgnet.model import CHGNetCalculator

        # "ignore": a cell that blows up leaves atoms without neighbours; the relaxer
        # reports the divergence itself instead of CHGNet warning on every step.
        return CHGNetCalculator(
            _load_chgnet(spec), use_device=spec.device, on_isolated_atoms="ignore"
        )
    if spec.name == "sevennet":
        from sevenn.calculator import SevenNetCalculator

        try:
            return SevenNetCalculator(model=spec.checkpoint, device=spec.device)
        except ValueError as exc:
            raise PipelineInputError(f"sevennet checkpoint {spec.checkpoint!r}: {exc}") from None
    if is_m3gnet_port(spec):
        from pipeline.screen.m3gnet import M3GNetCalculator

        return M3GNetCalculator(_load_m3gnet_port(spec), device=spec.device)
    from matgl.ext.ase import PESCalculator

    return PESCalculator(_load_matgl(spec), stress_unit="eV/A3")


def batched_model(spec: PotentialSpec):
    """A torch-sim ``ModelInterface`` for batched relaxation (chgnet and sevennet)."""
    from pipeline.screen import torchsim_models

    device = torch.device(spec.device)
    if spec.name == "chgnet":
        return torchsim_models.CHGNetModel(_load_chgnet(spec), device=device)
    if spec.name == "sevennet":
        from sevenn.util import load_checkpoint

        try:
            checkpoint = load_checkpoint(spec.checkpoint)
        except ValueError as exc:
            raise PipelineInputError(f"sevennet checkpoint {spec.checkpoint!r}: {exc}") from None
        return torchsim_models.SevenNetModel(checkpoint.build_model(), device=device)
    if is_m3gnet_port(spec):
        return torchsim_models.M3GNetModel(_load_m3gnet_port(spec), device=device)
    raise PipelineInputError(
        f"batched relaxation supports {BATCHED_POTENTIALS} ({M3GNET_PORT} or a converted"
        f" .npz for m3gnet), not the matgl model {spec.checkpoint!r}:"
        " set screen.relax_mode: sequential"
    )


def _load_chgnet(spec: PotentialSpec):
    from chgnet.model import CHGNet

    if Path(spec.checkpoint).is_file():
        return CHGNet.from_file(spec.checkpoint)
    try:
        return CHGNet.load(model_name=spec.checkpoint, use_device=spec.device, verbose=False)
    except ValueError as exc:
        raise PipelineInputError(f"chgnet checkpoint {spec.checkpoint!r}: {exc}") from None


def _load_m3gnet_port(spec: PotentialSpec):
    from pipeline.screen.m3gnet import BUNDLED_CHECKPOINT, load_m3gnet

    return load_m3gnet(BUNDLED_CHECKPOINT if spec.checkpoint == M3GNET_PORT else spec.checkpoint)


def _load_matgl(spec: PotentialSpec):
    import matgl

    try:
        potential = matgl.load_model(spec.checkpoint)
    except (ValueError, RuntimeError, OSError) as exc:
        raise PipelineInputError(
            f"m3gnet: cannot load matgl model {spec.checkpoint!r} ({exc}); pretrained models"
            " come from matgl's Hugging Face hub, which needs network access, or give the"
            " path of a saved matgl model folder"
        ) from None
    return potential.to(spec.device)
