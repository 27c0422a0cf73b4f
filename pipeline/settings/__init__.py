"""Settings: ``config.yaml`` (shipped in this package), its schema, its typed object.

* :mod:`pipeline.settings.typed`: :class:`Settings`, one frozen dataclass per section;
* :mod:`pipeline.settings.defaults`: the packaged file's values as the defaults of every stage
  CLI and options dataclass;
* :mod:`pipeline.settings.schema`: the schema check that names every bad key in one line.
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
from pipeline.settings.schema import (
    check_config,
    config_problems,
    load_schema,
    restrict_to_system,
)
from pipeline.settings.typed import Settings

__all__ = [
    "CONFIG_FILE",
    "SCHEMA_FILE",
    "Settings",
    "check_config",
    "config_problems",
    "default",
    "default_config",
    "default_settings",
    "defaults_from_config",
    "load_schema",
    "lookup",
    "parse_options",
    "restrict_to_system",
    "setting_argument",
]
