"""mlcourse.miners: the mined triplets against pytorch-metric-learning's miners and against brute-force loops."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.utils import loss_and_miner_utils

import mlcourse.miners
from mlcourse.distances import pairwise_distances
from mlcourse.miners import mine_triplets, positive_negative_masks, triplet_gaps

from pml_reference import (
    BATCHES,
    DISTANCES,
    MARGIN_STRATEGIES,
    STRATEGIES,
    brute_force_triplets,
    pml_distance,
    pml_miner,
    random_batch,
)


def pml_distance_matrix(embeddings, distance):
    """pml's matrix as a distance (smaller = closer), to feed our miner the very same numbers."""
    matrix = pml_distance(distance)(embeddings)
    return 1 - matrix if distance == "cosine" else matrix


def as_set(triplets):
    return sorted(zip(*(index.tolist() for index in triplets)))


# --------------------------------------------------------------------------------------------
# Miners
# --------------------------------------------------------------------------------------------


def test_positive_negative_masks_on_a_small_batch():
    positive, negative = positive_negative_masks(torch.tensor([0, 1, 0, 2]))
    assert positive.tolist() == [[False, False, True, False], [False] * 4, [True, False, False, False], [False] * 4]
    assert negative.tolist() == [
        [False, True, False, True],
        [True, False, True, True],
        [False, True, False, True],
        [True, True, True, False],
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), BATCHES)
def test_mine_triplets_matches_a_brute_force_loop(strategy, seed, batch_size, n_classes):
    embeddings, labels = random_batch(seed, min(batch_size, 17), n_classes)
    distances = pairwise_distances(embeddings)
    mined = mine_triplets(distances, labels, margin=0.5, strategy=strategy)
    assert as_set(mined) == sorted(brute_force_triplets(distances, labels, 0.5, strategy))
    assert all(index.dtype == torch.int64 for index in mined)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("strategy", MARGIN_STRATEGIES + ["batch_hard"])
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), BATCHES)
def test_mine_triplets_matches_pml_miners(strategy, distance, seed, batch_size, n_classes):
    embeddings, labels = random_batch(seed, batch_size, n_classes)
    margin = 0.3 if distance == "cosine" else 1.0
    expected = pml_miner(strategy, margin, distance)(embeddings, labels)
    distances = pml_distance_matrix(embeddings, distance)
    assert as_set(mine_triplets(distances, labels, margin, strategy)) == as_set(expected)
    # Our own distances give the same sets (no triplet sits on a boundary in these batches).
    ours = pairwise_distances(embeddings, distance=distance)
    assert as_set(mine_triplets(ours, labels, margin, strategy)) == as_set(expected)


def test_mine_triplets_none_gives_every_valid_triplet_like_pml():
    embeddings, labels = random_batch(7, 20, 4)
    expected = loss_and_miner_utils.get_all_triplets_indices(labels)
    mined = mine_triplets(pairwise_distances(embeddings), labels, strategy="none")
    assert as_set(mined) == as_set(expected)


def test_mine_triplets_are_sorted_and_partition_by_kind():
    embeddings, labels = random_batch(8, 30, 4)
    distances = pairwise_distances(embeddings)
    margin = 1.0
    every = as_set(mine_triplets(distances, labels, margin, "none"))
    kinds = {s: as_set(mine_triplets(distances, labels, margin, s)) for s in ("easy", "semihard", "hard")}
    assert sorted(kinds["easy"] + kinds["semihard"] + kinds["hard"]) == every
    assert sorted(kinds["semihard"] + kinds["hard"]) == as_set(mine_triplets(distances, labels, margin, "all"))
    mined = mine_triplets(distances, labels, margin, "all")
    assert list(zip(*(index.tolist() for index in mined))) == as_set(mined)


def test_mine_triplets_in_blocks_equals_one_block(monkeypatch):
    embeddings, labels = random_batch(9, 40, 5, torch.float32)
    distances = pairwise_distances(embeddings)
    whole = mine_triplets(distances, labels, 1.0, "all")
    monkeypatch.setattr(mlcourse.miners, "BLOCK_BYTES", 1000)  # a few pairs per block
    blocked = mine_triplets(distances, labels, 1.0, "all")
    for ours, expected in zip(blocked, whole):
        assert torch.equal(ours, expected)


def test_mine_triplets_without_any_triplet_returns_empty_tensors():
    distances = pairwise_distances(torch.randn(4, 3))
    for labels in (torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 0, 0])):
        for strategy in STRATEGIES:
            mined = mine_triplets(distances, labels, strategy=strategy)
            assert [len(index) for index in mined] == [0, 0, 0]


def test_triplet_gaps_sort_triplets_into_their_kinds():
    distances = torch.tensor(
        [
            [0.0, 1.0, 0.9, 1.1, 1.5],
            [1.0, 0.0, 1.0, 1.0, 1.0],
            [0.9, 1.0, 0.0, 1.0, 1.0],
            [1.1, 1.0, 1.0, 0.0, 1.0],
            [1.5, 1.0, 1.0, 1.0, 0.0],
        ]
    )
    anchor, positive, negative = (torch.tensor([0, 0, 0]), torch.tensor([1, 1, 1]), torch.tensor([2, 3, 4]))
    gaps = triplet_gaps(distances, anchor, positive, negative)
    torch.testing.assert_close(gaps, torch.tensor([-0.1, 0.1, 0.5]))
    labels = torch.tensor([0, 0, 1, 2, 3])
    for strategy, expected in [("hard", [(0, 1, 2)]), ("semihard", [(0, 1, 3)]), ("easy", [(0, 1, 4)])]:
        mined = as_set(mine_triplets(distances, labels, 0.2, strategy))
        assert [triplet for triplet in mined if triplet[0] == 0] == expected
