"""The triplet loss against pytorch-metric-learning and brute-force loops; the distance, miner and loss input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from mlcourse.losses import (
    ContrastiveLoss,
    TripletMarginLoss,
    contrastive_loss,
    pairwise_distances,
    triplet_margin_loss,
)
from mlcourse.miners import mine_triplets, positive_negative_masks

from pml_reference import (
    BATCHES,
    DISTANCES,
    DTYPES,
    STRATEGIES,
    brute_force_triplets,
    mean_of_nonzero,
    pml_distance,
    pml_miner,
    random_batch,
    value_and_gradient,
)


def pml_triplet_loss(embeddings, labels, margin, strategy, distance):
    miner = pml_miner(strategy, margin, distance)
    triplets = None if miner is None else miner(embeddings, labels)
    loss = pml_losses.TripletMarginLoss(margin, distance=pml_distance(distance))
    return loss(embeddings, labels, triplets)


# --------------------------------------------------------------------------------------------
# Triplet margin loss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), BATCHES)
def test_triplet_margin_loss_matches_pml(strategy, distance, dtype, seed, batch_size, n_classes):
    embeddings, labels = random_batch(seed, batch_size, n_classes, dtype)
    margin = {"euclidean": 1.0, "squared": 4.0, "cosine": 0.3}[distance]
    ours = value_and_gradient(lambda e: triplet_margin_loss(e, labels, margin, strategy, distance), embeddings)
    expected = value_and_gradient(lambda e: pml_triplet_loss(e, labels, margin, strategy, distance), embeddings)
    if strategy != "easy":
        assert ours[0] > 0
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_triplet_margin_loss_matches_a_brute_force_loop(strategy):
    embeddings, labels = random_batch(12, 11, 3)
    distances = pairwise_distances(embeddings)
    hinges = [
        max(float(distances[a, p] - distances[a, n]) + 1.0, 0.0)
        for a, p, n in brute_force_triplets(distances, labels, 1.0, strategy)
    ]
    loss = triplet_margin_loss(embeddings, labels, 1.0, strategy)
    assert float(loss) == pytest.approx(mean_of_nonzero(hinges))


@pytest.mark.parametrize("dtype", DTYPES)
def test_triplet_margin_loss_with_explicit_triplets_matches_pml(dtype):
    embeddings, labels = random_batch(13, 15, 3, dtype)
    anchor, positive, negative = mine_triplets(pairwise_distances(embeddings), labels, 1.0, "none")
    chosen = torch.randperm(len(anchor), generator=torch.Generator().manual_seed(0))[:20]
    triplets = (anchor[chosen], positive[chosen], negative[chosen])
    ours = value_and_gradient(lambda e: triplet_margin_loss(e, None, 1.0, triplets=triplets), embeddings)
    expected = value_and_gradient(
        lambda e: pml_losses.TripletMarginLoss(1.0, distance=pml_distance("euclidean"))(e, labels, triplets), embeddings
    )
    torch.testing.assert_close(ours, expected)


def test_triplet_margin_loss_is_zero_and_differentiable_without_triplets():
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = triplet_margin_loss(embeddings, torch.tensor([0, 1, 2, 3]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


def test_triplet_module_equals_the_function_and_records_stats():
    embeddings, labels = random_batch(15, 20, 4)
    loss_fn = TripletMarginLoss(margin=1.0, mining="semihard", distance="squared")
    loss = loss_fn(embeddings, labels)
    assert torch.equal(loss, triplet_margin_loss(embeddings, labels, 1.0, "semihard", "squared"))
    mined = mine_triplets(pairwise_distances(embeddings, distance="squared"), labels, 1.0, "semihard")
    stats = loss_fn.last_stats
    assert stats["triplets"] == len(mined[0]) > 0
    every = mine_triplets(pairwise_distances(embeddings), labels, strategy="none")
    assert stats["valid_triplets"] == len(every[0])
    # Semi-hard triplets have 0 < gap <= margin, so all but those exactly at the margin count.
    assert stats["active_triplets"] == stats["triplets"]
    assert stats["active_fraction"] == 1.0
    assert stats["loss"] == loss.item()


def test_modules_train_a_small_embedding():
    torch.manual_seed(0)
    embeddings, labels = random_batch(16, 32, 4)
    for loss_fn in (ContrastiveLoss(neg_margin=2.0), TripletMarginLoss(margin=0.5)):
        weights = torch.nn.Parameter(embeddings.clone())
        optimizer = torch.optim.SGD([weights], lr=1.0)
        first = loss_fn(weights, labels).item()
        for _ in range(60):
            optimizer.zero_grad()
            loss_fn(weights, labels).backward()
            optimizer.step()
        assert loss_fn(weights, labels).item() < first / 2


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

EMBEDDINGS = torch.randn(4, 3)
LABELS = torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pairwise_distances(EMBEDDINGS, distance="manhattan"), "unknown distance"),
        (lambda: pairwise_distances(EMBEDDINGS[0]), "shape \\(B, D\\)"),
        (lambda: pairwise_distances(EMBEDDINGS.long()), "float tensor"),
        (lambda: pairwise_distances(EMBEDDINGS, torch.randn(2, 5)), "same dimension"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS[:3]), "3 entries but the batch has 4"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS[:, None]), "1-D"),
        (lambda: contrastive_loss(EMBEDDINGS, None), "labels are required"),
        (lambda: contrastive_loss(EMBEDDINGS[0], LABELS), "shape \\(B, D\\)"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS, distance="l1"), "unknown distance"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS, 1.0, 0.5), "pos_margin < neg_margin"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS, -0.1, 0.5), "pos_margin < neg_margin"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS, pairs=(LABELS, LABELS)), "4 index"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS, pairs=(LABELS,) * 3 + (LABELS[:2],)), "matching lengths"),
        (lambda: contrastive_loss(EMBEDDINGS, LABELS, pairs=(LABELS + 4,) * 4), "outside"),
        (lambda: triplet_margin_loss(EMBEDDINGS, LABELS, mining="hardest"), "unknown mining"),
        (lambda: triplet_margin_loss(EMBEDDINGS, LABELS, margin=0.0), "margin must be"),
        (lambda: triplet_margin_loss(EMBEDDINGS, LABELS[:2]), "2 entries but the batch has 4"),
        (lambda: triplet_margin_loss(EMBEDDINGS[0], LABELS), "shape \\(B, D\\)"),
        (lambda: triplet_margin_loss(EMBEDDINGS, LABELS, distance="dot"), "unknown distance"),
        (lambda: triplet_margin_loss(EMBEDDINGS, LABELS, triplets=(LABELS.float(),) * 3), "integer row indices"),
        (lambda: triplet_margin_loss(EMBEDDINGS, LABELS, triplets=(LABELS, LABELS[:1], LABELS)), "matching lengths"),
        (lambda: mine_triplets(torch.rand(4, 3), LABELS), "square"),
        (lambda: mine_triplets(torch.rand(4, 4), LABELS[:3]), "3 entries but the batch has 4"),
        (lambda: mine_triplets(torch.rand(4, 4), LABELS, strategy="semi-hard"), "unknown"),
        (lambda: mine_triplets(torch.rand(4, 4), LABELS, margin=-1), "margin must be"),
        (lambda: positive_negative_masks(LABELS[None, :]), "1-D"),
        (lambda: ContrastiveLoss(pos_margin=2.0), "pos_margin < neg_margin"),
        (lambda: ContrastiveLoss(distance="hamming"), "unknown distance"),
        (lambda: TripletMarginLoss(mining="random"), "unknown mining"),
        (lambda: TripletMarginLoss(margin=0), "margin must be"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("mining", ["all", "none"])
def test_triplet_stats_share_and_mean_hinge_of_all_valid_triplets_by_brute_force(mining):
    embeddings, labels = random_batch(7, 12, 3)
    loss_fn = TripletMarginLoss(margin=0.5, mining=mining)
    loss_fn(embeddings, labels)
    distances = torch.cdist(embeddings.double(), embeddings.double())
    hinges = [
        max(0.0, float(distances[a, p] - distances[a, n]) + 0.5)
        for a in range(12)
        for p in range(12)
        for n in range(12)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    ]
    stats = loss_fn.last_stats
    assert stats["valid_triplets"] == len(hinges)
    assert stats["active_share_of_valid"] == pytest.approx(np.count_nonzero(hinges) / len(hinges))
    assert stats["mean_hinge_of_valid"] == pytest.approx(np.mean(hinges), rel=1e-5)


def test_triplet_mean_hinge_of_valid_is_not_claimed_for_selective_mining():
    embeddings, labels = random_batch(7, 12, 3)
    loss_fn = TripletMarginLoss(margin=0.5, mining="semihard")
    loss_fn(embeddings, labels)
    assert loss_fn.last_stats["mean_hinge_of_valid"] is None
