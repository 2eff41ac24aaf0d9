"""mlcourse.losses, self-supervised and cross-modal: NT-Xent against pytorch-metric-learning
and a loop, InfoNCE against loops and its symmetries, the adjacency DSSM loss and its draw of
negatives against loops, and the input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

from mlcourse.losses import (
    AdjacencyDSSMLoss,
    InfoNCELoss,
    NTXentLoss,
    adjacency_dssm_loss,
    draw_negatives,
    easy_negative_fraction,
    info_nce_loss,
    nt_xent_loss,
)

TIGHT = dict(rtol=1e-10, atol=1e-12)
# (seed, batch size, embedding dimension)
BATCHES = [(0, 2, 3), (1, 7, 4), (2, 16, 8), (3, 33, 5)]
TEMPERATURES = [0.05, 0.1, 0.5, 1.0]


def random_pair(seed, batch_size, dim, dtype=torch.float64):
    """Two (B, D) tensors requiring grad, the second near the first so that the losses are
    neither trivial nor saturated."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    second = first + 0.7 * torch.randn(batch_size, dim, generator=generator, dtype=dtype)
    return first.requires_grad_(), second.requires_grad_()


def value(loss):
    """A scalar tensor as a Python float (``.item()`` does not warn about the graph)."""
    return loss.item()


def cosine(x, y):
    dot = sum(a * b for a, b in zip(x, y))
    return dot / math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))


def row_cross_entropy(scores, target):
    """-log softmax(scores)[target], with math only (scores: a list of floats)."""
    return -(scores[target] - math.log(sum(math.exp(s) for s in scores)))


# --------------------------------------------------------------------------------------------
# NT-Xent
# --------------------------------------------------------------------------------------------


def nt_xent_loop(first, second, temperature):
    views = first.tolist() + second.tolist()
    batch_size = len(first)
    losses = []
    for a in range(2 * batch_size):
        partner = (a + batch_size) % (2 * batch_size)
        numerator = math.exp(cosine(views[a], views[partner]) / temperature)
        denominator = sum(math.exp(cosine(views[a], views[k]) / temperature) for k in range(2 * batch_size) if k != a)
        losses.append(-math.log(numerator / denominator))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES)
@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_nt_xent_equals_pml_values_and_gradients(seed, batch_size, dim, temperature):
    first, second = random_pair(seed, batch_size, dim)
    ours = nt_xent_loss(first, second, temperature)
    our_gradients = torch.autograd.grad(ours, (first, second))

    labels = torch.cat([torch.arange(batch_size), torch.arange(batch_size)])
    theirs = pml_losses.NTXentLoss(temperature=temperature)(torch.cat([first, second]), labels)
    their_gradients = torch.autograd.grad(theirs, (first, second))

    torch.testing.assert_close(ours, theirs, **TIGHT)
    for our_gradient, their_gradient in zip(our_gradients, their_gradients):
        torch.testing.assert_close(our_gradient, their_gradient, **TIGHT)


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES[:3])
@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_nt_xent_equals_loop(seed, batch_size, dim, temperature):
    first, second = random_pair(seed, batch_size, dim)
    expected = nt_xent_loop(first, second, temperature)
    assert value(nt_xent_loss(first, second, temperature)) == pytest.approx(expected, rel=1e-10)
    module = NTXentLoss(temperature=temperature)
    assert value(module(first, second)) == pytest.approx(expected, rel=1e-10)


def test_nt_xent_is_symmetric_in_the_views_and_float32_works():
    first, second = random_pair(5, 10, 6, torch.float32)
    torch.testing.assert_close(nt_xent_loss(first, second), nt_xent_loss(second, first))
    loss = nt_xent_loss(first, second)
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(first.grad).all() and torch.isfinite(second.grad).all()


# --------------------------------------------------------------------------------------------
# InfoNCE
# --------------------------------------------------------------------------------------------


def info_nce_loop(queries, keys, temperature, symmetric):
    queries, keys = queries.tolist(), keys.tolist()
    batch_size = len(queries)
    forward = [
        row_cross_entropy([cosine(queries[i], keys[j]) / temperature for j in range(batch_size)], i)
        for i in range(batch_size)
    ]
    backward = [
        row_cross_entropy([cosine(keys[j], queries[i]) / temperature for i in range(batch_size)], j)
        for j in range(batch_size)
    ]
    forward_mean = sum(forward) / batch_size
    if not symmetric:
        return forward_mean
    return (forward_mean + sum(backward) / batch_size) / 2


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES[:3])
@pytest.mark.parametrize("temperature", [0.07, 1.0])
@pytest.mark.parametrize("symmetric", [True, False])
def test_info_nce_equals_loop(seed, batch_size, dim, temperature, symmetric):
    queries, keys = random_pair(seed, batch_size, dim)
    expected = info_nce_loop(queries, keys, temperature, symmetric)
    ours = info_nce_loss(queries, keys, temperature, symmetric)
    assert value(ours) == pytest.approx(expected, rel=1e-10)
    module = InfoNCELoss(temperature=temperature, symmetric=symmetric)
    assert value(module(queries, keys)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES)
def test_info_nce_equals_cross_entropy_computed_another_way(seed, batch_size, dim):
    """With explicit one-hot targets and log_softmax over each axis."""
    queries, keys = random_pair(seed, batch_size, dim)
    temperature = 0.2
    cosines = F.cosine_similarity(queries[:, None, :], keys[None, :, :], dim=2)
    log_rows = F.log_softmax(cosines / temperature, dim=1)
    log_columns = F.log_softmax(cosines / temperature, dim=0)
    one_hot = torch.eye(batch_size, dtype=torch.float64)
    forward = -(log_rows * one_hot).sum() / batch_size
    backward = -(log_columns * one_hot).sum() / batch_size
    torch.testing.assert_close(info_nce_loss(queries, keys, temperature, symmetric=False), forward, **TIGHT)
    torch.testing.assert_close(info_nce_loss(queries, keys, temperature), (forward + backward) / 2, **TIGHT)
    # The one-way loss from keys to queries is the one-way loss with the roles swapped.
    torch.testing.assert_close(info_nce_loss(keys, queries, temperature, symmetric=False), backward, **TIGHT)


def test_info_nce_gradients_reach_both_encoders():
    queries, keys = random_pair(4, 9, 5)
    info_nce_loss(queries, keys).backward()
    assert queries.grad.abs().sum() > 0 and keys.grad.abs().sum() > 0


@pytest.mark.parametrize("symmetric", [True, False])
def test_info_nce_ignores_the_order_of_the_batch(symmetric):
    queries, keys = random_pair(6, 12, 4)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        info_nce_loss(queries[order], keys[order], 0.1, symmetric),
        info_nce_loss(queries, keys, 0.1, symmetric),
        **TIGHT,
    )


def test_info_nce_of_identical_well_separated_embeddings_is_near_zero():
    embeddings = torch.eye(6, dtype=torch.float64) * 3.0  # orthogonal directions
    assert value(info_nce_loss(embeddings, embeddings, temperature=0.01)) < 1e-10
    # A high temperature blurs the softmax: the same embeddings cost more.
    assert value(info_nce_loss(embeddings, embeddings, temperature=1.0)) > 0.5


# --------------------------------------------------------------------------------------------
# Adjacency DSSM: the draw of negatives
# --------------------------------------------------------------------------------------------


def random_exclude(seed, batch_size, fraction=0.3):
    """A random symmetric (B, B) exclusion mask, diagonal included."""
    generator = torch.Generator().manual_seed(seed)
    exclude = torch.rand(batch_size, batch_size, generator=generator) < fraction
    return exclude | exclude.T | torch.eye(batch_size, dtype=torch.bool)


@pytest.mark.parametrize("batch_size, n_negatives", [(2, 1), (5, 4), (12, 3), (40, 10)])
@pytest.mark.parametrize("with_exclude", [False, True])
def test_draw_negatives_properties(batch_size, n_negatives, with_exclude):
    exclude = None
    if with_exclude:
        # Exclude the row's next neighbour (clips of the same recording, say); there remain
        # B - 2 candidates, enough for every case but (2, 1) and (5, 4).
        exclude = torch.zeros(batch_size, batch_size, dtype=torch.bool)
        exclude[torch.arange(batch_size), (torch.arange(batch_size) + 1) % batch_size] = True
        if n_negatives > batch_size - 2:
            with pytest.raises(ValueError, match="candidate negatives"):
                draw_negatives(batch_size, n_negatives, torch.Generator(), exclude)
            return
    negatives = draw_negatives(batch_size, n_negatives, torch.Generator().manual_seed(3), exclude)
    assert negatives.shape == (batch_size, n_negatives)
    assert negatives.dtype == torch.int64 and negatives.device.type == "cpu"
    rows = torch.arange(batch_size)[:, None]
    assert (negatives != rows).all(), "a query drew itself as a negative"
    assert ((negatives >= 0) & (negatives < batch_size)).all()
    for row in negatives.tolist():
        assert len(set(row)) == n_negatives, "a row drew the same negative twice"
    if exclude is not None:
        assert not exclude[rows.expand_as(negatives), negatives].any()


def test_draw_negatives_is_reproducible_and_covers_all_candidates():
    first = draw_negatives(10, 3, torch.Generator().manual_seed(7))
    again = draw_negatives(10, 3, torch.Generator().manual_seed(7))
    other = draw_negatives(10, 3, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # Over many draws, every other row turns up as a negative of row 0.
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(50):
        seen.update(draw_negatives(10, 3, generator)[0].tolist())
    assert seen == set(range(1, 10))


def test_draw_negatives_with_random_exclusions():
    exclude = random_exclude(1, 20, fraction=0.2)
    negatives = draw_negatives(20, 5, torch.Generator().manual_seed(0), exclude)
    rows = torch.arange(20)[:, None].expand_as(negatives)
    assert not exclude[rows, negatives].any()


@pytest.mark.parametrize("batch_size, n_negatives", [(5, 0), (5, 5), (5, 9), (5, -1), (5, 2.0), (5, True), (1, 1)])
def test_draw_negatives_rejects_bad_counts(batch_size, n_negatives):
    with pytest.raises(ValueError, match="n_negatives|batch_size"):
        draw_negatives(batch_size, n_negatives, torch.Generator())


def test_draw_negatives_rejects_bad_exclude():
    with pytest.raises(ValueError, match="exclude must be a .5, 5. bool tensor"):
        draw_negatives(5, 2, exclude=torch.zeros(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool tensor"):
        draw_negatives(5, 2, exclude=torch.zeros(5, 5))


# --------------------------------------------------------------------------------------------
# Adjacency DSSM: the loss
# --------------------------------------------------------------------------------------------


def similarity(x, y):
    return 1.0 / (1.0 + math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y))))


def dssm_loop(queries, positives, candidates, scale):
    """Mean over queries of -log P(positive | query); candidates[i]: negatives of query i."""
    queries, positives = queries.tolist(), positives.tolist()
    total = 0.0
    for i, negatives in enumerate(candidates):
        scores = [scale * similarity(queries[i], positives[i])]
        scores += [scale * similarity(queries[i], positives[j]) for j in negatives]
        total += row_cross_entropy(scores, 0)
    return total / len(candidates)


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES)
@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_adjacency_dssm_with_all_negatives_equals_loop(seed, batch_size, dim, scale):
    queries, positives = random_pair(seed, batch_size, dim)
    all_others = [[j for j in range(batch_size) if j != i] for i in range(batch_size)]
    expected = dssm_loop(queries, positives, all_others, scale)
    ours = adjacency_dssm_loss(queries, positives, scale=scale)
    assert value(ours) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES[1:])
def test_adjacency_dssm_with_exclusions_equals_loop(seed, batch_size, dim):
    queries, positives = random_pair(seed, batch_size, dim)
    exclude = random_exclude(seed, batch_size)
    allowed = [[j for j in range(batch_size) if j != i and not exclude[i, j]] for i in range(batch_size)]
    expected = dssm_loop(queries, positives, allowed, 2.0)
    ours = adjacency_dssm_loss(queries, positives, scale=2.0, exclude=exclude)
    assert value(ours) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES[1:])
@pytest.mark.parametrize("with_exclude", [False, True])
def test_adjacency_dssm_with_drawn_negatives_equals_loop(seed, batch_size, dim, with_exclude):
    queries, positives = random_pair(seed, batch_size, dim)
    exclude = torch.eye(batch_size, dtype=torch.bool) if with_exclude else None
    if with_exclude:
        exclude[0, 1] = exclude[1, 0] = True
    n_negatives = batch_size // 2
    # The loss and the loop see the very same draw: same seed, same function.
    drawn = draw_negatives(batch_size, n_negatives, torch.Generator().manual_seed(11), exclude)
    expected = dssm_loop(queries, positives, drawn.tolist(), 1.0)
    ours = adjacency_dssm_loss(
        queries, positives, n_negatives=n_negatives, generator=torch.Generator().manual_seed(11), exclude=exclude
    )
    assert value(ours) == pytest.approx(expected, rel=1e-10)


def test_adjacency_dssm_module_draws_from_its_own_seed():
    queries, positives = random_pair(9, 16, 4)
    losses = [AdjacencyDSSMLoss(n_negatives=3, seed=5)(queries, positives) for _ in range(2)]
    assert value(losses[0]) == value(losses[1])
    # The module's stream moves on, so its second call draws other negatives.
    module = AdjacencyDSSMLoss(n_negatives=3, seed=5)
    first_call, second_call = module(queries, positives), module(queries, positives)
    assert value(first_call) == value(losses[0])
    assert value(second_call) != value(first_call)
    # The first draw is the one draw_negatives makes from the same seed.
    drawn = draw_negatives(16, 3, torch.Generator().manual_seed(5))
    assert value(first_call) == pytest.approx(dssm_loop(queries, positives, drawn.tolist(), 1.0), rel=1e-10)
    assert set(module.last_stats) == {"loss", "easy_negative_fraction"}
    assert module.last_stats["loss"] == pytest.approx(value(second_call))


def test_adjacency_dssm_module_without_sampling_is_the_function():
    queries, positives = random_pair(3, 10, 4)
    module = AdjacencyDSSMLoss(scale=3.0)
    torch.testing.assert_close(module(queries, positives), adjacency_dssm_loss(queries, positives, scale=3.0), **TIGHT)


def test_adjacency_dssm_is_a_mean_over_queries():
    """-log of the product of probabilities, divided by B."""
    queries, positives = random_pair(2, 8, 3)
    similarities = 1 / (1 + torch.cdist(queries, positives))
    probabilities = torch.softmax(similarities, dim=1).diagonal()
    product = probabilities.prod()
    torch.testing.assert_close(adjacency_dssm_loss(queries, positives), -torch.log(product) / 8, **TIGHT)


@pytest.mark.parametrize("n_negatives", [None, 2])
def test_adjacency_dssm_gradcheck(n_negatives):
    queries, positives = random_pair(0, 5, 3)

    def loss(q, p):
        # A fresh generator on each call: the finite differences must see the same draw.
        return adjacency_dssm_loss(q, p, n_negatives=n_negatives, scale=2.0, generator=torch.Generator().manual_seed(1))

    assert torch.autograd.gradcheck(loss, (queries, positives))


def test_adjacency_dssm_rewards_finding_the_adjacent_clip():
    generator = torch.Generator().manual_seed(0)
    queries = 10 * torch.randn(12, 4, generator=generator, dtype=torch.float64)
    near = queries + 0.01 * torch.randn(12, 4, generator=generator, dtype=torch.float64)
    shuffled = near[torch.roll(torch.arange(12), 1)]
    right, wrong = adjacency_dssm_loss(queries, near), adjacency_dssm_loss(queries, shuffled)
    assert value(right) < value(wrong)
    # The floor of a perfect embedding with n negatives per query: log(1 + n / e).
    far_apart = 1e6 * torch.eye(12, dtype=torch.float64)
    assert value(adjacency_dssm_loss(far_apart, far_apart)) == pytest.approx(math.log(1 + 11 / math.e), rel=1e-5)


# --------------------------------------------------------------------------------------------
# Easy negatives
# --------------------------------------------------------------------------------------------


def easy_fraction_numpy(queries, positives, exclude=None):
    q, p = queries.detach().numpy(), positives.detach().numpy()
    distances = np.sqrt(((q[:, None, :] - p[None, :, :]) ** 2).sum(axis=2))
    allowed = ~np.eye(len(q), dtype=bool)
    if exclude is not None:
        allowed &= ~exclude.numpy()
    easy = distances > np.diag(distances)[:, None]
    return (easy & allowed).sum() / allowed.sum()


@pytest.mark.parametrize("seed, batch_size, dim", BATCHES)
@pytest.mark.parametrize("with_exclude", [False, True])
def test_easy_negative_fraction_equals_numpy(seed, batch_size, dim, with_exclude):
    queries, positives = random_pair(seed, batch_size, dim)
    exclude = random_exclude(seed, batch_size, 0.2) if with_exclude else None
    if exclude is not None and exclude.all():
        exclude[0, 1] = False
    expected = easy_fraction_numpy(queries, positives, exclude)
    assert easy_negative_fraction(queries, positives, exclude) == pytest.approx(expected)


def test_easy_negative_fraction_extremes():
    points = torch.tensor([[0.0], [1.0], [10.0]])
    assert easy_negative_fraction(points, points) == 1.0
    assert easy_negative_fraction(points, points.flip(0)) < 1.0
    everything = torch.ones(3, 3, dtype=torch.bool)
    assert easy_negative_fraction(points, points, exclude=everything) == 0.0


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------

TWO_TENSOR_LOSSES = [nt_xent_loss, info_nce_loss, adjacency_dssm_loss, easy_negative_fraction]


@pytest.mark.parametrize("loss", TWO_TENSOR_LOSSES)
def test_mismatched_shapes_are_rejected(loss):
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same shape, dtype and device"):
        loss(torch.randn(4, 3), torch.randn(4, 3, dtype=torch.float64))


@pytest.mark.parametrize("loss", TWO_TENSOR_LOSSES)
def test_one_dimensional_and_integer_inputs_are_rejected(loss):
    with pytest.raises(ValueError, match=r"shape \(B, D\)"):
        loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="float tensor"):
        loss(torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long))


@pytest.mark.parametrize("loss", TWO_TENSOR_LOSSES)
def test_a_batch_of_one_is_rejected(loss):
    with pytest.raises(ValueError, match="at least 2 rows"):
        loss(torch.randn(1, 3), torch.randn(1, 3))


@pytest.mark.parametrize("temperature", [0, -0.1, None])
def test_bad_temperatures_are_rejected(temperature):
    first, second = torch.randn(4, 3), torch.randn(4, 3)
    for call in (
        lambda: nt_xent_loss(first, second, temperature),
        lambda: info_nce_loss(first, second, temperature),
        lambda: NTXentLoss(temperature),
        lambda: InfoNCELoss(temperature),
    ):
        with pytest.raises(ValueError, match="temperature"):
            call()


def test_adjacency_dssm_rejects_bad_arguments():
    queries, positives = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="only 3 other rows"):
        adjacency_dssm_loss(queries, positives, n_negatives=4)
    with pytest.raises(ValueError, match="n_negatives must be None or an integer >= 1"):
        adjacency_dssm_loss(queries, positives, n_negatives=0)
    with pytest.raises(ValueError, match="scale"):
        adjacency_dssm_loss(queries, positives, scale=0.0)
    with pytest.raises(ValueError, match="exclude"):
        adjacency_dssm_loss(queries, positives, exclude=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="n_negatives"):
        AdjacencyDSSMLoss(n_negatives=0)
    with pytest.raises(ValueError, match="scale"):
        AdjacencyDSSMLoss(scale=-1.0)
    with pytest.raises(ValueError, match="only 3 other rows"):
        AdjacencyDSSMLoss(n_negatives=4)(queries, positives)
