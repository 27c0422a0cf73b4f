"""CGCNN's predictions as labels of training structures, where the data have no DFT values.

With the shipped CGCNN models (:func:`pipeline.screen.predictors.cgcnn_labels`, the
screen's predictor, Materials Project 2017 PBE data): :func:`teacher_band_gaps`, the PBE band
gaps the graph diffusion model's band-gap predictor learns from, once per parent structure;
:func:`predict_properties`, the formation energy and band gap that condition the CVAE, for
every structure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.formats import CONDITION_PROPERTIES
from pipeline.records import CrystalRecord
from pipeline.screen.predictors import cgcnn_labels

# metal_probability is needed for the gap (0 for a metal).
PREDICTED_COLUMNS = (*CONDITION_PROPERTIES, "metal_probability")
UNITS = {"formation_energy_per_atom": "eV/atom", "band_gap_pbe": "eV", "metal_probability": ""}


def predict_properties(records: Sequence[CrystalRecord]) -> pd.DataFrame:
    """CGCNN's formation energy, PBE band gap and metal probability of each record, in order."""
    labels = cgcnn_labels([record.to_structure() for record in records], PREDICTED_COLUMNS)
    rows = [
        {"index": index, "id": record.id, "formula": record.formula, **label}
        for index, (record, label) in enumerate(zip(records, labels))
    ]
    return pd.DataFrame(rows, columns=["index", "id", "formula", *PREDICTED_COLUMNS])


def teacher_band_gaps(records: Sequence[CrystalRecord]) -> np.ndarray:
    """CGCNN's PBE band gap of every record, predicted once per parent structure."""
    first_of_parent: dict[str, CrystalRecord] = {}
    for record in records:
        first_of_parent.setdefault(record.parent or record.id, record)
    labels = cgcnn_labels(
        [record.to_structure() for record in first_of_parent.values()],
        ["band_gap_pbe"],
        desc="CGCNN band gaps",
    )
    gaps = {parent: label["band_gap_pbe"] for parent, label in zip(first_of_parent, labels)}
    return np.array([gaps[r.parent or r.id] for r in records])
