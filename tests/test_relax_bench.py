"""bench/relax_throughput.py: the generated structures it relaxes with ``--samples``."""

from __future__ import annotations

import importlib.util

import pytest
from screen_helpers import overlapping, perturbed

from pipeline.errors import PipelineInputError
from pipeline.records import write_records
from pipeline.screen.validity import ValidityLimits
from pipeline.settings import default_settings


@pytest.fixture(scope="module")
def bench(repo):
    spec = importlib.util.spec_from_file_location(
        "relax_throughput", repo / "bench" / "relax_throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_samples_are_the_valid_ones_shuffled_and_cycled_when_too_few(
    bench, small_records, mgmno, tmp_path
):
    valid = [perturbed(r, f"gen-{k}", seed=k) for k, r in enumerate(small_records[:3])]
    samples = tmp_path / "samples.json.gz"
    write_records([valid[0], overlapping(small_records[3], "gen-overlap"), *valid[1:]], samples)

    picked, distinct = bench.generated_structures(
        samples, 2, 0, mgmno, ValidityLimits.from_settings(default_settings().screen)
    )
    assert distinct == 2 and len({r.id for r in picked}) == 2
    assert {r.id for r in picked} < {r.id for r in valid}

    picked, distinct = bench.generated_structures(
        samples, 7, 0, mgmno, ValidityLimits.from_settings(default_settings().screen)
    )
    assert distinct == 3
    assert sorted(r.id for r in picked[:3]) == ["gen-0", "gen-1", "gen-2"]
    # The repeats are the same structures, in the same order, under their own ids.
    assert [r.id for r in picked[3:6]] == [f"{r.id}~1" for r in picked[:3]]
    assert picked[6].id == f"{picked[0].id}~2"
    assert picked[3].to_structure() == picked[0].to_structure()

    same_seed, _ = bench.generated_structures(
        samples, 7, 0, mgmno, ValidityLimits.from_settings(default_settings().screen)
    )
    assert [r.id for r in same_seed] == [r.id for r in picked]


def test_samples_without_a_valid_structure_are_an_input_error(
    bench, small_records, mgmno, tmp_path
):
    samples = tmp_path / "samples.json.gz"
    write_records([overlapping(small_records[0], "gen-overlap")], samples)
    with pytest.raises(PipelineInputError, match="no structure passes"):
        bench.generated_structures(
            samples, 4, 0, mgmno, ValidityLimits.from_settings(default_settings().screen)
        )
    with pytest.raises(PipelineInputError, match="no such file"):
        bench.generated_structures(
            tmp_path / "missing.json.gz",
            4,
            0,
            mgmno,
            ValidityLimits.from_settings(default_settings().screen),
        )
