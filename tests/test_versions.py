"""Version identification: stacking versions, the subset step, key invariance, version mAP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from mlcourse.models import ChromaNet, RecordingNet
from mlcourse.train import embed
from mlcourse.versions import (
    ClipSubsetStep,
    describe_version,
    key_invariant_similarity,
    known_versions,
    nearest_versions,
    piece_prototypes,
    prototype_search,
    stack_versions,
    version_map,
    version_means,
)


@pytest.fixture(scope="module")
def smoke_test(smoke):
    """The test split of the smoke dataset (conftest builds it if needed)."""
    return smoke.subset(smoke.meta.split.to_numpy() == "test")


def test_stacked_versions_hold_each_versions_clips_in_time_order(smoke_test):
    versions = stack_versions(smoke_test, "chroma")
    meta = smoke_test.meta
    assert versions.clips.shape[0] == meta.version_id.nunique()
    for v in [0, len(versions.version_ids) - 1]:
        rows = meta.index[meta.version_id == versions.version_ids[v]]
        rows = rows[np.argsort(meta["clip"][rows].to_numpy())][: versions.clips.shape[1]]
        np.testing.assert_array_equal(versions.clips[v], np.asarray(smoke_test.chroma)[rows])
        assert versions.pieces[v] == meta.piece_id[rows[0]]
    np.testing.assert_array_equal(versions.version_ids[versions.clip_version], meta.version_id.to_numpy())
    logmel = stack_versions(smoke_test, "logmel")
    assert logmel.clips.shape[2:] == (128, 130)
    with pytest.raises(ValueError, match="chroma' or 'logmel"):
        stack_versions(smoke_test, "mfcc")


def test_version_means_are_group_means():
    vectors = np.arange(12.0).reshape(6, 2)
    clip_version = np.array([0, 1, 0, 2, 1, 2])
    expected = np.stack([vectors[clip_version == v].mean(axis=0) for v in range(3)])
    np.testing.assert_allclose(version_means(vectors, clip_version), expected)


def test_key_invariant_similarity_is_the_best_rotation():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 12)), rng.random((4, 12))
    expected = np.empty((3, 4))
    for i in range(3):
        for j in range(4):
            expected[i, j] = max(
                np.dot(a[i], np.roll(b[j], k)) / np.linalg.norm(a[i]) / np.linalg.norm(b[j]) for k in range(12)
            )
    np.testing.assert_allclose(key_invariant_similarity(a, b), expected)
    np.testing.assert_allclose(key_invariant_similarity(a, np.roll(a, 7, axis=1)).diagonal(), 1.0)
    with pytest.raises(ValueError, match="pitch-class profiles"):
        key_invariant_similarity(a[:, :11], b)


def test_clip_subset_step_draws_distinct_clips_of_each_version():
    seen = []

    def loss_fn(embeddings, labels):
        return embeddings.sum()

    def model(stacks):
        seen.append(stacks.clone())
        return stacks.flatten(1).float()

    # Version v's clip c holds the number 10 v + c everywhere: which clips were drawn is readable.
    features = (10 * torch.arange(5)[:, None] + torch.arange(6)[None, :]).float()[:, :, None]
    step = ClipSubsetStep(3, seed=0)
    step(model, loss_fn, features, torch.zeros(5), torch.tensor([4, 1]))
    drawn = seen[0][:, :, 0]
    assert drawn.shape == (2, 3)
    assert ((drawn // 10) == torch.tensor([[4], [1]])).all()  # clips of the right version
    assert all(len(set(row.tolist())) == 3 for row in drawn)  # without replacement
    with pytest.raises(ValueError, match="only 6 clips"):
        ClipSubsetStep(7)(model, loss_fn, features, torch.zeros(5), torch.tensor([0]))


def test_version_map_is_sklearns_average_precision(smoke_test):
    versions = stack_versions(smoke_test, "chroma")
    torch.manual_seed(0)
    model = RecordingNet(ChromaNet(embedding_dim=8))
    score = version_map(model, versions)
    embeddings = embed(model, versions.clips).numpy().astype(np.float64)
    similarity = embeddings @ embeddings.T
    precisions = []
    for i in range(len(similarity)):
        others = np.arange(len(similarity)) != i
        relevant = versions.pieces[others] == versions.pieces[i]
        if relevant.any():
            precisions.append(average_precision_score(relevant, similarity[i, others]))
    assert score == pytest.approx(np.mean(precisions), abs=1e-6)


def test_version_pair_distances_by_brute_force(smoke_test):
    from mlcourse.versions import version_pair_distances

    versions = stack_versions(smoke_test, "chroma")
    torch.manual_seed(1)
    clip_net = ChromaNet(embedding_dim=8)
    pairs = version_pair_distances(clip_net, versions, smoke_test)
    embeddings = embed(RecordingNet(clip_net), versions.clips).numpy().astype(np.float64)
    instrument = {v: smoke_test.meta.instrument[smoke_test.meta.version_id == v].iloc[0] for v in versions.version_ids}
    expected = [
        (
            1 - embeddings[i] @ embeddings[j],
            versions.pieces[i] == versions.pieces[j],
            instrument[versions.version_ids[i]] == instrument[versions.version_ids[j]],
        )
        for i in range(len(embeddings))
        for j in range(i + 1, len(embeddings))
    ]
    assert len(pairs) == len(expected)
    np.testing.assert_allclose(pairs.distance, [e[0] for e in expected], atol=1e-6)
    assert pairs["same piece"].tolist() == [e[1] for e in expected]
    assert pairs["same instrument"].tolist() == [e[2] for e in expected]


def test_nearest_versions_rank_by_similarity_without_the_query():
    similarity = np.array([[1.0, 0.2, 0.9, 0.2], [0.2, 1.0, 0.1, 0.3], [0.9, 0.1, 1.0, 0.5], [0.2, 0.3, 0.5, 1.0]])
    assert nearest_versions(similarity, 0, k=3).tolist() == [2, 1, 3]  # equal scores in row order
    assert nearest_versions(similarity, 3, k=2).tolist() == [2, 1]
    assert similarity[0, 0] == 1.0  # the input is left as it was


def test_describe_version_names_piece_instrument_and_transposition(smoke_test):
    meta = smoke_test.meta
    row = meta.iloc[0]
    assert describe_version(meta, row.version_id) == f"{row.piece_id} ({row.instrument}, {int(row['transpose']):+d})"


def test_known_versions_keep_each_pieces_last_version_new():
    pieces = np.array(["b", "a", "b", "c", "a", "b"])
    assert known_versions(pieces).tolist() == [True, True, True, False, False, False]


def test_piece_prototypes_are_mean_directions():
    rng = np.random.default_rng(0)
    vectors, pieces = rng.normal(size=(7, 4)), np.array(list("xyxzyxz"))
    names, prototypes = piece_prototypes(vectors, pieces)
    assert names.tolist() == ["x", "y", "z"]
    for name, prototype in zip(names, prototypes):
        members = vectors[pieces == name]
        mean = (members / np.linalg.norm(members, axis=1, keepdims=True)).mean(axis=0)
        np.testing.assert_allclose(prototype, mean / np.linalg.norm(mean))
    with pytest.raises(ValueError, match="no direction"):
        piece_prototypes(np.zeros((2, 3)), ["x", "y"])


def test_prototype_search_equals_a_loop_with_sklearn():
    """Versions of 5 pieces (3 each, 2 clips each), scored against an independent loop."""
    rng = np.random.default_rng(1)
    version_pieces = np.repeat(np.arange(5), 3)
    version_of_clip = np.repeat(np.arange(15), 2)
    clips = rng.normal(size=(5, 6))[version_pieces[version_of_clip]] + rng.normal(size=(30, 6))
    known = known_versions(version_pieces)
    table = prototype_search(clips, version_of_clip, version_pieces, known)

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    versions = np.stack([clips[version_of_clip == v].mean(axis=0) for v in range(15)])
    new_versions, new_clips = np.flatnonzero(~known), np.flatnonzero(~known[version_of_clip])
    queries = {"one known version": (versions[known], version_pieces[known]),
               "piece prototype": (np.stack([unit(versions[known & (version_pieces == p)]).mean(axis=0)
                                             for p in range(5)]), np.arange(5))}  # fmt: skip
    for name, (vectors, pieces) in queries.items():
        version_similarity = unit(vectors) @ unit(versions[new_versions]).T
        clip_similarity = unit(vectors) @ unit(clips[new_clips]).T
        relevant_versions = pieces[:, None] == version_pieces[new_versions][None, :]
        relevant_clips = pieces[:, None] == version_pieces[version_of_clip[new_clips]][None, :]
        expected = {
            "version mAP": np.mean(
                [average_precision_score(r, s) for r, s in zip(relevant_versions, version_similarity)]
            ),
            "version R@1": np.mean(relevant_versions[np.arange(len(pieces)), version_similarity.argmax(axis=1)]),
            "clip mAP": np.mean([average_precision_score(r, s) for r, s in zip(relevant_clips, clip_similarity)]),
        }
        assert table.loc[name].to_dict() == pytest.approx(expected)


def test_prototype_search_needs_a_piece_with_known_and_new_versions():
    with pytest.raises(ValueError, match="nothing to search for"):
        prototype_search(np.eye(3), np.arange(3), np.array(["a", "b", "c"]), np.zeros(3, dtype=bool))
