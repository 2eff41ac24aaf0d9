"""mlcourse.losses.pairs: the contrastive loss against pytorch-metric-learning and against brute-force loops."""

from __future__ import annotations

import itertools

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses

from mlcourse.losses import ContrastiveLoss, contrastive_loss, pairwise_distances

from pml_reference import BATCHES, DISTANCES, DTYPES, mean_of_nonzero, pml_distance, random_batch, value_and_gradient


def pml_contrastive_loss(embeddings, labels, pos_margin, neg_margin, distance, pairs=None):
    if distance == "cosine":
        # pml compares similarities: our distance margin m is the similarity 1 - m.
        pos_margin, neg_margin = 1 - pos_margin, 1 - neg_margin
    loss = pml_losses.ContrastiveLoss(pos_margin, neg_margin, distance=pml_distance(distance))
    return loss(embeddings, labels, pairs)


# --------------------------------------------------------------------------------------------
# Contrastive loss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), BATCHES)
def test_contrastive_loss_matches_pml(distance, dtype, seed, batch_size, n_classes):
    embeddings, labels = random_batch(seed, batch_size, n_classes, dtype)
    margins = {"euclidean": (0.5, 4.0), "squared": (1.0, 16.0), "cosine": (0.2, 0.9)}[distance]
    ours = value_and_gradient(lambda e: contrastive_loss(e, labels, *margins, distance), embeddings)
    expected = value_and_gradient(lambda e: pml_contrastive_loss(e, labels, *margins, distance), embeddings)
    assert ours[0] > 0
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive_loss_with_default_margins_matches_pml(dtype):
    embeddings, labels = random_batch(10, 24, 3, dtype)
    embeddings = torch.nn.functional.normalize(embeddings, dim=1)
    ours = value_and_gradient(lambda e: contrastive_loss(e, labels), embeddings)
    expected = value_and_gradient(lambda e: pml_contrastive_loss(e, labels, 0.0, 1.0, "euclidean"), embeddings)
    torch.testing.assert_close(ours, expected)


def brute_force_contrastive(distances, labels, pos_margin, neg_margin):
    positive_terms, negative_terms = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        if labels[i] == labels[j]:
            positive_terms.append(max(float(distances[i, j]) - pos_margin, 0.0))
        else:
            negative_terms.append(max(neg_margin - float(distances[i, j]), 0.0))
    return sum(mean_of_nonzero(terms) for terms in (positive_terms, negative_terms))


@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), BATCHES)
def test_contrastive_loss_matches_a_brute_force_loop(seed, batch_size, n_classes):
    embeddings, labels = random_batch(seed, batch_size, n_classes)
    distances = pairwise_distances(embeddings)
    expected = brute_force_contrastive(distances, labels.tolist(), 1.0, 4.0)
    assert float(contrastive_loss(embeddings, labels, 1.0, 4.0)) == pytest.approx(expected)


@pytest.mark.parametrize("distance", DISTANCES)
def test_contrastive_loss_with_explicit_pairs_matches_pml(distance):
    embeddings, labels = random_batch(11, 12, 3)
    generator = torch.Generator().manual_seed(0)
    pairs = tuple(torch.randint(0, 12, (9,), generator=generator) for _ in range(4))
    margins = (0.1, 0.9) if distance == "cosine" else (0.5, 4.0)
    ours = value_and_gradient(lambda e: contrastive_loss(e, None, *margins, distance, pairs=pairs), embeddings)
    expected = value_and_gradient(lambda e: pml_contrastive_loss(e, labels, *margins, distance, pairs), embeddings)
    torch.testing.assert_close(ours, expected)


def test_contrastive_loss_counts_a_single_given_pair():
    # pml returns 0 when each kind has at most one pair; ours averages what it is given.
    embeddings = torch.tensor([[0.0, 0.0], [0.0, 0.5], [0.0, 0.8]])
    pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2]))
    loss = contrastive_loss(embeddings, None, pairs=pairs)
    assert float(loss) == pytest.approx(0.5 + 0.2)


def test_contrastive_loss_without_positive_pairs_is_differentiable():
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = contrastive_loss(embeddings, torch.tensor([0, 1, 2, 3]), neg_margin=100.0)
    expected = pml_contrastive_loss(embeddings, torch.tensor([0, 1, 2, 3]), 0.0, 100.0, "euclidean")
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


def test_contrastive_module_equals_the_function_and_records_stats():
    embeddings, labels = random_batch(14, 20, 4)
    loss_fn = ContrastiveLoss(pos_margin=0.5, neg_margin=3.0, distance="euclidean")
    assert loss_fn.last_stats == {}
    loss = loss_fn(embeddings, labels)
    assert torch.equal(loss, contrastive_loss(embeddings, labels, 0.5, 3.0))
    same = labels[:, None] == labels[None, :]
    n_positive = int((same.sum() - len(labels)) // 2)
    distances = pairwise_distances(embeddings)
    upper = torch.ones_like(same).triu(1)
    assert loss_fn.last_stats == {
        "loss": loss.item(),
        "positive_pairs": n_positive,
        "negative_pairs": len(labels) * (len(labels) - 1) // 2 - n_positive,
        "active_positive_pairs": int((same & upper & (distances > 0.5)).sum()),
        "active_negative_pairs": int((~same & upper & (distances < 3.0)).sum()),
    }
