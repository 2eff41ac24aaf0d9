"""mlcourse.losses.pairs: SupCon and multi-similarity against pytorch-metric-learning and brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from mlcourse.losses import MultiSimilarityLoss, SupConLoss, multi_similarity_loss, supcon_loss

from pml_reference import BATCHES, DTYPES, random_batch

TEMPERATURES = [0.05, 0.1, 0.5, 1.0]
# (alpha, beta, base): pytorch-metric-learning's defaults, a softer and a sharper setting.
MS_SETTINGS = [(2.0, 50.0, 0.5), (1.0, 10.0, 0.0), (4.0, 40.0, 0.8)]
# None: no mining, every pair; otherwise the mining's epsilon.
MINING = [None, 0.1, 0.3]
# BATCHES (from pml_reference) end with a sample alone in its class: an anchor without positive.
ALL_BATCHES = BATCHES + [(3, 32, 8)]


def value_and_gradient(loss_fn, embeddings):
    """A loss's value and its gradient with respect to the embeddings, by torch.autograd.grad."""
    embeddings = embeddings.detach().clone().requires_grad_(True)
    loss = loss_fn(embeddings)
    (gradient,) = torch.autograd.grad(loss, embeddings)
    return loss.detach(), gradient


def pml_multi_similarity(embeddings, labels, alpha, beta, base, epsilon):
    """pytorch-metric-learning's loss, after its MultiSimilarityMiner unless epsilon is None."""
    pairs = None if epsilon is None else pml_miners.MultiSimilarityMiner(epsilon)(embeddings, labels)
    return pml_losses.MultiSimilarityLoss(alpha, beta, base)(embeddings, labels, pairs)


def ours_multi_similarity(embeddings, labels, alpha, beta, base, epsilon):
    if epsilon is None:
        return multi_similarity_loss(embeddings, labels, alpha, beta, base, mine=False)
    return multi_similarity_loss(embeddings, labels, alpha, beta, base, mine=True, epsilon=epsilon)


# --------------------------------------------------------------------------------------------
# Brute force: Python loops over anchors and pairs, floats only
# --------------------------------------------------------------------------------------------


def cosine_table(embeddings):
    vectors = embeddings.tolist()
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    return [
        [sum(x * y for x, y in zip(u, v)) / (nu * nv) for v, nv in zip(vectors, norms)] for u, nu in zip(vectors, norms)
    ]


def supcon_loop(embeddings, labels, temperature):
    s, labels = cosine_table(embeddings), labels.tolist()
    if len(set(labels)) < 2:
        return 0.0
    losses = []
    for i in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(s[i][k] / temperature) for k in range(len(labels)) if k != i)
        log_probabilities = [math.log(math.exp(s[i][p] / temperature) / denominator) for p in positives]
        losses.append(-sum(log_probabilities) / len(positives))
    return sum(losses) / len(losses) if losses else 0.0


def multi_similarity_loop(embeddings, labels, alpha, beta, base, epsilon):
    s, labels = cosine_table(embeddings), labels.tolist()
    total = 0.0
    for i in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != i and labels[p] == labels[i]]
        negatives = [n for n in range(len(labels)) if labels[n] != labels[i]]
        if epsilon is not None:
            kept_positives, kept_negatives = [], []
            for p in positives:
                if negatives and s[i][p] - epsilon < max(s[i][n] for n in negatives):
                    kept_positives.append(p)
            for n in negatives:
                if positives and s[i][n] + epsilon > min(s[i][p] for p in positives):
                    kept_negatives.append(n)
            positives, negatives = kept_positives, kept_negatives
        pull = math.log(1 + sum(math.exp(-alpha * (s[i][p] - base)) for p in positives)) / alpha
        push = math.log(1 + sum(math.exp(beta * (s[i][n] - base)) for n in negatives)) / beta
        total += pull + push
    return total / len(labels)


# --------------------------------------------------------------------------------------------
# Supervised contrastive loss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), ALL_BATCHES)
def test_supcon_matches_pml(seed, batch_size, n_classes, temperature, dtype):
    embeddings, labels = random_batch(seed, batch_size, n_classes, dtype)
    ours = value_and_gradient(lambda e: supcon_loss(e, labels, temperature), embeddings)
    expected = value_and_gradient(lambda e: pml_losses.SupConLoss(temperature)(e, labels), embeddings)
    assert ours[0] > 0 and ours[0].dtype == dtype
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("temperature", [0.1, 1.0])
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), ALL_BATCHES)
def test_supcon_matches_a_brute_force_loop(seed, batch_size, n_classes, temperature):
    embeddings, labels = random_batch(seed, batch_size, n_classes)
    expected = supcon_loop(embeddings, labels, temperature)
    assert float(supcon_loss(embeddings, labels, temperature)) == pytest.approx(expected, rel=1e-10)


def test_supcon_leaves_out_anchors_without_positives():
    # Samples 2 and 3 are alone in their classes: the mean is over anchors 0 and 1 only.
    embeddings, _ = random_batch(5, 4, 2)
    labels = torch.tensor([0, 0, 1, 2])
    s = cosine_table(embeddings)
    per_anchor = [-math.log(math.exp(s[i][1 - i]) / sum(math.exp(s[i][k]) for k in range(4) if k != i)) for i in (0, 1)]
    assert float(supcon_loss(embeddings, labels, 1.0)) == pytest.approx(sum(per_anchor) / 2, rel=1e-10)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4], [3, 3, 3, 3, 3], [0]], ids=["no-positive", "one-class", "one"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_supcon_without_positives_or_negatives_is_zero_like_pml(labels, dtype):
    embeddings, _ = random_batch(6, len(labels), 2, dtype)
    labels = torch.tensor(labels)
    ours = value_and_gradient(lambda e: supcon_loss(e, labels), embeddings)
    expected = value_and_gradient(lambda e: pml_losses.SupConLoss()(e, labels), embeddings)
    assert float(ours[0]) == 0.0 and not ours[1].any()
    torch.testing.assert_close(ours, expected)


def test_supcon_sees_only_directions():
    embeddings, labels = random_batch(7, 12, 3)
    scales = torch.rand(12, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    torch.testing.assert_close(supcon_loss(embeddings * scales, labels), supcon_loss(embeddings, labels))


# --------------------------------------------------------------------------------------------
# Multi-similarity loss
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("epsilon", MINING, ids=lambda e: "all-pairs" if e is None else f"mine-{e}")
@pytest.mark.parametrize(("alpha", "beta", "base"), MS_SETTINGS)
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), ALL_BATCHES)
def test_multi_similarity_matches_pml(seed, batch_size, n_classes, alpha, beta, base, epsilon, dtype):
    embeddings, labels = random_batch(seed, batch_size, n_classes, dtype)
    if epsilon is not None:
        # pytorch-metric-learning returns 0 when at most one pair of each kind is mined (see
        # test_multi_similarity_counts_a_single_mined_pair); these batches mine more.
        mined = pml_miners.MultiSimilarityMiner(epsilon)(embeddings, labels)
        assert max(len(indices) for indices in mined) > 1
    settings = (alpha, beta, base, epsilon)
    ours = value_and_gradient(lambda e: ours_multi_similarity(e, labels, *settings), embeddings)
    expected = value_and_gradient(lambda e: pml_multi_similarity(e, labels, *settings), embeddings)
    assert ours[0] > 0 and ours[0].dtype == dtype
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("epsilon", MINING)
@pytest.mark.parametrize(("alpha", "beta", "base"), MS_SETTINGS)
@pytest.mark.parametrize(("seed", "batch_size", "n_classes"), ALL_BATCHES)
def test_multi_similarity_matches_a_brute_force_loop(seed, batch_size, n_classes, alpha, beta, base, epsilon):
    embeddings, labels = random_batch(seed, batch_size, n_classes)
    expected = multi_similarity_loop(embeddings, labels, alpha, beta, base, epsilon)
    ours = ours_multi_similarity(embeddings, labels, alpha, beta, base, epsilon)
    assert float(ours) == pytest.approx(expected, rel=1e-10)


def test_multi_similarity_mining_drops_pairs_and_defaults_to_pml():
    embeddings, labels = random_batch(2, 40, 6)
    mined = multi_similarity_loss(embeddings, labels)
    assert float(mined) < float(multi_similarity_loss(embeddings, labels, mine=False))
    torch.testing.assert_close(mined, pml_multi_similarity(embeddings, labels, 2, 50, 0.5, 0.1))
    torch.testing.assert_close(mined, multi_similarity_loss(embeddings, labels, 2.0, 50.0, 0.5, True, 0.1))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3, 4], [3, 3, 3, 3, 3]], ids=["no-positive", "one-class"])
@pytest.mark.parametrize("epsilon", MINING)
@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_similarity_with_one_kind_of_pair_matches_pml(labels, epsilon, dtype):
    # Mining keeps nothing (a positive needs a negative to compare with, and the other way);
    # without mining, the pairs of the one kind still count.
    embeddings, _ = random_batch(8, len(labels), 2, dtype)
    labels = torch.tensor(labels)
    settings = (2.0, 50.0, 0.5, epsilon)
    ours = value_and_gradient(lambda e: ours_multi_similarity(e, labels, *settings), embeddings)
    expected = value_and_gradient(lambda e: pml_multi_similarity(e, labels, *settings), embeddings)
    assert (float(ours[0]) == 0.0) == (epsilon is not None)
    torch.testing.assert_close(ours, expected)


def test_multi_similarity_counts_a_single_mined_pair():
    # The docstring's example: mining keeps one positive and one negative pair, both of
    # anchor 1. pytorch-metric-learning returns 0 for so few pairs; ours counts them.
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    mined = pml_miners.MultiSimilarityMiner(0.1)(embeddings, labels)
    assert [index.tolist() for index in mined] == [[1], [0], [1], [2]]
    assert float(pml_multi_similarity(embeddings, labels, 2.0, 50.0, 0.5, 0.1)) == 0.0
    anchor_1 = math.log(1 + math.exp(-2 * (0.6 - 0.5))) / 2 + math.log(1 + math.exp(50 * (0.8 - 0.5))) / 50
    assert float(multi_similarity_loss(embeddings, labels)) == pytest.approx(anchor_1 / 3, rel=1e-12)


def test_multi_similarity_gradient_passes_gradcheck():
    embeddings, labels = random_batch(9, 10, 3)
    embeddings.requires_grad_(True)
    for mine in (False, True):
        assert torch.autograd.gradcheck(lambda e: multi_similarity_loss(e, labels, mine=mine), (embeddings,))
    assert torch.autograd.gradcheck(lambda e: supcon_loss(e, labels), (embeddings,))


# --------------------------------------------------------------------------------------------
# Modules and argument checks
# --------------------------------------------------------------------------------------------


def test_modules_equal_the_functions():
    embeddings, labels = random_batch(10, 20, 4)
    assert torch.equal(SupConLoss(0.2)(embeddings, labels), supcon_loss(embeddings, labels, 0.2))
    module = MultiSimilarityLoss(alpha=1.0, beta=20.0, base=0.3, mine=True, epsilon=0.2)
    assert torch.equal(module(embeddings, labels), multi_similarity_loss(embeddings, labels, 1.0, 20.0, 0.3, True, 0.2))
    assert "temperature=0.2" in repr(SupConLoss(0.2))
    assert "alpha=1.0, beta=20.0, base=0.3, mine=True, epsilon=0.2" in repr(module)


BAD_INPUTS = [
    (torch.zeros(4), torch.zeros(4, dtype=torch.long), "shape \\(B, D\\)"),
    (torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long), "shape \\(B, D\\)"),
    (torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long), "float tensor"),
    ([[0.0, 1.0], [1.0, 0.0]], torch.zeros(2, dtype=torch.long), "float tensor"),
    (torch.zeros(4, 3), torch.zeros(3, dtype=torch.long), "labels has 3 entries but the batch has 4"),
    (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.long), "1-D"),
    (torch.zeros(4, 3), None, "labels are required"),
]


@pytest.mark.parametrize(("embeddings", "labels", "message"), BAD_INPUTS)
@pytest.mark.parametrize("loss", [supcon_loss, multi_similarity_loss, SupConLoss(), MultiSimilarityLoss()])
def test_bad_inputs_are_refused(loss, embeddings, labels, message):
    with pytest.raises(ValueError, match=message):
        loss(embeddings, labels)


@pytest.mark.parametrize("temperature", [0, 0.0, -0.1, True, "0.1", None, float("nan")])
def test_supcon_refuses_a_bad_temperature(temperature):
    embeddings, labels = random_batch(0, 6, 2)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        supcon_loss(embeddings, labels, temperature)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        SupConLoss(temperature)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alpha": 0.0}, "alpha must be a number > 0"),
        ({"alpha": -2.0}, "alpha must be a number > 0"),
        ({"beta": 0}, "beta must be a number > 0"),
        ({"beta": "50"}, "beta must be a number > 0"),
        ({"base": float("nan")}, "base must be a finite number"),
        ({"base": float("inf")}, "base must be a finite number"),
        ({"base": None}, "base must be a finite number"),
        ({"base": True}, "base must be a finite number"),
        ({"epsilon": -0.1}, "epsilon must be a number >= 0"),
        ({"epsilon": None}, "epsilon must be a number >= 0"),
        ({"epsilon": float("nan")}, "epsilon must be a number >= 0"),
    ],
)
def test_multi_similarity_refuses_bad_settings(settings, message):
    embeddings, labels = random_batch(0, 6, 2)
    with pytest.raises(ValueError, match=message):
        multi_similarity_loss(embeddings, labels, **settings)
    with pytest.raises(ValueError, match=message):
        MultiSimilarityLoss(**settings)
