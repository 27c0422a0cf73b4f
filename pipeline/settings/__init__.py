"""Settings: ``config.yaml`` (shipped in this package), its schema, its typed object.

* :mod:`pipeline.settings.typed`: :class:`Settings`, one frozen dataclass per section;
* :mod:`pipeline.settings.defaults`: the packaged file's values as the defaults of every stage
  CLI and options dataclass;
* :mod:`pipeline.settings.schema`: the schema check that names every bad key in one line
  (the workflow's and the tests'; the stages do not need jsonschema).
"""

from pipeline.settings.defaults import (
    CONFIG_FILE,
    SCHEMA_FILE,
    default,
    default_config,
    default_settings,
    defaults_from_config,
    lookup,
    parse_options,
    setting_argument,
)
from pipeline.settings.typed import Settings

__all__ = [
    "CONFIG_FILE",
    "SCHEMA_FILE",
    "Settings",
    "default",
    "default_config",
    "default_settings",
    "defaults_from_config",
    "lookup",
    "parse_options",
    "setting_argument",
]
