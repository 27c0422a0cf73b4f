"""Settings handed to a stage CLI by its rule: a JSON object of the stage's config section."""

from __future__ import annotations

import json

from pipeline.errors import PipelineInputError


def parse_options(text: str) -> dict:
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineInputError(f"--options is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise PipelineInputError("--options must be a JSON object")
    return options
