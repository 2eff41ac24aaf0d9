"""Tagging and per-concept metrics of mlcourse.metrics against loops, scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics import roc_auc_score

from mlcourse.metrics import (
    class_centroids,
    concept_triplet_accuracy,
    per_tag_auc,
    recall_at_k,
    tag_auc,
    tag_scores,
    tag_to_track_retrieval,
)


def random_tags(n_items=60, n_tags=5, seed=0):
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((n_items, 7))
    tags = (rng.random((n_items, n_tags)) < 0.4).astype(np.uint8)
    tags[0] = 1  # every tag has an item
    return embeddings, tags


# ---- class_centroids -------------------------------------------------------------------------


def test_class_centroids_equal_a_loop_over_tags():
    embeddings, tags = random_tags()
    expected = np.stack(
        [np.mean([embeddings[i] for i in range(len(tags)) if tags[i, t]], axis=0) for t in range(tags.shape[1])]
    )
    np.testing.assert_allclose(class_centroids(embeddings, tags), expected, rtol=1e-12)
    from_tensors = class_centroids(torch.tensor(embeddings), torch.tensor(tags.astype(bool)))
    np.testing.assert_allclose(from_tensors, expected, rtol=1e-12)


def test_class_centroids_of_int_labels_are_class_means():
    embeddings, _ = random_tags()
    labels = np.arange(len(embeddings)) % 3
    centroids = class_centroids(embeddings.astype(np.float32), labels)
    assert centroids.shape == (3, 7) and centroids.dtype == np.float32
    for label in range(3):
        np.testing.assert_allclose(centroids[label], embeddings[labels == label].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_class_centroids_name_an_empty_tag():
    embeddings, tags = random_tags()
    tags[:, 2] = 0
    with pytest.raises(ValueError, match="'mood:sad'"):
        class_centroids(embeddings, tags, tag_names=["a", "b", "mood:sad", "c", "d"])
    with pytest.raises(ValueError, match="column 2"):
        class_centroids(embeddings, tags)


@pytest.mark.parametrize("bad_tags", [np.full((60, 5), 2), np.ones((59, 5)), np.ones(60) * 0.5])
def test_class_centroids_refuse_bad_tags(bad_tags):
    embeddings, _ = random_tags()
    with pytest.raises(ValueError, match="tags|labels"):
        class_centroids(embeddings, bad_tags)


# ---- tag_scores ------------------------------------------------------------------------------


def test_tag_scores_are_minus_scipy_distances_or_cosine_similarities():
    embeddings, tags = random_tags()
    centroids = class_centroids(embeddings, tags)
    np.testing.assert_allclose(
        tag_scores(embeddings, centroids, distance="euclidean"), -cdist(embeddings, centroids), rtol=1e-10
    )
    np.testing.assert_allclose(
        tag_scores(embeddings, centroids), 1 - cdist(embeddings, centroids, "cosine"), atol=1e-12
    )


def test_tag_scores_refuse_mismatched_dimensions_and_unknown_distance():
    embeddings, tags = random_tags()
    with pytest.raises(ValueError, match="dimension"):
        tag_scores(embeddings, np.ones((3, 6)))
    with pytest.raises(ValueError, match="distance"):
        tag_scores(embeddings, np.ones((3, 7)), distance="manhattan")


# ---- tag_auc ---------------------------------------------------------------------------------


def test_tag_auc_equals_sklearn_macro_auc_over_scorable_tags():
    embeddings, tags = random_tags(n_tags=6)
    tags[:, 1] = 1  # every item has it: no AUC, skipped
    tags[:, 4] = 0  # no item has it: skipped too
    scores = np.round(tag_scores(embeddings, np.random.default_rng(1).standard_normal((6, 7))), 1)
    keep = [0, 2, 3, 5]
    expected = roc_auc_score(tags[:, keep], scores[:, keep], average="macro")
    assert tag_auc(scores, tags) == pytest.approx(expected, abs=1e-12)
    assert tag_auc(torch.tensor(scores), torch.tensor(tags)) == pytest.approx(expected, abs=1e-12)


def test_per_tag_auc_equals_sklearn_per_tag_and_skips_one_class_tags():
    embeddings, tags = random_tags(n_tags=4)
    tags[:, 3] = 1
    scores = np.round(embeddings[:, :4], 1)  # rounding makes ties, which count one half
    names = ["genre:jig", "mood:calm", "era:baroque", "instrument:organ"]
    aucs = per_tag_auc(scores, tags, tag_names=names)
    assert list(aucs) == names[:3]
    for column, name in enumerate(names[:3]):
        assert aucs[name] == pytest.approx(roc_auc_score(tags[:, column], scores[:, column]))


def test_tag_auc_is_one_for_perfect_scores_and_refuses_one_class_tags():
    _, tags = random_tags()
    assert tag_auc(tags + 0.1, tags) == 1.0
    with pytest.raises(ValueError, match="both positive and negative"):
        tag_auc(np.ones((10, 2)), np.ones((10, 2), dtype=int))
    with pytest.raises(ValueError, match="same"):
        tag_auc(np.ones((10, 3)), np.ones((10, 2), dtype=int))


# ---- concept_triplet_accuracy ----------------------------------------------------------------

CONCEPTS = ["genre", "mood", "instrument", "era"]


def loop_accuracy(embeddings, triplets):
    def distance(i, j):
        return np.linalg.norm(embeddings[i] - embeddings[j])

    correct = [distance(a, p) < distance(a, n) for a, p, n in zip(*triplets)]
    return sum(correct) / len(correct)


def block_embedding(n_items=200, seed=0):
    """A 4 x 8 = 32-d embedding: block b holds concept b's label (weakly, genre's strongly)
    plus noise, so each concept is told apart mostly by its own block."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=(n_items, 4))
    embeddings = 2.0 * rng.standard_normal((n_items, 32))
    centres = 10.0 * rng.standard_normal((4, 3, 8))
    for block in range(4):
        embeddings[:, 8 * block : 8 * block + 8] += 0.1 * centres[block, labels[:, block]]
    embeddings[:, :8] += centres[0, labels[:, 0]]  # only genre's block is strongly informative
    return embeddings, labels


def label_triplets(labels, seed, n_triplets=300):
    rng = np.random.default_rng(seed)
    anchors, positives, negatives = [], [], []
    while len(anchors) < n_triplets:
        a, p, n = rng.integers(0, len(labels), 3)
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]:
            anchors.append(a), positives.append(p), negatives.append(n)
    return np.array(anchors), np.array(positives), np.array(negatives)


def test_concept_triplet_accuracy_equals_a_loop_in_complete_and_sub_spaces():
    embeddings, labels = block_embedding()
    triplets = {c: label_triplets(labels[:, i], seed=i) for i, c in enumerate(CONCEPTS)}
    masks = {c: np.repeat(np.eye(4)[i], 8) for i, c in enumerate(CONCEPTS)}
    table = concept_triplet_accuracy(embeddings, triplets, masks=masks)
    assert list(table.index) == ["complete", "subspace"]
    assert list(table.columns) == CONCEPTS + ["overall"]
    for i, concept in enumerate(CONCEPTS):
        assert table.loc["complete", concept] == loop_accuracy(embeddings, triplets[concept])
        masked = embeddings * masks[concept]
        assert table.loc["subspace", concept] == loop_accuracy(masked, triplets[concept])
    np.testing.assert_allclose(table["overall"], table[CONCEPTS].mean(axis=1))


def test_informative_block_is_perfect_in_its_sub_space_and_worse_in_the_complete_space():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    embeddings = 3.0 * rng.standard_normal((300, 32))
    embeddings[:, 8:16] = 5.0 * np.eye(8)[labels]  # the mood block alone knows the label
    triplets = {"mood": label_triplets(labels, seed=4)}
    masks = {"mood": torch.repeat_interleave(torch.tensor([0.0, 1.0, 0.0, 0.0]), 8)}
    table = concept_triplet_accuracy(torch.tensor(embeddings), triplets, masks=masks)
    assert table.loc["subspace", "mood"] == 1.0
    assert table.loc["complete", "mood"] < 0.9
    boolean_masks = {"mood": np.repeat([False, True, False, False], 8)}
    pd.testing.assert_frame_equal(table, concept_triplet_accuracy(embeddings, triplets, masks=boolean_masks))


def test_concept_triplet_accuracy_without_masks_has_the_complete_row_only():
    embeddings, labels = block_embedding()
    triplets = {"genre": label_triplets(labels[:, 0], seed=0)}
    table = concept_triplet_accuracy(embeddings, triplets, distance="cosine")
    assert list(table.index) == ["complete"] and list(table.columns) == ["genre", "overall"]
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    assert table.loc["complete", "genre"] == loop_accuracy(unit, triplets["genre"])


def test_concept_triplet_accuracy_refuses_missing_or_misshapen_masks():
    embeddings, labels = block_embedding()
    triplets = {"genre": label_triplets(labels[:, 0], seed=0)}
    with pytest.raises(ValueError, match="'genre' has none"):
        concept_triplet_accuracy(embeddings, triplets, masks={"mood": np.ones(32)})
    with pytest.raises(ValueError, match=r"\(32,\)"):
        concept_triplet_accuracy(embeddings, triplets, masks={"genre": np.ones(16)})
    with pytest.raises(ValueError, match="non-empty dict"):
        concept_triplet_accuracy(embeddings, {})


# --- tag-to-track retrieval ---------------------------------------------------------------------


def test_tag_to_track_recall_is_recall_at_k_with_tag_vectors_as_queries():
    """Single-label tags: each tag vector a query, the clips its gallery, as recall_at_k scores it."""
    rng = np.random.default_rng(0)
    embeddings, vectors = rng.normal(size=(40, 6)), rng.normal(size=(5, 6))
    codes = rng.integers(0, 5, size=40)
    ks = (1, 2, 4, 8)
    ours = tag_to_track_retrieval(tag_scores(embeddings, vectors), np.eye(5)[codes], ks=ks)
    theirs = recall_at_k(vectors, np.arange(5), ks=ks, gallery=embeddings, gallery_labels=codes, distance="cosine")
    assert [ours[f"R@{k}"] for k in ks] == pytest.approx([theirs[k] for k in ks])


def test_tag_to_track_precision_equals_a_loop_and_ties_go_by_item_index():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(30, 7)).astype(float)  # many ties
    tags = (rng.uniform(size=(30, 7)) < 0.4).astype(int)
    tags[:, 0] = 0  # a tag without items is skipped
    ours = tag_to_track_retrieval(scores, tags, ks=(1, 5))
    precision, recall = {1: [], 5: []}, {1: [], 5: []}
    for t in range(1, 7):
        ranked = sorted(range(30), key=lambda i: (-scores[i, t], i))
        for k in (1, 5):
            precision[k].append(np.mean([tags[i, t] for i in ranked[:k]]))
            recall[k].append(float(any(tags[i, t] for i in ranked[:k])))
    assert ours == pytest.approx(
        {
            "R@1": np.mean(recall[1]),
            "R@5": np.mean(recall[5]),
            "P@1": np.mean(precision[1]),
            "P@5": np.mean(precision[5]),
        }
    )


def test_tag_to_track_retrieval_refuses_bad_input():
    scores, tags = np.zeros((4, 2)), np.array([[1, 0], [0, 1], [0, 0], [1, 0]])
    with pytest.raises(ValueError, match="at most 4"):
        tag_to_track_retrieval(scores, tags, ks=(5,))
    with pytest.raises(ValueError, match="same"):
        tag_to_track_retrieval(scores, tags[:, :1], ks=(1,))
    with pytest.raises(ValueError, match="nothing to retrieve"):
        tag_to_track_retrieval(scores, np.ones((4, 2)), ks=(1,))
