"""Errors a user can act on, and the CLI wrapper that prints them as one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class PipelineInputError(Exception):
    """Bad input the user can fix: a malformed file, a missing key, an unknown option.

    The CLIs print its message as a single ``error: ...`` line and exit with status 2,
    instead of a traceback.
    """


def exit_on_input_error(main: Callable[..., int | None]) -> Callable[..., int]:
    """Decorate a CLI ``main`` so a :class:`PipelineInputError` ends it with one line."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except PipelineInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapper
