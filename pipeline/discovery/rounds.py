"""What tells one discovery round from another: its seed and the ids of its samples.

Round 1 is the pipeline's single pass and keeps the run's seed and ids, so a one-round run is
the run without rounds. A later round draws from its own seed and prefixes its samples' ids
with ``r<round>-``, so ids stay unique across rounds (a later candidate that relaxes into a
structure confirmed earlier names that structure's id in ``known_as``).
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import PipelineInputError


def round_seed(seed: int, round_number: int) -> int:
    """The seed of round ``round_number``: the run's ``seed`` for round 1, else one drawn from
    both (a 32-bit integer)."""
    if round_number < 1:
        raise PipelineInputError(f"round {round_number}: rounds count from 1")
    if round_number == 1:
        return seed
    return int(np.random.SeedSequence([seed, round_number]).generate_state(1)[0])


def id_prefix(round_number: int) -> str:
    """The prefix of the ids of round ``round_number``'s samples (none in round 1)."""
    if round_number < 1:
        raise PipelineInputError(f"round {round_number}: rounds count from 1")
    return "" if round_number == 1 else f"r{round_number}-"
