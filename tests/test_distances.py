"""One set of distances and one rule for a vector without a direction, everywhere in the course."""

from __future__ import annotations

import numpy as np
import torch

from mlcourse import distances, explorer, losses, metrics
from mlcourse.crossmodal import chroma_cosine_distances
from mlcourse.segment import self_similarity


def test_the_losses_the_metrics_and_the_explorer_share_one_tuple_of_distances():
    assert distances.DISTANCES == ("euclidean", "squared", "cosine")
    assert losses.DISTANCES is metrics.DISTANCES is explorer.DISTANCES is distances.DISTANCES


def test_unit_rows_scale_rows_to_length_one_and_keep_a_zero_row_zero():
    rows = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-2.0, 0.0]], requires_grad=True)
    unit = distances.unit_rows(rows)
    np.testing.assert_allclose(unit.detach().numpy(), [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]])
    unit.sum().backward()
    assert torch.isfinite(rows.grad).all()


def test_a_zero_vector_is_at_cosine_distance_one_in_losses_metrics_segments_and_chroma():
    rows = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    assert np.allclose(distances.pairwise_distances(torch.tensor(rows), distance="cosine")[0, 1:].numpy(), 1.0)
    assert np.allclose(metrics.nearest_neighbors(rows, k=2, distance="cosine")[0][0], 1.0)
    assert np.allclose(self_similarity(rows)[0, 1:], 0.0)  # similarity 0: distance 1
    silent = np.zeros((1, 12, 4), dtype=np.float32)
    assert np.allclose(chroma_cosine_distances(silent, np.ones((1, 12, 4), dtype=np.float32)), 1.0)
