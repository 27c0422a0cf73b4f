"""The verdict check's repeat, sharded as the relaxation is: the shards, gathered, hold the same
repeats as one job does."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from screen_helpers import perturbed

from pipeline.records import read_records, write_records
from pipeline.stages import relax as relax_stage

SHIPPED_HULL = "resources/hull/mgmno_kim2020_chgnet-0.3.0.json.gz"
# three rock salts and a spinel near the hull: within 0.1 eV/atom of the 0.08 threshold
FORMULAS = ("MgO", "MnO", "MgMn2O4")


def run(argv: list[str], capsys) -> dict:
    assert relax_stage.main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_sharded_repeats_gather_to_the_repeats_of_one_job(
    repo, reference_records, tmp_path, capsys
):
    table = {r.id: r for r in reference_records}
    starts = [perturbed(table[k], f"start-{k}", seed=n) for n, k in enumerate(FORMULAS)]
    write_records(starts, tmp_path / "starts.json.gz")
    common = ["--threads", "1", "--max-steps", "60", "--input", str(tmp_path / "starts.json.gz")]
    run(["shard", *common, "--shard", "0", "--shards", "1", "--out", str(tmp_path / "relaxed.json.gz"),
         "--out-status", str(tmp_path / "relaxed.csv")], capsys)  # fmt: skip
    repeat = ["repeat", *common, "--relaxed", str(tmp_path / "relaxed.json.gz")]
    repeat += ["--references-relaxed", str(repo / SHIPPED_HULL)]

    def repeat_shard(shard: int, shards: int) -> dict:
        out = ["--out", str(tmp_path / f"repeat_{shard}_of_{shards}.json.gz")]
        out += ["--out-status", str(tmp_path / f"repeat_{shard}_of_{shards}.csv")]
        return run([*repeat, "--shard", str(shard), "--shards", str(shards), *out], capsys)

    one = repeat_shard(0, 1)
    halves = [repeat_shard(0, 2), repeat_shard(1, 2)]
    assert one["near_threshold"] == one["repeated"] >= 2
    assert [half["repeated"] for half in halves] == [2, one["repeated"] - 2]
    run(["gather", "--shard-files", *(str(tmp_path / f"repeat_{k}_of_2.json.gz") for k in (0, 1)),
         "--status-files", *(str(tmp_path / f"repeat_{k}_of_2.csv") for k in (0, 1)),
         "--out", str(tmp_path / "gathered.json.gz"), "--out-status", str(tmp_path / "gathered.csv")],
        capsys)  # fmt: skip

    alone = pd.read_csv(tmp_path / "repeat_0_of_1.csv").sort_values("id").reset_index(drop=True)
    gathered = pd.read_csv(tmp_path / "gathered.csv")
    assert gathered["id"].tolist() == alone["id"].tolist()
    assert gathered["steps"].tolist() == alone["steps"].tolist()
    # a repeat does not depend on its batch partners, to float32 summation order
    assert gathered["energy_per_atom"].tolist() == pytest.approx(
        alone["energy_per_atom"].tolist(), abs=1e-5
    )
    assert [r.id for r in read_records(tmp_path / "gathered.json.gz")] == sorted(alone["id"])

    wrong = [*repeat, "--shard", "2", "--shards", "2", "--out", "x", "--out-status", "y"]
    assert relax_stage.main(wrong) == 2
    assert "--shard must be in 0..1" in capsys.readouterr().err
