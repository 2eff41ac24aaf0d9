"""One set of distances and one rule for a vector without a direction, everywhere in the course."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance
import torch

from mlcourse import distances, explorer, losses, metrics
from mlcourse.crossmodal import chroma_cosine_distances
from mlcourse.distances import pairwise_distances
from mlcourse.segment import self_similarity

from pml_reference import DISTANCES, DTYPES, random_batch, value_and_gradient

SCIPY_NAMES = {"euclidean": "euclidean", "squared": "sqeuclidean", "cosine": "cosine"}


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


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("with_y", [False, True])
def test_pairwise_distances_match_scipy(distance, dtype, with_y):
    x, _ = random_batch(0, 30, 3, dtype)
    y = random_batch(1, 20, 3, dtype)[0] if with_y else None
    ours = pairwise_distances(x, y, distance)
    other = x if y is None else y
    expected = scipy.spatial.distance.cdist(x.double().numpy(), other.double().numpy(), SCIPY_NAMES[distance])
    if y is None:
        np.fill_diagonal(expected, 0.0)  # scipy's cosine leaves rounding noise there
    assert ours.dtype == dtype and ours.shape == expected.shape
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours, torch.as_tensor(expected, dtype=dtype), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", ["euclidean", "squared"])
def test_pairwise_distances_match_torch_cdist(distance, dtype):
    x, _ = random_batch(3, 40, 3, dtype)
    expected = torch.cdist(x, x) ** (2 if distance == "squared" else 1)
    expected.fill_diagonal_(0.0)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(pairwise_distances(x, distance=distance), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_diagonal_is_exactly_zero(distance, dtype):
    x = torch.nn.functional.normalize(random_batch(4, 64, 3, dtype)[0], dim=1)
    assert torch.all(pairwise_distances(x, distance=distance).diagonal() == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_gradient_is_finite_at_zero_distance(distance, dtype):
    # Rows 0 and 2 coincide, so the distance between them is zero off the diagonal too.
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [1.0, 2.0, 0.0]], dtype=dtype)
    weights = torch.rand(3, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    for y in (None, x.clone()):
        _, gradient = value_and_gradient(lambda e: (pairwise_distances(e, y, distance) * weights).sum(), x)
        assert torch.isfinite(gradient).all()


@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_gradient_matches_finite_differences(distance):
    x, _ = random_batch(5, 6, 2, torch.float64, n_features=3)
    y, _ = random_batch(6, 4, 2, torch.float64, n_features=3)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distances(a, b, distance), (x, y))
    assert torch.autograd.gradcheck(lambda a: pairwise_distances(a, distance=distance), (x,))


def test_pairwise_distances_keeps_dtype_and_clamps_cosine():
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    distances = pairwise_distances(x, distance="cosine")
    expected = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0], [2.0, 2.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(distances, expected)
