"""Model names (``config["train"]["models"]``) to their :class:`GenerativeModel` classes.

To add a model: implement :class:`pipeline.models.base.GenerativeModel` in a module of
this package and add ``"<name>": "pipeline.models.<module>:<Class>"`` below. Modules are
imported only when their model is asked for.
"""

from __future__ import annotations

import importlib

from pipeline.errors import PipelineInputError
from pipeline.models.base import GenerativeModel

MODELS: dict[str, str] = {
    "ccgan": "pipeline.models.ccgan:CCGAN",  # Kim et al., ACS Cent. Sci. 6, 1412 (2020)
}


def model_class(name: str) -> type[GenerativeModel]:
    """The class registered as ``name``."""
    if name not in MODELS:
        raise PipelineInputError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    module_name, _, class_name = MODELS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls.name != name:
        raise RuntimeError(f"{MODELS[name]} declares name {cls.name!r}, registered as {name!r}")
    return cls


def create(name: str) -> GenerativeModel:
    """A new instance of the model registered as ``name``."""
    return model_class(name)()
