"""The level R@1 must beat, and how tight groups sit: against loops over the items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcourse.metrics import chance_recall_at_1, group_spread, recall_at_k


def test_chance_recall_at_1_is_the_mean_share_of_same_label_candidates():
    rng = np.random.default_rng(0)
    labels, groups = rng.integers(0, 3, 40), rng.integers(0, 8, 40)
    shares = []
    for i in range(40):
        candidates = [j for j in range(40) if groups[j] != groups[i]]
        shares.append(np.mean([labels[j] == labels[i] for j in candidates]))
    assert chance_recall_at_1(labels, groups) == pytest.approx(np.mean(shares))
    without_groups = np.mean([np.mean([labels[j] == labels[i] for j in range(40) if j != i]) for i in range(40)])
    assert chance_recall_at_1(labels) == pytest.approx(without_groups)


def test_random_embeddings_reach_chance_recall_on_average():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 60)
    recalls = [recall_at_k(rng.standard_normal((60, 8)), labels, ks=(1,))[1] for _ in range(300)]
    assert np.mean(recalls) == pytest.approx(chance_recall_at_1(labels), abs=0.01)


def test_group_spread_is_within_over_between_mean_cosine_distance():
    rng = np.random.default_rng(2)
    embeddings, groups = rng.standard_normal((20, 5)), rng.integers(0, 4, 20)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    within, between = [], []
    for i in range(20):
        for j in range(20):
            if i != j:
                (within if groups[i] == groups[j] else between).append(1 - unit[i] @ unit[j])
    assert group_spread(embeddings, groups) == pytest.approx(np.mean(within) / np.mean(between))
    assert group_spread(torch.as_tensor(embeddings, dtype=torch.float32), groups) == pytest.approx(
        np.mean(within) / np.mean(between), rel=1e-5
    )


def test_tight_groups_spread_less_and_bad_input_is_explained():
    centres = np.repeat(np.eye(4), 5, axis=0)
    groups = np.repeat(np.arange(4), 5)
    noisy = centres + 0.05 * np.random.default_rng(3).standard_normal(centres.shape)
    assert group_spread(noisy, groups) < 0.05
    with pytest.raises(ValueError, match="at least two items"):
        group_spread(noisy[:4], np.arange(4))
    with pytest.raises(ValueError, match="entries"):
        group_spread(noisy, groups[:5])
    with pytest.raises(ValueError, match="one length"):
        chance_recall_at_1(groups, groups[:3])
