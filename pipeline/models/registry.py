"""Model names (``config["train"]["models"]``) to their :class:`GenerativeModel` classes.

To add a model: implement :class:`pipeline.models.base.GenerativeModel` in a module of
this package and add an entry below. Modules are imported only when their model is asked
for; the Snakefile imports this module (cheaply) to know which encoded file each model
trains on.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import PipelineInputError

if TYPE_CHECKING:
    from pipeline.models.base import GenerativeModel


@dataclass(frozen=True)
class Entry:
    target: str  # "module:Class"
    representation: str  # as the class declares: trains on results/encoded/<representation>.npz


MODELS: dict[str, Entry] = {
    # Kim et al., ACS Cent. Sci. 6, 1412 (2020)
    "ccgan": Entry("pipeline.models.ccgan:CCGAN", "pointcloud"),
    # DiffCSP-style diffusion with an EGNN denoiser (pipeline/models/graph_diffusion.py)
    "graph_diffusion": Entry("pipeline.models.graph_diffusion:GraphDiffusion", "graph"),
    # DiffCSP++-style diffusion of free Wyckoff parameters in a fixed space-group template
    "wyckoff_diffusion": Entry(
        "pipeline.models.wyckoff_diffusion:WyckoffDiffusionModel", "wyckoff"
    ),
    # Alverson et al., Digital Discovery 3, 62 (2024): CrysTens and its three models
    "crystens_ddpm": Entry("pipeline.models.crystens_ddpm:CrysTensDDPM", "crystens"),
    "crystens_gan": Entry("pipeline.models.crystens_gan:CrysTensGAN", "crystens"),
    "crystens_wgan": Entry("pipeline.models.crystens_gan:CrysTensWGAN", "crystens"),
    # Hwang et al. (KIAS 2022): trains on point clouds labelled by rule training_properties
    "cvae": Entry("pipeline.models.cvae:CVAE", "pointcloud_properties"),
    # The baseline: random symmetric crystals (PyXtal, AIRSS-style); learns nothing
    "pyxtal_random": Entry("pipeline.models.pyxtal_random:PyXtalRandom", "pointcloud"),
    # Ionic substitution into the training crystals, ranked by Hautier et al.'s (2011)
    # data-mined probabilities; learns nothing
    "substitution": Entry("pipeline.models.substitution:Substitution", "wyckoff"),
}


def representation(name: str) -> str:
    """The encoded representation model ``name`` trains on, without importing the model."""
    return entry(name).representation


def entry(name: str) -> Entry:
    if name not in MODELS:
        raise PipelineInputError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name]


def model_class(name: str) -> type[GenerativeModel]:
    """The class registered as ``name``; checks that it agrees with its entry."""
    module_name, _, class_name = entry(name).target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if (cls.name, cls.representation) != (name, entry(name).representation):
        raise RuntimeError(
            f"{entry(name).target} declares ({cls.name!r}, {cls.representation!r}),"
            f" registered as ({name!r}, {entry(name).representation!r})"
        )
    return cls


def create(name: str) -> GenerativeModel:
    """A new instance of the model registered as ``name``."""
    return model_class(name)()
