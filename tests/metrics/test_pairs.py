"""mlcourse.metrics.pairs: the distances of positive and negative pairs, against a loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcourse.metrics import pair_distances


def pair_distances_by_loop(embeddings, labels, groups):
    positive, negative = [], []
    for i in range(len(embeddings)):
        for j in range(i + 1, len(embeddings)):
            if groups is not None and groups[i] == groups[j]:
                continue
            distance = np.linalg.norm(embeddings[i] - embeddings[j])
            (positive if labels[i] == labels[j] else negative).append(distance)
    return np.array(positive), np.array(negative)


@pytest.mark.parametrize("with_groups", [False, True])
def test_pair_distances_match_a_loop_over_the_pairs(with_groups):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((25, 4))
    labels = rng.choice(["flutes", "brass", "strings"], size=25)
    groups = rng.integers(0, 8, size=25) if with_groups else None
    positive, negative = pair_distances(embeddings, labels, groups=groups)
    expected_positive, expected_negative = pair_distances_by_loop(embeddings, labels, groups)
    np.testing.assert_allclose(positive, expected_positive, rtol=1e-9)
    np.testing.assert_allclose(negative, expected_negative, rtol=1e-9)
    n_pairs = 25 * 24 // 2
    if not with_groups:
        assert len(positive) + len(negative) == n_pairs


def test_pair_distances_take_tensors_and_keep_their_dtype():
    embeddings = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    positive, negative = pair_distances(embeddings, torch.tensor([1, 1, 2]))
    assert positive.dtype == np.float32
    np.testing.assert_allclose(positive, [5.0])
    np.testing.assert_allclose(negative, [1.0, np.sqrt(18.0)], rtol=1e-6)


def test_pair_distances_refuse_labels_of_another_length():
    with pytest.raises(ValueError, match="labels must have shape"):
        pair_distances(np.zeros((3, 2)), [0, 1])
