"""mlcourse.metrics against brute force, scikit-learn and pytorch-metric-learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from scipy.spatial.distance import cdist
from sklearn.metrics import average_precision_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from mlcourse.metrics import (
    BLOCK_BYTES,
    knn_accuracy,
    linear_readout_r2,
    mean_average_precision,
    nearest_neighbors,
    neighbors,
    recall_at_k,
    triplet_accuracy,
)

BLOCK_SIZES = [1, 7, 64, None]
# pml's exact Euclidean search in torch; its default search needs faiss, which the tests avoid.
EXACT_KNN = CustomKNN(LpDistance(normalize_embeddings=False))


def labelled_blobs(n_items=120, n_features=8, n_classes=6, spread=1.5, seed=0, dtype=np.float64):
    """Overlapping classes, so that every metric lands strictly between 0 and 1.

    Random continuous data has no two equal distances, so neighbour orders are unambiguous.
    """
    rng = np.random.default_rng(seed)
    centres = spread * rng.standard_normal((n_classes, n_features))
    labels = rng.integers(0, n_classes, n_items)
    X = centres[labels] + rng.standard_normal((n_items, n_features))
    return X.astype(dtype), labels


def brute_force_neighbors(queries, gallery, k, metric="euclidean", exclude_self=False):
    """(distances, indices) from the full distance matrix, ties by index (stable argsort)."""
    distances = cdist(queries, gallery, metric=metric)
    if exclude_self:
        np.fill_diagonal(distances, np.inf)
    indices = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, indices, axis=1), indices


def distance_matrix(queries, gallery, metric, exclude_self):
    distances = cdist(queries, gallery, metric=metric)
    if exclude_self:
        np.fill_diagonal(distances, np.inf)
    return distances


# --------------------------------------------------------------------------------------------
# nearest_neighbors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_nearest_neighbors_of_the_embeddings_themselves_match_brute_force(block_size, distance):
    X, _ = labelled_blobs()
    distances, indices = nearest_neighbors(X, k=5, distance=distance, block_size=block_size)
    expected_distances, expected_indices = brute_force_neighbors(X, X, 5, distance, True)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6, atol=1e-6)
    assert indices.dtype == np.int64 and distances.dtype == np.float64


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_nearest_neighbors_in_a_gallery_match_brute_force(block_size, distance):
    gallery, _ = labelled_blobs(n_items=90, seed=1)
    queries, _ = labelled_blobs(n_items=23, seed=2)
    distances, indices = nearest_neighbors(queries, gallery, k=90, distance=distance, block_size=block_size)
    expected_distances, expected_indices = brute_force_neighbors(queries, gallery, 90, distance)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6, atol=1e-6)


def test_nearest_neighbors_match_scikit_learn():
    X, _ = labelled_blobs(n_items=150)
    queries = X[:40] + 0.1
    search = NearestNeighbors(n_neighbors=6).fit(X)
    # kneighbors() without queries leaves each point out of its own neighbours, as we do.
    expected_distances, expected_indices = search.kneighbors()
    distances, indices = nearest_neighbors(X, k=6)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6)
    expected_distances, expected_indices = search.kneighbors(queries)
    distances, indices = nearest_neighbors(queries, X, k=6)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-6)


def test_float32_neighbors_match_float64_brute_force():
    X, _ = labelled_blobs(n_items=300, n_features=32, dtype=np.float32)
    distances, indices = nearest_neighbors(X, k=4, block_size=50)
    expected_distances, expected_indices = brute_force_neighbors(
        X.astype(np.float64), X.astype(np.float64), 4, exclude_self=True
    )
    assert distances.dtype == np.float32
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4)


def test_equal_distances_are_ordered_by_gallery_index():
    gallery = np.array([[1.0], [-1.0], [1.0], [-1.0], [3.0]])
    for k, expected in [(1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (5, [0, 1, 2, 3, 4])]:
        _, indices = nearest_neighbors(np.zeros((1, 1)), gallery, k=k)
        np.testing.assert_array_equal(indices[0], expected)
    # 40 identical points: every one is at distance 0, so the nearest are the first indices.
    _, indices = nearest_neighbors(np.ones((40, 3)), k=3, block_size=9)
    np.testing.assert_array_equal(indices[0], [1, 2, 3])
    np.testing.assert_array_equal(indices[2], [0, 1, 3])
    np.testing.assert_array_equal(indices[39], [0, 1, 2])


def test_exclude_self_with_a_gallery_leaves_out_the_matching_gallery_row():
    X, _ = labelled_blobs()
    _, indices = nearest_neighbors(X[:30], X, k=3, exclude_self=True)
    np.testing.assert_array_equal(indices, nearest_neighbors(X, k=3)[1][:30])
    _, indices = nearest_neighbors(X, k=1, exclude_self=False)
    np.testing.assert_array_equal(indices[:, 0], np.arange(len(X)))


# --------------------------------------------------------------------------------------------
# recall_at_k
# --------------------------------------------------------------------------------------------


def recall_by_loop(queries, query_labels, gallery, gallery_labels, ks, metric, exclude_self):
    distances = distance_matrix(queries, gallery, metric, exclude_self)
    recalls = {}
    for k in ks:
        hits = [
            query_labels[q] in gallery_labels[np.argsort(distances[q], kind="stable")[:k]] for q in range(len(queries))
        ]
        recalls[k] = float(np.mean(hits))
    return recalls


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_recall_at_k_matches_a_loop(distance):
    X, y = labelled_blobs()
    ks = (1, 2, 4, 8, 16)
    expected = recall_by_loop(X, y, X, y, ks, distance, exclude_self=True)
    assert recall_at_k(X, y, ks=ks, distance=distance) == pytest.approx(expected)
    assert 0 < expected[1] < expected[4] < 1
    gallery, gallery_labels = labelled_blobs(n_items=70, seed=3)
    expected = recall_by_loop(X, y, gallery, gallery_labels, ks, distance, exclude_self=False)
    found = recall_at_k(X, y, ks, gallery=gallery, gallery_labels=gallery_labels, distance=distance, block_size=11)
    assert found == pytest.approx(expected)
    assert list(found) == list(ks)


def test_recall_at_1_matches_pml_precision_at_1_and_leave_one_out_1nn_accuracy():
    X, y = labelled_blobs(n_items=200, n_features=16, dtype=np.float32)
    # pml leaves out queries whose class has no other item; here every class has several.
    assert np.bincount(y).min() >= 2
    calculator = AccuracyCalculator(include=("precision_at_1",), k=1, knn_func=EXACT_KNN)
    # With no reference set, pml searches the queries among themselves without each query.
    expected = calculator.get_accuracy(torch.tensor(X), torch.tensor(y))["precision_at_1"]
    recall = recall_at_k(X, y, ks=(1,))[1]
    assert recall == pytest.approx(expected)
    assert recall == pytest.approx(knn_accuracy(X, y, k=1))


def test_recall_counts_queries_without_a_relevant_item_as_misses():
    X = np.array([[0.0], [0.1], [5.0]])
    assert recall_at_k(X, ["a", "a", "b"], ks=(1, 2)) == pytest.approx({1: 2 / 3, 2: 2 / 3})


# --------------------------------------------------------------------------------------------
# mean_average_precision
# --------------------------------------------------------------------------------------------


def map_by_loop(queries, query_labels, gallery, gallery_labels, metric, exclude_self):
    """scikit-learn's average precision of every query that has a relevant item, averaged."""
    distances = cdist(queries, gallery, metric=metric)
    precisions = []
    for q in range(len(queries)):
        candidates = np.arange(len(gallery)) != q if exclude_self else slice(None)
        relevant = gallery_labels[candidates] == query_labels[q]
        if relevant.any():
            precisions.append(average_precision_score(relevant, -distances[q, candidates]))
    return float(np.mean(precisions))


@pytest.mark.parametrize("block_size", [1, 7, None])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_mean_average_precision_matches_scikit_learn(block_size, distance):
    X, y = labelled_blobs()
    y[0] = 99  # a class of one: that query has no relevant item and is skipped
    expected = map_by_loop(X, y, X, y, distance, exclude_self=True)
    found = mean_average_precision(X, y, distance=distance, block_size=block_size)
    assert found == pytest.approx(expected, rel=1e-12)
    gallery, gallery_labels = labelled_blobs(n_items=50, seed=4)
    expected = map_by_loop(X, y, gallery, gallery_labels, distance, exclude_self=False)
    found = mean_average_precision(
        X, y, gallery=gallery, gallery_labels=gallery_labels, distance=distance, block_size=block_size
    )
    assert found == pytest.approx(expected, rel=1e-12)


def test_mean_average_precision_counts_tied_items_together_like_scikit_learn():
    # Points on a coarse integer grid: many queries have several items at the same distance.
    rng = np.random.default_rng(5)
    X = rng.integers(0, 3, (80, 2)).astype(np.float64)
    y = rng.integers(0, 3, 80)
    expected = map_by_loop(X, y, X, y, "euclidean", exclude_self=True)
    assert mean_average_precision(X, y, block_size=13) == pytest.approx(expected, rel=1e-12)


def test_mean_average_precision_matches_pml():
    X, y = labelled_blobs(n_items=150, dtype=np.float32)
    y[:2] = [98, 99]  # two classes of one item: pml and we both skip those two queries
    # pml's mean_average_precision with k=None ranks the whole reference set (less the query)
    # and divides by the number of relevant items: the same AP as ours on data without ties.
    calculator = AccuracyCalculator(include=("mean_average_precision",), k=None, knn_func=EXACT_KNN)
    expected = calculator.get_accuracy(torch.tensor(X), torch.tensor(y))["mean_average_precision"]
    assert mean_average_precision(X, y) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------------------------
# knn_accuracy and triplet_accuracy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4, 6])
def test_knn_accuracy_matches_scikit_learn(k):
    # k = 4 and 6 give tied votes, which both break in favour of the smallest label.
    X, y = labelled_blobs(n_items=150, n_classes=5, spread=0.7)
    X_test, y_test = labelled_blobs(n_items=60, n_classes=5, spread=0.7, seed=6)
    expected = KNeighborsClassifier(k).fit(X, y).score(X_test, y_test)
    assert knn_accuracy(X_test, y_test, gallery=X, gallery_labels=y, k=k) == pytest.approx(expected)
    names = np.array(["bass", "cello", "flute", "harp", "oboe"])
    expected = KNeighborsClassifier(k).fit(X, names[y]).score(X_test, names[y_test])
    assert knn_accuracy(X_test, names[y_test], gallery=X, gallery_labels=names[y], k=k) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 4])
def test_leave_one_out_knn_accuracy_matches_a_loop(k):
    X, y = labelled_blobs(n_items=60, spread=0.8)
    correct = [
        KNeighborsClassifier(k).fit(np.delete(X, i, 0), np.delete(y, i)).predict(X[i : i + 1])[0] == y[i]
        for i in range(len(X))
    ]
    assert knn_accuracy(X, y, k=k) == pytest.approx(np.mean(correct))


def test_majority_vote_breaks_ties_by_the_smallest_label():
    X_train = np.array([[0.0], [1.0], [2.0], [3.0]])
    # The neighbours of 0.9 are 1 (label 7), 0 (label 5), 2 (label 5), 3 (label 7): a 2-2 tie.
    assert knn_accuracy([[0.9]], [5], gallery=X_train, gallery_labels=[5, 7, 5, 7], k=4) == 1.0
    assert knn_accuracy([[0.9]], [5], gallery=X_train, gallery_labels=[7, 5, 7, 5], k=4) == 1.0


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_triplet_accuracy_matches_a_loop(distance):
    X, _ = labelled_blobs()
    rng = np.random.default_rng(7)
    anchors, positives, negatives = rng.integers(0, len(X), (3, 500))
    distances = cdist(X, X, metric=distance)
    expected = np.mean([distances[a, p] < distances[a, n] for a, p, n in zip(anchors, positives, negatives)])
    assert 0.3 < expected < 0.7
    found = triplet_accuracy(X, anchors, positives, negatives, distance=distance)
    assert found == pytest.approx(expected)


def test_a_tied_triplet_counts_as_a_mistake():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    assert triplet_accuracy(X, [0, 0, 0], [1, 1, 3], [2, 3, 1]) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------------
# The same results whatever the block size, dtype, input type and label type
# --------------------------------------------------------------------------------------------


def all_metrics(X, y, block_size=None):
    recalls = recall_at_k(X, y, ks=(1, 3, 10), block_size=block_size)
    return {
        **{f"R@{k}": recall for k, recall in recalls.items()},
        "map": mean_average_precision(X, y, block_size=block_size),
        "knn": knn_accuracy(X, y, k=3),
        "triplets": triplet_accuracy(X, [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]),
    }


def test_metrics_do_not_depend_on_block_size_dtype_or_input_type():
    X, y = labelled_blobs(n_items=100)
    reference = all_metrics(X, y)
    for block_size in [1, 7, 100, 1000]:
        assert all_metrics(X, y, block_size) == reference
    assert all_metrics(torch.tensor(X), torch.tensor(y)) == reference
    assert all_metrics(X.astype(np.float32), y) == pytest.approx(reference)
    assert all_metrics(X.tolist(), y.tolist()) == reference
    names = np.array(["drums", "bass", "guitar", "piano", "voice", "violin"])[y]
    assert all_metrics(X, names) == reference
    assert all_metrics(torch.tensor(X, requires_grad=True), y) == reference
    assert recall_at_k(torch.tensor(X), y, ks=(1, 3, 10), device="cpu") == recall_at_k(X, y, ks=(1, 3, 10))


def test_string_labels_are_matched_between_queries_and_gallery():
    X, y = labelled_blobs()
    names = np.array(["a", "b", "c", "d", "e", "f"])
    gallery, gallery_y = labelled_blobs(n_items=40, seed=8)
    expected = recall_at_k(X, y, (1, 5), gallery=gallery, gallery_labels=gallery_y)
    assert recall_at_k(X, names[y], (1, 5), gallery=gallery, gallery_labels=list(names[gallery_y])) == expected
    assert mean_average_precision(X, names[y], gallery=gallery, gallery_labels=names[gallery_y]) == pytest.approx(
        mean_average_precision(X, y, gallery=gallery, gallery_labels=gallery_y)
    )


def test_float16_is_computed_in_float32():
    X, _ = labelled_blobs(n_items=50)
    distances, _ = nearest_neighbors(X.astype(np.float16), k=2)
    assert distances.dtype == np.float32


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_gives_the_same_results_as_the_cpu():
    X, y = labelled_blobs(n_items=500, n_features=32, dtype=np.float32)
    on_cpu = nearest_neighbors(X, k=10)
    on_gpu = nearest_neighbors(torch.tensor(X, device="cuda"), k=10)
    np.testing.assert_array_equal(on_gpu[1], on_cpu[1])
    np.testing.assert_allclose(on_gpu[0], on_cpu[0], rtol=1e-5)
    assert all_metrics(torch.tensor(X, device="cuda"), y) == pytest.approx(all_metrics(X, y))


# --------------------------------------------------------------------------------------------
# Memory: blocks of queries, never the whole N x N matrix
# --------------------------------------------------------------------------------------------


def test_the_automatic_block_for_50000_embeddings_fits_the_budget():
    rows = neighbors._rows_per_block(50_000, np.dtype(np.float32).itemsize)
    assert 1 < rows < 50_000
    assert rows * 50_000 * 4 <= BLOCK_BYTES


def test_recall_of_20000_embeddings_is_computed_in_blocks(monkeypatch):
    n_items = 20_000
    rng = np.random.default_rng(9)
    centres = rng.standard_normal((500, 64)).astype(np.float32)
    y = rng.integers(0, 500, n_items)
    X = centres[y] + 0.3 * rng.standard_normal((n_items, 64)).astype(np.float32)
    block_shapes = []
    score_blocks = neighbors._Search.score_blocks

    def recording_score_blocks(search):
        for rows, scores in score_blocks(search):
            block_shapes.append(tuple(scores.shape))
            yield rows, scores

    monkeypatch.setattr(neighbors._Search, "score_blocks", recording_score_blocks)
    recalls = recall_at_k(X, y)
    assert len(block_shapes) > 1
    assert all(rows * columns * 4 <= BLOCK_BYTES for rows, columns in block_shapes)
    assert sum(rows for rows, _ in block_shapes) == n_items
    assert 0.5 < recalls[1] <= recalls[2] <= recalls[4] <= recalls[8] <= 1


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

X_OK, Y_OK = labelled_blobs(n_items=20)
X_NAN = X_OK.copy()
X_NAN[3, 1] = np.nan


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: recall_at_k(X_OK[0], Y_OK), r"2-D array .* v\.reshape\(1, -1\)"),
        (lambda: recall_at_k(X_OK, Y_OK[:-1]), r"labels must have shape \(20,\)"),
        (lambda: recall_at_k(X_OK, Y_OK[:, None]), r"ravel"),
        (lambda: recall_at_k(X_NAN, Y_OK), r"NaN or infinite values in 1 row\(s\), .* row 3"),
        (lambda: recall_at_k(X_OK, Y_OK, ks=(1, 20)), r"k=20 is more than the 19 neighbours"),
        (lambda: recall_at_k(X_OK, Y_OK, ks=(0,)), r"each k in ks must be a positive integer"),
        (lambda: recall_at_k(X_OK, Y_OK, ks=()), r"at least one k"),
        (lambda: recall_at_k(X_OK, Y_OK, gallery=X_OK), r"gallery needs its labels"),
        (lambda: recall_at_k(X_OK, Y_OK, gallery_labels=Y_OK), r"without a gallery"),
        (lambda: recall_at_k(X_OK, Y_OK, gallery=X_OK[:, :3], gallery_labels=Y_OK), r"same dimension D"),
        (
            lambda: recall_at_k(X_OK, Y_OK, gallery=X_OK, gallery_labels=Y_OK.astype(str)),
            r"both be numbers or both be strings",
        ),
        (lambda: recall_at_k(X_OK, Y_OK, distance="manhattan"), r"distance must be one of"),
        (lambda: recall_at_k(X_OK, Y_OK, block_size=0), r"block_size must be a positive"),
        (lambda: recall_at_k(X_OK.astype(str), Y_OK), r"must hold numbers"),
        (lambda: nearest_neighbors(X_OK, k=25), r"k=25 is more than the 19 neighbours"),
        (lambda: nearest_neighbors(X_OK, X_OK[:5], k=6), r"k=6 is more than the 5 neighbours"),
        (lambda: nearest_neighbors(X_OK, X_OK[:5], k=1, exclude_self=True), r"exclude_self"),
        (lambda: nearest_neighbors(X_OK, device="no-such-device"), r"device must be"),
        (lambda: mean_average_precision(X_OK, np.arange(20)), r"No query has a relevant item"),
        (lambda: knn_accuracy(X_OK, Y_OK, gallery=X_OK), r"both gallery and gallery_labels"),
        (lambda: knn_accuracy(X_OK, Y_OK, k=20), r"k=20 is more than the 19 neighbours"),
        (lambda: knn_accuracy(X_OK, Y_OK[:3], gallery=X_OK, gallery_labels=Y_OK), r"labels must have shape"),
        (lambda: triplet_accuracy(X_OK, [0, 1], [2], [3, 4]), r"one common, non-zero length"),
        (lambda: triplet_accuracy(X_OK, [0], [1], [20]), r"negatives must hold row indices"),
        (lambda: triplet_accuracy(X_OK, [0.0], [1], [2]), r"anchors must hold integer"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_asking_for_a_missing_gpu_raises():
    with pytest.raises(ValueError, match="not available on this machine"):
        recall_at_k(X_OK, Y_OK, device="cuda")


# --------------------------------------------------------------------------------------------
# Groups: leaving each query's own group (its piece) out of the search
# --------------------------------------------------------------------------------------------


def grouped_distances(X, groups, gallery=None, gallery_groups=None):
    """Brute-force distances with the query itself and its own group at infinity."""
    if gallery is None:
        gallery, gallery_groups = X, groups
    distances = cdist(X, gallery)
    distances[np.asarray(groups)[:, None] == np.asarray(gallery_groups)[None, :]] = np.inf
    return distances


@pytest.mark.parametrize("block_size", [1, 7, None])
def test_recall_with_groups_skips_the_query_group(block_size):
    X, labels = labelled_blobs(n_items=60)
    # Groups of three items of one class (mostly), like three clips of one piece.
    groups = np.empty(60, dtype=int)
    groups[np.argsort(labels, kind="stable")] = np.arange(60) // 3
    distances = grouped_distances(X, groups)
    order = np.argsort(distances, axis=1, kind="stable")
    expected = {k: np.mean([(labels[order[i, :k]] == labels[i]).any() for i in range(60)]) for k in (1, 2, 4, 8)}
    recalls = recall_at_k(X, labels, groups=groups, block_size=block_size)
    assert recalls == pytest.approx(expected)
    assert recalls != pytest.approx(recall_at_k(X, labels))  # the groups changed something


def test_recall_with_groups_counts_excluded_fillers_as_misses():
    # Item 0's group holds every other item of its class: nothing outside can be a hit.
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    labels, groups = np.array([0, 0, 0, 1, 1]), np.array([0, 0, 0, 1, 2])
    assert recall_at_k(X, labels, ks=(4,), groups=groups)[4] == pytest.approx(2 / 5)


def test_map_with_groups_equals_scikit_learn_without_the_group():
    X, labels = labelled_blobs(n_items=50, seed=4)
    groups = np.arange(50) // 5
    distances = grouped_distances(X, groups)
    precisions = []
    for i in range(50):
        keep = np.isfinite(distances[i])
        relevant = labels[keep] == labels[i]
        if relevant.any():
            precisions.append(average_precision_score(relevant, -distances[i, keep]))
    assert mean_average_precision(X, labels, groups=groups) == pytest.approx(np.mean(precisions))


def test_nearest_neighbors_with_a_gallery_and_groups():
    gallery, _ = labelled_blobs(n_items=40, seed=5)
    queries, _ = labelled_blobs(n_items=9, seed=6)
    query_groups, gallery_groups = np.arange(9) % 4, np.arange(40) % 4
    distances, indices = nearest_neighbors(queries, gallery, k=5, groups=query_groups, gallery_groups=gallery_groups)
    expected = grouped_distances(queries, query_groups, gallery, gallery_groups)
    expected_indices = np.argsort(expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, np.take_along_axis(expected, expected_indices, 1))


def test_groups_must_come_with_gallery_groups():
    gallery, _ = labelled_blobs(n_items=10, seed=7)
    with pytest.raises(ValueError, match="gallery_groups"):
        nearest_neighbors(gallery, gallery, k=2, groups=np.zeros(10))
    with pytest.raises(ValueError, match="without groups"):
        nearest_neighbors(gallery, k=2, gallery_groups=np.zeros(10))


# --- linear read-out --------------------------------------------------------------------------


def test_linear_readout_r2_matches_scikit_learn():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), np.arange(3, 15))  # distinct sizes: one way to deal the folds
    x = rng.normal(size=(len(groups), 6)) * rng.uniform(0.1, 10, size=6)
    y = x @ rng.normal(size=6) + rng.normal(size=len(groups))
    for folds, alpha in [(2, 0.1), (4, 10.0), (12, 3.0)]:
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
        predictions = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(folds))
        assert linear_readout_r2(torch.as_tensor(x), y, groups, folds=folds, alpha=alpha) == pytest.approx(
            r2_score(y, predictions), abs=1e-10
        )


def test_linear_readout_r2_is_high_for_a_linear_quantity_and_near_zero_for_noise():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 10)
    x = rng.normal(size=(200, 5))
    assert linear_readout_r2(x, x @ np.arange(1.0, 6.0), groups) > 0.99
    assert linear_readout_r2(x, rng.normal(size=200), groups) < 0.05


def test_linear_readout_r2_rejects_bad_input():
    x, groups = np.zeros((10, 2)), np.repeat(np.arange(5), 2)
    with pytest.raises(ValueError, match="all equal"):
        linear_readout_r2(np.random.default_rng(0).normal(size=(10, 2)), np.ones(10), groups)
    with pytest.raises(ValueError, match="finite"):
        linear_readout_r2(x, np.r_[np.nan, np.arange(9.0)], groups)
    with pytest.raises(ValueError, match="between 2 and the number of groups"):
        linear_readout_r2(x, np.arange(10.0), groups, folds=6)
    with pytest.raises(ValueError, match="shapes"):
        linear_readout_r2(x, np.arange(9.0), groups)


def test_an_all_zero_row_is_at_cosine_distance_one_from_everything():
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    distances, indices = nearest_neighbors(rows, k=2, distance="cosine")
    np.testing.assert_allclose(distances[0], [1.0, 1.0])
    np.testing.assert_allclose(distances[1], [1.0, 1.0])
    assert indices[0].tolist() == [1, 2]


def test_squared_euclidean_search_ranks_as_euclidean_and_returns_squares():
    rng = np.random.default_rng(5)
    points = rng.standard_normal((30, 4))
    euclidean, order = nearest_neighbors(points, k=5)
    squared, squared_order = nearest_neighbors(points, k=5, distance="squared")
    np.testing.assert_array_equal(order, squared_order)
    np.testing.assert_allclose(squared, euclidean**2, rtol=1e-6)
