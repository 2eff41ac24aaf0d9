"""Batch samplers: composition of batches, reproducibility per epoch, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mlcourse.data.samplers import (
    ClassBalancedBatches,
    ConcatBatches,
    PairBatches,
    RandomBatches,
    TripletBatches,
    pair_halves,
    triplet_thirds,
)

LABELS = np.repeat(np.array(["a", "b", "c", "d", "e", "f"]), [2, 3, 5, 8, 13, 1])


def batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return [np.asarray(batch) for batch in sampler]


def test_class_balanced_batches_hold_p_classes_of_k_clips():
    sampler = ClassBalancedBatches(LABELS, classes_per_batch=3, samples_per_class=4, seed=0)
    assert len(sampler) == len(LABELS) // 12
    for batch in batches(sampler, 0) + batches(sampler, 1):
        names, counts = np.unique(LABELS[batch], return_counts=True)
        assert len(names) == 3 and (counts == 4).all()


def test_class_balanced_batches_use_distinct_clips_when_a_class_has_enough():
    sampler = ClassBalancedBatches(LABELS, 2, 5, batches_per_epoch=200, seed=1)
    for batch in batches(sampler, 0):
        for name in np.unique(LABELS[batch]):
            members = batch[LABELS[batch] == name]
            if (LABELS == name).sum() >= 5:
                assert len(np.unique(members)) == 5


def test_every_clip_is_drawn_over_many_batches():
    sampler = ClassBalancedBatches(LABELS, 3, 2, batches_per_epoch=500, seed=2)
    drawn = np.unique(np.concatenate(batches(sampler, 0)))
    assert np.array_equal(drawn, np.arange(len(LABELS)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: ClassBalancedBatches(LABELS, 3, 4, seed=3),
        lambda: PairBatches(LABELS, 8, seed=3),
        lambda: TripletBatches(LABELS, 8, seed=3),
    ],
)
def test_same_epoch_same_batches_other_epoch_other_batches(make):
    first, again, other = batches(make(), 0), batches(make(), 0), batches(make(), 1)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))


def test_pairs_have_the_asked_share_of_positives_and_no_self_pairs():
    sampler = PairBatches(LABELS, pairs_per_batch=10, positive_fraction=0.3, batches_per_epoch=50, seed=4)
    for batch in batches(sampler, 0):
        first, second = pair_halves(batch)
        same = LABELS[first] == LABELS[second]
        assert same[:3].all() and not same[3:].any()
        assert (first[:3] != second[:3]).all()


def test_random_triplets_are_valid_and_skip_single_clip_classes():
    sampler = TripletBatches(LABELS, triplets_per_batch=64, batches_per_epoch=20, seed=5)
    for batch in batches(sampler, 0):
        anchors, positives, negatives = triplet_thirds(batch)
        assert (LABELS[anchors] == LABELS[positives]).all() and (anchors != positives).all()
        assert (LABELS[anchors] != LABELS[negatives]).all()
        assert "f" not in LABELS[anchors]  # "f" has one clip: it cannot be an anchor


def test_positives_are_uniform_over_the_class():
    # Anchor 0 of class "e" (13 clips) must reach each of its 12 partners about equally often.
    sampler = TripletBatches(LABELS, triplets_per_batch=1, seed=0)
    anchors = np.full(12_000, np.flatnonzero(LABELS == "e")[0])
    positives = sampler._draw_positives(np.random.default_rng(0), anchors)
    counts = np.unique(positives, return_counts=True)[1]
    assert len(counts) == 12 and counts.min() > 850 and counts.max() < 1150


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ClassBalancedBatches(LABELS, 7, 2), "classes_per_batch"),
        (lambda: ClassBalancedBatches(LABELS, 2, 1), "samples_per_class"),
        (lambda: PairBatches(["x", "x", "x"], 4), "two classes"),
        (lambda: TripletBatches(["x", "y"], 4), "two clips"),
        (lambda: PairBatches(LABELS, 4, positive_fraction=1.5), "positive_fraction"),
        (lambda: ClassBalancedBatches(np.zeros((3, 2)), 2, 2), "1-D"),
    ],
)
def test_bad_arguments_are_explained(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_near_far_triplets_respect_the_distances_and_the_recording():
    from mlcourse.data.samplers import NearFarTripletBatches, triplet_thirds

    lengths = [30, 45, 25]
    recordings = np.repeat(np.arange(3), lengths)
    positions = np.concatenate([np.arange(n) for n in lengths])
    order = np.random.default_rng(0).permutation(len(recordings))  # rows need not be sorted
    recordings, positions = recordings[order], positions[order]
    sampler = NearFarTripletBatches(recordings, positions, 200, near=2, far=10, batches_per_epoch=5, seed=1)
    negatives_seen = set()
    for batch in sampler:
        anchor, positive, negative = triplet_thirds(batch)
        assert (recordings[anchor] == recordings[positive]).all() and (recordings[anchor] == recordings[negative]).all()
        near = np.abs(positions[anchor] - positions[positive])
        assert ((near >= 1) & (near <= 2)).all()
        assert (np.abs(positions[anchor] - positions[negative]) >= 10).all()
        negatives_seen |= set(zip(recordings[negative], positions[negative]))
    # Negatives cover both sides of anchors: the first and the last windows of a recording occur.
    assert (0, 0) in negatives_seen and (1, 44) in negatives_seen


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"near": 3, "far": 3}, "near < far"),
        ({"near": 1, "far": 30}, "too few"),
    ],
)
def test_near_far_triplets_explain_bad_arguments(kwargs, message):
    from mlcourse.data.samplers import NearFarTripletBatches

    recordings, positions = np.repeat([0, 1], 20), np.tile(np.arange(20), 2)
    with pytest.raises(ValueError, match=message):
        NearFarTripletBatches(recordings, positions, 8, **kwargs)
    with pytest.raises(ValueError, match="not 0 .. 19"):
        NearFarTripletBatches(recordings, positions * 2, 8, near=1, far=3)


def test_concat_batches_joins_one_batch_of_each_sampler_epoch_by_epoch():
    labels = np.repeat(np.arange(5), 6)
    first, second = ClassBalancedBatches(labels, 2, 3, batches_per_epoch=4, seed=1), RandomBatches(30, 5, 6, seed=2)
    joined = ConcatBatches(
        ClassBalancedBatches(labels, 2, 3, batches_per_epoch=4, seed=1), RandomBatches(30, 5, 6, seed=2)
    )
    assert len(joined) == 4
    for epoch in (0, 3):
        for sampler in (first, second, joined):
            sampler.set_epoch(epoch)
        expected = [np.concatenate([a, b]) for a, b in zip(first, second)]
        batches = list(joined)
        assert len(batches) == 4
        for batch, wanted in zip(batches, expected):
            np.testing.assert_array_equal(batch, wanted)
    with pytest.raises(ValueError, match="at least one sampler"):
        ConcatBatches()
