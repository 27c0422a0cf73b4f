"""Every round's candidates on the final hull, the verdict recomputed.

A round measures its candidates against the hull it started from; a later round can find a
structure below it, which pushes an earlier candidate of that region up (or off the hull). At
the end, every round's relaxed candidates are placed on the **final hull**, the last round's
hull with the last round's confirmed structures added (the hull a next round would start
from), with the main potential and with the second opinion and consensus potentials on their
own final hulls. ``duplicate_of`` is recomputed over all rounds in order (a candidate equal to
an earlier round's is no new structure), and the verdict is applied again by the criteria
module (:mod:`pipeline.screen.criteria`) and the confirmation
(:mod:`pipeline.discovery.confirmation`): ``passes``, ``new``, ``confirmed`` are on the final
hull; ``confirmed_in_round`` says whether the candidate was confirmed when its round ended,
``e_above_hull_round`` what its round measured. ``known_as`` stays what the candidate's round
knew.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from tqdm import tqdm

from pipeline.candidates.ranking import rank_candidates
from pipeline.discovery.confirmation import confirmed
from pipeline.errors import PipelineInputError
from pipeline.records import CrystalRecord
from pipeline.screen.criteria import Criteria
from pipeline.screen.dedup import duplicates, prepare
from pipeline.screen.hull_table import add_consensus, add_second_opinion, hull_table

# Columns the criteria module and the ranking add: recomputed here.
VERDICT_COLUMNS = [
    "rank",
    "metastable",
    "synthesizable",
    "in_band_gap_window",
    "agrees",
    "new",
    "failed",
    "passes",
]


@dataclass(frozen=True)
class RoundScreen:
    """One round's screen, as the final table needs it."""

    round: int
    candidates: pd.DataFrame  # the round's candidates.csv
    relaxed: Sequence[CrystalRecord]  # its main potential's relaxed candidates, in file order
    # per other potential with a hull: its records of the candidates (the second opinion's
    # single points, a consensus potential's relaxations)
    others: Mapping[str, Sequence[CrystalRecord]] = field(default_factory=dict)
    confirmed_ids: frozenset[str] = frozenset()  # confirmed when the round ended


@dataclass(frozen=True)
class FinalHull:
    """The final hull's phases of the main potential and of each other potential."""

    references: Sequence[CrystalRecord]
    others: Mapping[str, Sequence[CrystalRecord]]
    oxygen_reference: str  # screen.oxygen_reference


def final_table(
    rounds: Sequence[RoundScreen], hull: FinalHull, criteria: Criteria, threshold: float
) -> pd.DataFrame:
    """Every round's candidates with E_hull on the final hull and the verdict recomputed
    (ranked: passing first; a ``round`` column; see the module docstring)."""
    if not rounds:
        raise PipelineInputError("no round to put on the final hull")
    others = [criteria.second_opinion] if criteria.second_opinion else []
    others += list(criteria.consensus)
    lacking = [p for p in others if p not in hull.others]
    if lacking:
        raise PipelineInputError(f"no final hull of {lacking}")
    frames = []
    for screen in rounds:
        frame = screen.candidates.drop(columns=VERDICT_COLUMNS, errors="ignore")
        frames.append(frame.assign(round=screen.round))
    table = pd.concat(frames, ignore_index=True)
    if table["id"].duplicated().any():
        raise PipelineInputError("candidate ids repeat across rounds")
    relaxed = [r for screen in rounds for r in screen.relaxed]
    table["e_above_hull_round"] = table["e_above_hull"]
    main = hull_table(relaxed, hull.references, hull.oxygen_reference)
    table["e_above_hull"] = table["id"].map(dict(zip(main["id"], main["e_above_hull"])))

    def records_of(potential: str) -> list[CrystalRecord]:
        return [r for screen in rounds for r in screen.others.get(potential, ())]

    if criteria.second_opinion:
        potential = criteria.second_opinion
        add_second_opinion(
            table, potential, records_of(potential), hull.others[potential], hull.oxygen_reference
        )
    for potential in criteria.consensus:
        add_consensus(
            table, potential, records_of(potential), hull.others[potential], hull.oxygen_reference
        )
    prepared = [prepare(r.to_structure()) for r in tqdm(relaxed, desc="reduce", unit="structure")]
    first_of = dict(zip((r.id for r in relaxed), duplicates(prepared, [r.id for r in relaxed])))
    table["duplicate_of"] = table["id"].map(first_of)
    out = criteria.apply(table)
    out["confirmed"] = confirmed(out, threshold, criteria)
    at_the_time = frozenset().union(*(screen.confirmed_ids for screen in rounds))
    out["confirmed_in_round"] = out["id"].isin(at_the_time)
    return rank_candidates(out)
