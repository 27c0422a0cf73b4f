"""The rates of a run whose relaxation is still going, from its finished relax shards.

A run at the paper's scale (``config/kim_scale.yaml``) spends hours in its relax shards before
the hull table exists. Each shard relaxes every ``screen.shards``-th prescreened structure
(dealt in turn from the prescreen's ranking), so the finished shards are a systematic sample
of all of them. This places their relaxations on the main potential's relaxed hull, as the
``ehull`` stage does (:func:`pipeline.screen.hull_table.hull_table`), and reports per group of
target compositions (``known``, ``new`` of ``results/compositions/targets.csv``; a sample's
target is the middle part of its id, ``<model>-<composition>-<index>``):

* generated, valid (validate's output) and prescreened counts of the whole run;
* the relaxations sampled (finished shards), how many converged, how many within each E_hull
  threshold of the criteria, per relaxation attempted;
* the same per structure generated: the sampled fraction scaled by prescreened / generated,
  the way Kim et al. (2020) count, with a binomial standard error;
* per target composition: sampled, converged, within each threshold.

Without the verdict check's repeats (they run after every shard): ``verdict_stable`` is not in
it. Prints ONE JSON line.

    python bench/shard_rates.py --run /path/to/run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.records import read_records  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.hull_table import hull_table  # noqa: E402
from pipeline.settings import default  # noqa: E402


def target_of(record_id: str) -> str:
    """The target composition in a sample id ``<model>-<composition>-<index>``."""
    return record_id.rsplit("-", 2)[-2]


def shard_sample(run: Path, potential: str) -> tuple[pd.DataFrame, list, int]:
    """The status rows and relaxed records of every finished relax shard, and their count."""
    folder = run / "results" / "screen" / "relax" / potential
    # a shard is finished when its structures are written beside its status table
    finished = [
        (table, table.with_suffix(".json.gz"))
        for table in sorted(folder.glob("shard_*.csv"))
        if table.with_suffix(".json.gz").exists()
    ]
    if not finished:
        raise SystemExit(f"no finished relax shard in {folder}")
    status = pd.concat(
        [pd.read_csv(table, dtype={"id": str}) for table, _ in finished], ignore_index=True
    )
    relaxed = [r for _, structures in finished for r in read_records(structures)]
    return status, relaxed, len(finished)


def rate(count: int, total: int, scale: float = 1.0) -> dict:
    """``count / total`` times ``scale``, with its binomial standard error."""
    if total == 0:
        return {"value": None, "stderr": None}
    p = count / total
    return {
        "value": round(scale * p, 4),
        "stderr": round(scale * math.sqrt(p * (1 - p) / total), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, default=Path("."), help="the run's working folder")
    parser.add_argument("--potential", default=default("screen.potential"))
    parser.add_argument("--model", default=None, help="the sampled model (default: every one)")
    args = parser.parse_args()

    run = args.run
    targets = pd.read_csv(run / "results" / "compositions" / "targets.csv")
    selected = targets[targets["selected"]] if "selected" in targets else targets
    group_of = dict(zip(selected["composition"], selected["status"]))
    samples = sorted((run / "results" / "samples").glob("*/samples.json.gz"))
    if args.model:
        samples = [s for s in samples if s.parent.name == args.model]
    generated = Counter(group_of.get(target_of(r.id)) for s in samples for r in read_records(s))
    valid = Counter(
        group_of.get(target_of(r.id))
        for r in read_records(run / "results" / "screen" / "validated.json.gz")
    )
    prescreened = Counter(
        group_of.get(target_of(r.id))
        for r in read_records(run / "results" / "screen" / "prescreened.json.gz")
    )
    status, relaxed, shards = shard_sample(run, args.potential)
    references = read_records(
        run / "results" / "hull" / args.potential / "references_relaxed.json.gz"
    )
    table = hull_table(relaxed, references, default("screen.oxygen_reference"))
    e_hull = dict(zip(table["id"], table["e_above_hull"]))
    criteria = Criteria.default()
    # (within synthesizable, within metastable) of every sampled relaxation; NaN: not converged
    within_of = {i: criteria.within(e_hull.get(i, math.nan)) for i in status["id"]}

    groups = {}
    for group in sorted(set(generated) - {None}):
        ids = [i for i in status["id"] if group_of.get(target_of(i)) == group]
        within = [within_of[i] for i in ids]
        passes, metastable = sum(w[0] for w in within), sum(w[1] for w in within)
        scale = prescreened[group] / generated[group] if generated[group] else 0.0
        groups[group] = {
            "compositions": int((selected["status"] == group).sum()),
            "generated": generated[group],
            "valid": valid[group],
            "prescreened": prescreened[group],
            "relaxations_sampled": len(ids),
            "converged": sum(i in e_hull for i in ids),
            "within_metastable": metastable,
            "within_synthesizable": passes,
            "per_relaxation": {
                "metastable": rate(metastable, len(ids)),
                "synthesizable": rate(passes, len(ids)),
            },
            "per_generated": {
                "metastable": rate(metastable, len(ids), scale),
                "synthesizable": rate(passes, len(ids), scale),
            },
        }
    by_composition = {}
    for record_id in status["id"]:
        row = by_composition.setdefault(target_of(record_id), [0, 0, 0, 0])
        within = within_of[record_id]
        row[0] += 1
        row[1] += record_id in e_hull
        row[2] += within[1]
        row[3] += within[0]
    print(
        json.dumps(
            {
                "run": str(run),
                "potential": args.potential,
                "thresholds": {
                    "synthesizable": criteria.synthesizable,
                    "metastable": criteria.metastable,
                },
                "finished_shards": shards,
                "relaxations_sampled": len(status),
                "prescreened": sum(prescreened.values()),
                "groups": groups,
                # per target: [sampled, converged, within metastable, within synthesizable]
                "compositions": dict(sorted(by_composition.items())),
            }
        )
    )


if __name__ == "__main__":
    main()
