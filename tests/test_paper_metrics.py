"""The papers' formulas, checked against hand computations: Kim et al.'s (2020) classifier
loss and the CrysTens consistency metrics of Alverson et al. (2024), Tables 1 and 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import DEFAULT_CAPS

from pipeline.models.ccgan_networks import Classifier, class_loss
from pipeline.represent.pointcloud import PointCloudEncoding


def cross_entropy(logits: np.ndarray, target: int) -> float:
    return float(-(logits[target] - math.log(np.exp(logits).sum())))


def test_ccgan_class_loss_weighs_the_atom_term_as_kim_et_al(mgmno):
    """L_class = 0.3 * sum_el CE(atom counts of el) + CE(composition class), batch means;
    a sample of a composition outside the training set (class -1) adds no class term."""
    torch.manual_seed(0)
    encoding = PointCloudEncoding.for_system(mgmno, DEFAULT_CAPS)
    classifier = Classifier(encoding, n_classes=5, channels=(8, 8, 8)).eval()
    x = torch.rand(3, 1, encoding.n_rows, 3)
    counts = torch.tensor([[1, 2, 4], [2, 2, 6], [0, 3, 3]])
    classes = torch.tensor([4, 0, -1])
    loss = class_loss(classifier, x, counts, classes, lambda_c=0.3)

    with torch.no_grad():
        count_logits, class_logits = classifier(x)
    atom = sum(
        np.mean([cross_entropy(head[b].numpy(), int(counts[b, el])) for b in range(3)])
        for el, head in enumerate(count_logits)
    )
    comp = np.mean([cross_entropy(class_logits[b].numpy(), int(classes[b])) for b in (0, 1)])
    assert loss.item() == pytest.approx(0.3 * atom + comp, rel=1e-5)


def test_crystens_table_1_pools_the_copies_and_table_2_sums_over_pairs(small_records):
    """Hand computation on a real crystal's tensor with three entries disturbed."""
    from pipeline.represent import crystens as ct

    record = small_records[2]
    n = record.natoms
    x = ct.encode(record, space_group=10)
    i = ct.FIRST_SITE
    x[2, 4, i] += 0.8  # one copy of a, first atom, 0.8 Å off
    x[3, ct.HEADER.index("sg"), i + 1] += 2.0  # one copy of the space group, second atom
    x[0, i, i + 1] += 0.05  # the distance channel of the pair (1, 2), one side
    q = ct.reconstruct(x, ("Mg", "Mn", "O"), normalized=False).quality
    copies = 8 * n
    # Table 1: one value off by d among the 8 n pooled copies has variance
    # d^2 (8n - 1) / (8n)^2; b and c are exact, so the mean over a, b, c is a third.
    assert q.var_lattice_lengths == pytest.approx(0.8**2 * (copies - 1) / copies**2 / 3)
    assert q.var_space_group == pytest.approx(2.0**2 * (copies - 1) / copies**2)
    # Table 2: the sum over pair entries is the one disturbed entry; per pair, over n(n-1).
    assert q.distance_mismatch == pytest.approx(0.05, abs=1e-9)
    assert q.distance_mismatch_per_pair == pytest.approx(0.05 / (n * (n - 1)), abs=1e-9)
