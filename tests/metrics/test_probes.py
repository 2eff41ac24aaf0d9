"""mlcourse.metrics.probes: the nearest-prototype classifier, against numpy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestCentroid

from mlcourse.metrics import knn_accuracy, nearest_prototype_accuracy


def blobs(seed=0, n_train=60, n_test=30):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, 5)) * 2
    train_labels, test_labels = rng.integers(0, 3, n_train), rng.integers(0, 3, n_test)
    train = centres[train_labels] + rng.standard_normal((n_train, 5)) * 1.5
    test = centres[test_labels] + rng.standard_normal((n_test, 5)) * 1.5
    return train, np.array(list("abc"))[train_labels], test, np.array(list("abc"))[test_labels]


def test_cosine_prototypes_match_numpy():
    train, train_labels, test, test_labels = blobs()
    classes = np.unique(train_labels)
    means = np.stack([train[train_labels == c].mean(axis=0) for c in classes])
    cosines = (test / np.linalg.norm(test, axis=1, keepdims=True)) @ (
        means / np.linalg.norm(means, axis=1, keepdims=True)
    ).T
    expected = np.mean(classes[cosines.argmax(axis=1)] == test_labels)
    assert nearest_prototype_accuracy(test, test_labels, gallery=train, gallery_labels=train_labels) == pytest.approx(
        expected
    )
    assert 0 < expected < 1


def test_euclidean_prototypes_match_scikit_learns_nearest_centroid():
    train, train_labels, test, test_labels = blobs(seed=1)
    expected = NearestCentroid().fit(train, train_labels).score(test, test_labels)
    accuracy = nearest_prototype_accuracy(
        torch.tensor(test), test_labels, gallery=torch.tensor(train), gallery_labels=train_labels, distance="euclidean"
    )
    assert accuracy == pytest.approx(expected)


def test_a_prototype_can_disagree_with_the_nearest_clip():
    train = np.array([[0.0], [10.0], [4.0]])  # class 0 around 5, class 1 at 4
    train_labels, test, test_labels = [0, 0, 1], np.array([[0.5]]), [0]
    assert (
        nearest_prototype_accuracy(test, test_labels, gallery=train, gallery_labels=train_labels, distance="euclidean")
        == 0.0
    )
    assert knn_accuracy(test, test_labels, gallery=train, gallery_labels=train_labels, k=1) == 1.0
