"""Target compositions: enumeration within the caps, charge balance, status and selection,
the stage's table read back for sampling, and the config key that chooses the target set."""

from __future__ import annotations

import copy
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import DEFAULT_CAPS, REPO

from pipeline.datasets.summary import composition_summary
from pipeline.errors import PipelineInputError
from pipeline.models.base import read_targets
from pipeline.settings.schema import check_config
from pipeline.target_compositions import (
    OxidationRange,
    complete_oxidation_states,
    default_oxidation_range,
    enumerate_compositions,
    explicit_target_counts,
    is_charge_balanced,
    parse_oxidation_states,
    select_targets,
    target_table,
)

MGMNO_STATES = parse_oxidation_states(["Mg=2", "Mn=2:4", "O=-2"])
ELEMENTS = ("Mg", "Mn", "O")


@pytest.mark.parametrize(
    "counts, balanced",
    [
        ((1, 1, 2), True),  # MgMnO2: Mn(II)
        ((1, 2, 4), True),  # MgMn2O4 spinel: Mn(III)
        ((1, 1, 3), True),  # MgMnO3: Mn(IV)
        ((0, 3, 4), True),  # Mn3O4: Mn(II)/Mn(III) mixed
        ((1, 1, 1), False),  # at least +4 against -2
        ((1, 1, 4), False),  # at most +6 against -8
        ((2, 0, 1), False),
    ],
)
def test_charge_balance_with_mixed_valence(counts, balanced):
    ranges = [MGMNO_STATES[el] for el in ELEMENTS]
    assert is_charge_balanced(counts, ranges) is balanced


def test_enumeration_stays_within_caps_and_finds_every_training_composition(bundled_records, mgmno):
    compositions = enumerate_compositions(ELEMENTS, (8, 8, 12), MGMNO_STATES)
    assert len(set(compositions)) == len(compositions)
    assert all(1 <= n <= cap for counts in compositions for n, cap in zip(counts, (8, 8, 12)))
    # Kim et al.'s structures are all charge balanced within these ranges.
    summary = composition_summary(bundled_records, mgmno)
    data_counts = set(map(tuple, summary[["n_Mg", "n_Mn", "n_O"]].to_numpy().tolist()))
    assert data_counts <= set(compositions)
    with_binaries = enumerate_compositions(
        ELEMENTS, (8, 8, 12), MGMNO_STATES, require_all_elements=False
    )
    assert (0, 3, 4) in with_binaries and (0, 3, 4) not in compositions


def test_status_and_selection(bundled_records, mgmno):
    summary = composition_summary(bundled_records, mgmno)
    training = {(4, 4, 8): 50, (1, 2, 4): 50}
    compositions = [(4, 4, 8), (1, 2, 4), (2, 4, 8), (3, 3, 7)]
    table = target_table(ELEMENTS, compositions, training, summary)
    status = dict(zip(table["composition"], table["status"]))
    assert status == {
        "Mg4Mn4O8": "known",
        "Mg1Mn2O4": "known",
        "Mg2Mn4O8": "new_cell" if "MgMn2O4" in set(summary["reduced_formula"]) else "new",
        "Mg3Mn3O7": "new",
    }

    known = select_targets(table, "known", max_targets=1)
    assert known.loc[known["selected"], "composition"].tolist() == ["Mg4Mn4O8"]  # most data
    new = select_targets(table, "new", max_targets=0)
    assert new.loc[new["selected"], "composition"].tolist() == ["Mg3Mn3O7"]
    assert select_targets(table, "all", max_targets=3)["selected"].sum() == 3


def test_explicit_targets_reduced_formulas_mean_every_cell_within_the_caps():
    caps = (8, 8, 12)
    counts = explicit_target_counts(["MgMn2O4", "Mg2Mn2O6", "MnO2"], ELEMENTS, caps)
    # MgMn2O4 up to the O cap of 12 (Z = 3); Mg2Mn2O6 is a cell, not reduced: only that cell;
    # MnO2 is a binary, asked for explicitly although compositions need every element.
    assert counts == [
        (1, 2, 4),
        (2, 4, 8),
        (3, 6, 12),
        (2, 2, 6),
        *[(0, k, 2 * k) for k in range(1, 7)],
    ]


@pytest.mark.parametrize(
    "target, message",
    [
        ("BaTiO3", "outside the system"),
        ("Mg9MnO10", "Mg 9 > 8"),
        ("MgMnO2.5", "whole numbers"),
    ],
)
def test_bad_explicit_targets_are_named(target, message):
    with pytest.raises(PipelineInputError, match=message):
        explicit_target_counts([target], ELEMENTS, (8, 8, 12))


def test_explicit_targets_select_exactly_those_rows(bundled_records, mgmno):
    summary = composition_summary(bundled_records, mgmno)
    table = target_table(ELEMENTS, [(4, 4, 8), (1, 2, 4), (3, 3, 7)], {(4, 4, 8): 5}, summary)
    chosen = select_targets(table, "known", max_targets=1, explicit=["Mg1Mn2O4", "Mg3Mn3O7"])
    assert sorted(chosen.loc[chosen["selected"], "composition"]) == ["Mg1Mn2O4", "Mg3Mn3O7"]


def test_missing_oxidation_states_default_to_the_common_ones():
    ranges, notes = complete_oxidation_states(("Ba", "Co", "O"), {"O": OxidationRange(-2, -2)})
    assert ranges == {
        "Ba": OxidationRange(2, 2),
        "Co": OxidationRange(2, 3),
        "O": OxidationRange(-2, -2),
    }
    assert notes == [
        "oxidation states of Ba not configured: 2..2 from pymatgen common oxidation states",
        "oxidation states of Co not configured: 2..3 from pymatgen common oxidation states",
    ]
    # pymatgen lists none for argon; neither does SMACT.
    with pytest.raises(PipelineInputError, match="oxidation_states.Ar"):
        default_oxidation_range("Ar")


def test_bad_oxidation_states_are_input_errors():
    with pytest.raises(PipelineInputError):
        OxidationRange.parse("4:2")
    with pytest.raises(PipelineInputError):
        parse_oxidation_states(["Mn"])
    with pytest.raises(PipelineInputError, match="no oxidation-state range"):
        enumerate_compositions(ELEMENTS, (2, 2, 2), {"Mg": OxidationRange(2, 2)})


@pytest.mark.parametrize("extra", [[], ["--targets", "MgMnO3", "Mn3O4"]])
def test_cli_writes_the_targets_table(tmp_path, bundled_records, mgmno, extra):
    from pipeline.formats import save_encoded
    from pipeline.represent.pointcloud import PointCloudEncoding
    from pipeline.represent.pointcloud_dataset import pointcloud_dataset

    records = bundled_records[:200]
    save_encoded(
        pointcloud_dataset(records, PointCloudEncoding.for_system(mgmno, DEFAULT_CAPS)),
        tmp_path / "pointcloud.npz",
    )
    composition_summary(records, mgmno).to_csv(tmp_path / "summary.csv", index=False)
    out = tmp_path / "targets.csv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.stages.compositions",
            "--encoded",
            str(tmp_path / "pointcloud.npz"),
            "--summary",
            str(tmp_path / "summary.csv"),
            "--oxidation-states",
            "Mg=2",
            "Mn=2:4",
            "O=-2",
            "--target-set",
            "known",
            "--max-targets",
            "3",
            *extra,
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out)
    # What the sample stage reads: the selected rows, in order, with their atom counts.
    targets = read_targets(out)
    assert [t.label for t in targets] == list(table.loc[table["selected"], "composition"])
    for target, (_, row) in zip(targets, table[table["selected"]].iterrows()):
        assert dict(target.counts) == {el: row[f"n_{el}"] for el in ("Mg", "Mn", "O")}
    if extra:
        # Each cell of MgMnO3 within the caps (O 12: Z <= 4) and Mn3O4 in two cell sizes
        # (8, 8, 12 caps: Mn6O8 is the largest), charge balance not asked.
        selected = set(table.loc[table["selected"], "composition"])
        assert selected == {"Mg1Mn1O3", "Mg2Mn2O6", "Mg3Mn3O9", "Mg4Mn4O12", "Mn3O4", "Mn6O8"}
        return
    assert table["selected"].sum() == 3
    assert set(table.loc[table["selected"], "status"]) == {"known"}
    assert (table["n_Mg"] * 2 - table["n_O"] * 2 + table["n_Mn"] * 4 >= 0).all()


def test_the_old_name_of_the_target_set_is_rejected_with_a_hint():
    """``sample.targets`` (known | new | all) became ``sample.target_set``, beside
    ``compositions.targets`` (explicit formulas): an old config fails, naming the new key."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert config["sample"]["target_set"] == "known"
    check_config(config, REPO / "schemas" / "config.schema.yaml")
    old = copy.deepcopy(config)
    old["sample"]["targets"] = old["sample"].pop("target_set")
    with pytest.raises(PipelineInputError) as error:
        check_config(old, REPO / "schemas" / "config.schema.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert "sample.targets: 'renamed to sample.target_set'" in message
    assert "'target_set' is a required property" in message
