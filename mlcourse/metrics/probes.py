"""What a simple reader finds in an embedding: a k-NN vote, a linear read-out.

* :func:`knn_accuracy` classifies each query by a majority vote of its k nearest neighbours.
* :func:`nearest_prototype_accuracy` classifies each query by the nearest class mean (its
  prototype) of the training items.
* :func:`linear_readout_r2` asks how much of a quantity (a recording's noise level, say) a
  linear regression recovers from the embeddings, on groups it was not fitted to.

Taught in notebooks/01_distances_and_lda.ipynb, notebooks/02_lmnn.ipynb,
notebooks/05_classification_and_proxies.ipynb and notebooks/08_self_supervised.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import require_positive_int
from .neighbors import _embedding_pair, _encoded_labels, _label_array, _Search
from .tagging import class_centroids, tag_scores


@torch.no_grad()
def knn_accuracy(embeddings, labels, *, gallery=None, gallery_labels=None, k=1, distance="euclidean"):
    """Accuracy of a k-nearest-neighbour classifier: each query gets the vote of its k nearest gallery items.

    Each query (e.g. a test clip) gets the most common label among its k nearest gallery items
    (e.g. the training clips). When labels tie for most votes, the smallest label wins (in
    sorted order: 0 < 1, "a" < "b"), the rule of scikit-learn's ``KNeighborsClassifier`` with
    uniform weights. Without a gallery, each item is classified by the others (leave-one-out).
    Neighbours at equal distance are taken by gallery index, as in :func:`nearest_neighbors`.
    The queries come first, as in :func:`recall_at_k`; the gallery is named.

    Args:
        embeddings: (Q, D) float tensor or array of the queries.
        labels: (Q,) int or str labels of the queries.
        gallery: (N, D) float tensor or array of the items that vote, or None for leave-one-out.
        gallery_labels: (N,) labels, given exactly when ``gallery`` is.
        k: Neighbours that vote, at most N (Q - 1 for leave-one-out).
        distance: One of :data:`mlcourse.distances.DISTANCES`.

    Returns:
        The fraction of queries classified correctly, a float in [0, 1].

    Raises:
        ValueError: On bad embeddings or labels (as in :func:`recall_at_k`), only one of
            ``gallery`` and ``gallery_labels``, or a k that is not in [1, N].

    Example:
        >>> knn_accuracy([[0.9], [2.1]], [0, 1], gallery=[[0.0], [1.0], [2.0], [3.0]], gallery_labels=[0, 0, 1, 1])
        1.0

    Taught in notebooks/01_distances_and_lda.ipynb, notebooks/02_lmnn.ipynb and
    notebooks/05_classification_and_proxies.ipynb
    """
    leave_one_out = gallery is None
    if leave_one_out != (gallery_labels is None):
        raise ValueError(
            "Pass both gallery and gallery_labels, or neither for leave-one-out accuracy on the queries themselves."
        )
    if leave_one_out:
        queries, gallery = _embedding_pair(embeddings, None, None, "embeddings", "")
        label_pair, names = (labels, None), ("labels", "")
    else:
        queries, gallery = _embedding_pair(embeddings, gallery, None, "embeddings", "gallery")
        label_pair, names = (labels, gallery_labels), ("labels", "gallery_labels")
    search = _Search(queries, gallery, distance, None, None)
    query_classes, gallery_classes, _ = _encoded_labels(search, *label_pair, names=names)
    _, neighbours = search.top_k(k)
    predictions = _majority_vote(gallery_classes[neighbours])
    return float((predictions == query_classes).double().mean())


def nearest_prototype_accuracy(embeddings, labels, *, gallery, gallery_labels, distance="cosine"):
    """Accuracy of the nearest-prototype classifier: each query gets its nearest class mean.

    A class's prototype is the mean embedding of its gallery items (e.g. the training clips,
    :func:`mlcourse.metrics.class_centroids`), and a query is given the class of the prototype
    that scores it highest (:func:`mlcourse.metrics.tag_scores`): the largest cosine, or the
    smallest Euclidean distance. Any embedding becomes a classifier this way, with one
    comparison per class instead of one per gallery item. Queries first, as in
    :func:`knn_accuracy`.

    Args:
        embeddings: (Q, D) float tensor or array of the queries.
        labels: (Q,) labels of the queries, of the same kind as the gallery's.
        gallery: (N, D) float tensor or array whose class means are the prototypes.
        gallery_labels: (N,) int or str labels.
        distance: One of :data:`mlcourse.distances.DISTANCES`.

    Returns:
        The fraction of test items classified correctly, a float in [0, 1].

    Raises:
        ValueError: On bad embeddings, labels of another length than their embeddings, or an
            unknown distance.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    gallery_labels = _label_array(gallery_labels, "gallery_labels", len(gallery))
    labels = _label_array(labels, "labels", len(embeddings))
    classes, class_index = np.unique(gallery_labels, return_inverse=True)
    prototypes = class_centroids(gallery, class_index.reshape(-1))
    scores = tag_scores(embeddings, prototypes, distance=distance)
    return float(np.mean(classes[scores.argmax(axis=1)] == labels))


def _majority_vote(neighbour_classes):
    """The most common class of each row; among equally common classes, the smallest.

    Args:
        neighbour_classes: (Q, k) int64 tensor of class indices.

    Returns:
        (Q,) int64 tensor.
    """
    votes = (neighbour_classes[:, :, None] == neighbour_classes[:, None, :]).sum(dim=2)
    # Classes are below n_classes, so one number orders by votes first, then by smaller class.
    n_classes = int(neighbour_classes.max()) + 1
    preference = votes * n_classes - neighbour_classes
    return neighbour_classes.gather(1, preference.argmax(dim=1, keepdim=True)).squeeze(1)


def linear_readout_r2(embeddings, values, groups, folds=5, alpha=10.0):
    """How much of a quantity a linear read-out of the embeddings recovers, on unseen groups.

    The groups (pieces, say) are dealt into ``folds`` folds, the largest group first (groups of
    one size in sorted order), each to the fold with the fewest items so far: the rule of
    scikit-learn's ``GroupKFold``, which may order groups of one size differently. For each fold, a
    ridge regression is fitted to the other folds: the embeddings standardised with those
    folds' means and standard deviations, the values centred on their mean, and the weights
    ``w = (X'X + alpha I)^-1 X'y``. It then predicts the held-out fold. The score is the
    coefficient of determination of all held-out predictions together,
    ``R^2 = 1 - sum (y - prediction)^2 / sum (y - mean y)^2``: 1 when the read-out recovers
    the values exactly, 0 when it does no better than their mean, below 0 when worse.

    Use it to ask whether an embedding carries something it should not: a high R^2 for a
    recording's noise level means the embedding encodes the noise.

    Args:
        embeddings: (N, D) float tensor or array.
        values: (N,) numbers to read out.
        groups: (N,) group of each item; a group is never split between fitting and testing.
        folds: Number of folds, at least 2 and at most the number of groups.
        alpha: Ridge regularisation, > 0.

    Returns:
        R^2, a float.

    Raises:
        ValueError: On mismatched lengths, non-finite inputs, constant values, or fewer groups
            than folds.

    Taught in notebooks/08_self_supervised.ipynb
    """
    x = np.asarray(embeddings.detach().cpu() if torch.is_tensor(embeddings) else embeddings, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    if x.ndim != 2 or y.shape != (len(x),) or groups.shape != (len(x),):
        raise ValueError(
            f"expected (N, D) embeddings with N values and N groups, got shapes {x.shape}, {y.shape} and {groups.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("embeddings and values must be finite (no NaN or inf)")
    if np.ptp(y) == 0:
        raise ValueError("the values are all equal: there is nothing to read out")
    require_positive_int(folds, "folds")
    names, sizes = np.unique(groups, return_counts=True)
    if not 2 <= folds <= len(names):
        raise ValueError(f"folds must be between 2 and the number of groups ({len(names)}), got {folds}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    fold_of_group, fold_sizes = {}, np.zeros(folds, dtype=int)
    for index in np.argsort(-sizes, kind="stable"):
        fold = int(np.argmin(fold_sizes))
        fold_of_group[names[index]] = fold
        fold_sizes[fold] += sizes[index]
    fold_of_item = np.array([fold_of_group[g] for g in groups])
    predictions = np.empty_like(y)
    for fold in range(folds):
        held_out = fold_of_item == fold
        fit_x, fit_y = x[~held_out], y[~held_out]
        mean, std = fit_x.mean(axis=0), fit_x.std(axis=0)
        std[std == 0] = 1.0
        standard = (fit_x - mean) / std
        weights = np.linalg.solve(
            standard.T @ standard + alpha * np.eye(x.shape[1]), standard.T @ (fit_y - fit_y.mean())
        )
        predictions[held_out] = ((x[held_out] - mean) / std) @ weights + fit_y.mean()
    return float(1 - np.sum((y - predictions) ** 2) / np.sum((y - y.mean()) ** 2))
