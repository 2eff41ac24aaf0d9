"""retrieval_accuracies against pytorch-metric-learning's AccuracyCalculator and loops over the ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from scipy.spatial.distance import cdist

from mlcourse.metrics import match_ranks, mean_reciprocal_rank, recall_at_k, retrieval_accuracies

from pml_reference import pml_distance

KEYS = ["precision_at_1", "r_precision", "mean_average_precision_at_r", "mean_reciprocal_rank"]
# (seed, class sizes): singleton classes, pairs, and classes larger than the rest together.
SETS = [
    (0, [1, 1, 2, 2, 3, 5, 8]),
    (1, [1, 4, 4, 4, 4, 4, 30]),
    (2, [2, 3, 7, 11, 13, 1, 1, 1, 17]),
    (3, [6] * 12 + [1] * 5),
]


def random_set(seed, class_sizes, n_features=8, spread=1.0, dtype=np.float32):
    """Overlapping Gaussian classes of the given sizes, shuffled: no two distances are equal."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(class_sizes)), class_sizes))
    centres = spread * rng.standard_normal((len(class_sizes), n_features))
    embeddings = centres[labels] + rng.standard_normal((len(labels), n_features))
    return embeddings.astype(dtype), labels


def pml_accuracies(queries, labels, distance, gallery=None, gallery_labels=None, k=None):
    """AccuracyCalculator with pml's exact search in torch (its default search needs faiss)."""
    include = KEYS if k is None else KEYS[:3]  # with a k, pml's MRR would stop at the k-th place
    calculator = AccuracyCalculator(
        include=include, k=k, knn_func=CustomKNN(pml_distance(distance)), device=torch.device("cpu")
    )
    as_tensor = [None if x is None else torch.as_tensor(x) for x in (queries, labels, gallery, gallery_labels)]
    return calculator.get_accuracy(*as_tensor)


def assert_equal_to_pml(found, expected):
    """Equal to rounding: pml computes 1 / rank in float32, the rest in float64."""
    assert set(expected) <= set(found)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-6 if key == "mean_reciprocal_rank" else 1e-12), key


def accuracies_by_loop(queries, labels, gallery=None, gallery_labels=None, distance="euclidean", groups=None):
    """Each metric from each query's ranking, sorted in full (equal distances by index)."""
    searches_itself = gallery is None
    if searches_itself:
        gallery, gallery_labels = queries, labels

    def left_out(q, g):
        """Without a gallery: the query itself, and the items of its own group."""
        return searches_itself and (g == q or (groups is not None and groups[g] == groups[q]))

    metric = {"squared": "sqeuclidean"}.get(distance, distance)
    distances = cdist(np.asarray(queries, np.float64), np.asarray(gallery, np.float64), metric=metric)
    per_query = {key: [] for key in KEYS}
    for q in range(len(queries)):
        candidates = [g for g in range(len(gallery)) if not left_out(q, g)]
        ranking = sorted(candidates, key=lambda g: (distances[q, g], g))
        relevant = [gallery_labels[g] == labels[q] for g in ranking]
        r = sum(relevant)
        if r == 0:
            continue
        per_query["precision_at_1"].append(float(relevant[0]))
        per_query["r_precision"].append(sum(relevant[:r]) / r)
        found, precision_sum = 0, 0.0
        for place, is_relevant in enumerate(relevant[:r], start=1):
            if is_relevant:
                found += 1
                precision_sum += found / place
        per_query["mean_average_precision_at_r"].append(precision_sum / r)
        per_query["mean_reciprocal_rank"].append(1 / (relevant.index(True) + 1))
    return {key: float(np.mean(values)) for key, values in per_query.items()}


@pytest.mark.parametrize("distance", ["euclidean", "squared", "cosine"])
@pytest.mark.parametrize("seed, class_sizes", SETS)
def test_equal_to_pml_with_the_queries_as_their_own_gallery(seed, class_sizes, distance):
    X, y = random_set(seed, class_sizes)
    found = retrieval_accuracies(X, y, distance=distance)
    assert list(found) == KEYS
    # pml leaves each query out of its own neighbours and skips the singleton classes' queries.
    assert_equal_to_pml(found, pml_accuracies(X, y, distance))
    assert found == pytest.approx(accuracies_by_loop(X, y, distance=distance), rel=1e-12)
    assert all(0 < value < 1 for value in found.values())
    # R-precision and MAP@R need only the R nearest: pml's k="max_bin_count" is enough for them.
    assert_equal_to_pml(found, pml_accuracies(X, y, distance, k="max_bin_count"))


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed, class_sizes", SETS)
def test_equal_to_pml_with_a_separate_gallery(seed, class_sizes, distance):
    X, y = random_set(seed, class_sizes)
    # Some query classes are missing from the gallery: those queries are skipped.
    gallery, gallery_labels = random_set(seed + 10, [3, 1, 9, 4, 2, 6])
    found = retrieval_accuracies(X, y, gallery=gallery, gallery_labels=gallery_labels, distance=distance)
    assert_equal_to_pml(found, pml_accuracies(X, y, distance, gallery, gallery_labels))
    assert found == pytest.approx(accuracies_by_loop(X, y, gallery, gallery_labels, distance), rel=1e-12)


@pytest.mark.parametrize("block_size", [1, 7, None])
def test_groups_and_block_size_against_the_loop(block_size):
    X, y = random_set(4, [1, 3, 5, 8, 12, 2], dtype=np.float64)
    groups = np.random.default_rng(4).integers(0, 9, len(y))
    expected = accuracies_by_loop(X, y, distance="cosine", groups=groups)
    found = retrieval_accuracies(X, y, distance="cosine", groups=groups, block_size=block_size)
    assert found == pytest.approx(expected, rel=1e-12)
    without_groups = retrieval_accuracies(X, y, distance="cosine", block_size=block_size)
    assert without_groups == pytest.approx(accuracies_by_loop(X, y, distance="cosine"), rel=1e-12)
    assert found != without_groups


def test_equal_distances_are_ordered_by_gallery_index():
    # Points on a coarse integer grid: many queries have several items at the same distance.
    rng = np.random.default_rng(5)
    X, y = rng.integers(0, 3, (80, 2)).astype(np.float64), rng.integers(0, 4, 80)
    expected = accuracies_by_loop(X, y)
    assert retrieval_accuracies(X, y, block_size=9) == pytest.approx(expected, rel=1e-12)
    gallery, gallery_labels = rng.integers(0, 3, (30, 2)).astype(np.float64), rng.integers(0, 4, 30)
    found = retrieval_accuracies(X, y, gallery=gallery, gallery_labels=gallery_labels)
    assert found == pytest.approx(accuracies_by_loop(X, y, gallery, gallery_labels), rel=1e-12)


def test_precision_at_1_is_recall_at_1_without_the_queries_that_have_no_relevant_item():
    X, y = random_set(6, [1, 1, 1, 4, 6, 9, 2])
    found = retrieval_accuracies(X, y)
    n_scored = int(sum(np.sum(y == label) > 1 for label in y))
    # recall_at_k counts the 3 singleton queries as misses, pml and retrieval_accuracies skip them.
    assert n_scored == len(y) - 3
    assert recall_at_k(X, y, ks=1)[1] * len(y) == pytest.approx(found["precision_at_1"] * n_scored)
    assert found["precision_at_1"] <= found["mean_reciprocal_rank"]


def test_with_one_partner_per_query_mrr_is_that_of_match_ranks():
    # Query i's only relevant item is gallery item i; the other 20 gallery items are distractors.
    queries, _ = random_set(7, [1] * 30)
    gallery = queries + 0.8 * np.random.default_rng(7).standard_normal(queries.shape).astype(np.float32)
    gallery = np.concatenate([gallery, random_set(8, [1] * 20)[0]])
    found = retrieval_accuracies(
        queries, np.arange(30), gallery=gallery, gallery_labels=np.arange(50), distance="cosine"
    )
    ranks = match_ranks(queries, gallery, distance="cosine")
    assert found["mean_reciprocal_rank"] == pytest.approx(mean_reciprocal_rank(ranks))
    assert found["precision_at_1"] == pytest.approx(np.mean(ranks == 1))
    # With R = 1, R-precision, MAP@R and precision at 1 coincide.
    assert found["r_precision"] == found["mean_average_precision_at_r"] == found["precision_at_1"]


def test_string_labels_and_tensors():
    X, y = random_set(9, [3, 4, 5])
    names = np.array(["jazz", "rock", "folk"])[y]
    expected = retrieval_accuracies(X, y)
    assert retrieval_accuracies(torch.as_tensor(X), names.tolist()) == pytest.approx(expected)


def test_bad_arguments_are_explained():
    X, y = random_set(10, [2, 3])
    with pytest.raises(ValueError, match="gallery_labels was given without a gallery"):
        retrieval_accuracies(X, y, gallery_labels=y)
    with pytest.raises(ValueError, match="A gallery needs its labels"):
        retrieval_accuracies(X, y, gallery=X)
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        retrieval_accuracies(X, y[:4])
    with pytest.raises(ValueError, match="distance must be one of"):
        retrieval_accuracies(X, y, distance="manhattan")
    with pytest.raises(ValueError, match="same dimension"):
        retrieval_accuracies(X, y, gallery=X[:, :3], gallery_labels=y)
    with pytest.raises(ValueError, match="gallery_groups was given without groups"):
        retrieval_accuracies(X, y, gallery=X, gallery_labels=y, gallery_groups=y)
    with pytest.raises(ValueError, match="NaN"):
        retrieval_accuracies(np.where(np.eye(5, 8) > 0, np.nan, X), y)
    with pytest.raises(ValueError, match="No query has a relevant item"):
        retrieval_accuracies(X, np.arange(5))
    with pytest.raises(ValueError, match="No query has a relevant item"):
        retrieval_accuracies(X, y, gallery=X, gallery_labels=y + 2)
    with pytest.raises(ValueError, match="No query has a relevant item"):
        retrieval_accuracies(X, y, groups=y)  # every relevant item is in the query's own group
