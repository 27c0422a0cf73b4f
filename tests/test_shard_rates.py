"""bench/shard_rates.py: the rates of a run in progress from its finished relax shards."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.records import read_records, write_records
from pipeline.screen.hull_table import hull_table
from pipeline.settings import default


@pytest.fixture(scope="module")
def shipped_hull(repo):
    return read_records(repo / "resources" / "hull" / "mgmno_kim2020_chgnet-0.3.0.json.gz")


def renamed(record, new_id):
    out = copy.deepcopy(record)
    out.id = new_id
    return out


def test_finished_shards_give_rates_per_relaxation_and_per_generated(repo, tmp_path, shipped_hull):
    table = hull_table(shipped_hull, shipped_hull, default("screen.oxygen_reference"))
    e_hull = dict(zip(table["id"], table["e_above_hull"]))
    by_id = {r.id: r for r in shipped_hull}
    on_hull = by_id["MgMn2O4"]
    between = next(by_id[i] for i, e in e_hull.items() if 0.08 < e <= 0.2)
    above = next(by_id[i] for i, e in e_hull.items() if e > 0.5)
    known, new = "Mg2Mn4O8", "Mg2Mn3O7"

    results = tmp_path / "results"
    (results / "compositions").mkdir(parents=True)
    pd.DataFrame(
        {"composition": [known, new], "status": ["known", "new"], "selected": [True, True]}
    ).to_csv(results / "compositions" / "targets.csv", index=False)
    samples = [
        renamed(on_hull, f"m-{known}-00000"),
        renamed(between, f"m-{known}-00001"),
        renamed(above, f"m-{known}-00002"),
        renamed(above, f"m-{known}-00003"),  # not valid
        renamed(between, f"m-{known}-00004"),
        renamed(on_hull, f"m-{new}-00000"),
        renamed(above, f"m-{new}-00001"),  # not valid
    ]
    write_records(samples, results / "samples" / "m" / "samples.json.gz")
    kept = [samples[k] for k in (0, 1, 2, 4, 5)]
    write_records(kept, results / "screen" / "validated.json.gz")
    write_records(kept, results / "screen" / "prescreened.json.gz")
    write_records(shipped_hull, results / "hull" / "chgnet" / "references_relaxed.json.gz")
    relax = results / "screen" / "relax" / "chgnet"
    relax.mkdir(parents=True)
    # shard 0 finished; the structure far above the hull did not converge
    finished = [samples[k] for k in (0, 1, 2, 5)]
    pd.DataFrame({"id": [r.id for r in finished]}).to_csv(relax / "shard_0.csv", index=False)
    write_records([samples[k] for k in (0, 1, 5)], relax / "shard_0.json.gz")
    # shard 1 still running: a status table without its structures does not count
    pd.DataFrame({"id": [samples[4].id]}).to_csv(relax / "shard_1.csv", index=False)

    run = subprocess.run(
        [sys.executable, str(repo / "bench" / "shard_rates.py"), "--run", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["finished_shards"] == 1 and report["relaxations_sampled"] == 4
    first = report["groups"]["known"]
    assert (first["generated"], first["valid"], first["prescreened"]) == (5, 4, 4)
    assert (first["relaxations_sampled"], first["converged"]) == (3, 2)
    assert (first["within_synthesizable"], first["within_metastable"]) == (1, 2)
    assert first["per_relaxation"]["synthesizable"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert first["per_generated"]["metastable"]["value"] == pytest.approx(2 / 3 * 4 / 5, abs=1e-4)
    second = report["groups"]["new"]
    assert (second["generated"], second["prescreened"], second["within_synthesizable"]) == (2, 1, 1)
    assert second["per_generated"]["synthesizable"] == {"value": 0.5, "stderr": 0.0}
