"""mlcourse.losses and mlcourse.miners: distances against scipy, miners and losses against
pytorch-metric-learning and against explicit loops, and their input checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.spatial.distance
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.utils import loss_and_miner_utils

import mlcourse.miners
from mlcourse.losses import (
    ContrastiveLoss,
    TripletMarginLoss,
    contrastive_loss,
    pairwise_distances,
    triplet_margin_loss,
)
from mlcourse.miners import mine_triplets, positive_negative_masks, triplet_gaps

DTYPES = [torch.float32, torch.float64]
DISTANCES = ["euclidean", "squared", "cosine"]
MARGIN_STRATEGIES = ["all", "hard", "semihard", "easy"]
STRATEGIES = MARGIN_STRATEGIES + ["batch_hard", "none"]
SCIPY_NAMES = {"euclidean": "euclidean", "squared": "sqeuclidean", "cosine": "cosine"}
# (seed, batch size, number of classes): every batch also gets a class of a single member.
BATCHES = [(0, 6, 2), (1, 17, 4), (2, 40, 6)]


def random_batch(seed, batch_size, n_classes, dtype=torch.float64, n_features=8):
    """Random embeddings and labels; the last sample is alone in its class."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(batch_size, n_features, generator=generator, dtype=dtype)
    labels = torch.randint(0, n_classes, (batch_size - 1,), generator=generator)
    return embeddings, torch.cat([labels, torch.tensor([n_classes])])


def pml_distance(distance):
    """pytorch-metric-learning's distance object that matches ours (no normalisation)."""
    if distance == "cosine":
        return pml_distances.CosineSimilarity()
    power = 2 if distance == "squared" else 1
    return pml_distances.LpDistance(normalize_embeddings=False, power=power)


def pml_distance_matrix(embeddings, distance):
    """pml's matrix as a distance (smaller = closer), to feed our miner the very same numbers."""
    matrix = pml_distance(distance)(embeddings)
    return 1 - matrix if distance == "cosine" else matrix


def pml_miner(strategy, margin, distance):
    if strategy == "none":
        return None
    if strategy == "batch_hard":
        return pml_miners.BatchHardMiner(distance=pml_distance(distance))
    return pml_miners.TripletMarginMiner(margin, type_of_triplets=strategy, distance=pml_distance(distance))


def pml_triplet_loss(embeddings, labels, margin, strategy, distance):
    miner = pml_miner(strategy, margin, distance)
    triplets = None if miner is None else miner(embeddings, labels)
    loss = pml_losses.TripletMarginLoss(margin, distance=pml_distance(distance))
    return loss(embeddings, labels, triplets)


def pml_contrastive_loss(embeddings, labels, pos_margin, neg_margin, distance, pairs=None):
    if distance == "cosine":
        # pml compares similarities: our distance margin m is the similarity 1 - m.
        pos_margin, neg_margin = 1 - pos_margin, 1 - neg_margin
    loss = pml_losses.ContrastiveLoss(pos_margin, neg_margin, distance=pml_distance(distance))
    return loss(embeddings, labels, pairs)


def value_and_gradient(loss_fn, embeddings):
    """A loss's value and its gradient with respect to a fresh copy of the embeddings."""
    embeddings = embeddings.detach().clone().requires_grad_(True)
    loss = loss_fn(embeddings)
    loss.backward()
    return loss.detach(), embeddings.grad


def as_set(triplets):
    return sorted(zip(*(index.tolist() for index in triplets)))


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("with_y", [False, True])
def test_pairwise_distances_match_scipy(distance, dtype, with_y):
    x, _ = random_batch(0, 30, 3, dtype)
    y = random_batch(1, 20, 3, dtype)[0] if with_y else None
    ours = pairwise_distances(x, y, distance)
    other = x if y is None else y
    expected = scipy.spatial.distance.cdist(x.double().numpy(), other.double().numpy(), SCIPY_NAMES[distance])
    if y is None:
        np.fill_diagonal(expected, 0.0)  # scipy's cosine leaves rounding noise there
    assert ours.dtype == dtype and ours.shape == expected.shape
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours, torch.as_tensor(expected, dtype=dtype), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", ["euclidean", "squared"])
def test_pairwise_distances_match_torch_cdist(distance, dtype):
    x, _ = random_batch(3, 40, 3, dtype)
    expected = torch.cdist(x, x) ** (2 if distance == "squared" else 1)
    expected.fill_diagonal_(0.0)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(pairwise_distances(x, distance=distance), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_diagonal_is_exactly_zero(distance, dtype):
    x = torch.nn.functional.normalize(random_batch(4, 64, 3, dtype)[0], dim=1)
    assert torch.all(pairwise_distances(x, distance=distance).diagonal() == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_gradient_is_finite_at_zero_distance(distance, dtype):
    # Rows 0 and 2 coincide, so the distance between them is zero off the diagonal too.
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [1.0, 2.0, 0.0]], dtype=dtype)
    weights = torch.rand(3, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    for y in (None, x.clone()):
        _, gradient = value_and_gradient(lambda e: (pairwise_distances(e, y, distance) * weights).sum(), x)
        assert torch.isfinite(gradient).all()


@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_distances_gradient_matches_finite_differences(distance):
    x, _ = random_batch(5, 6, 2, torch.float64, n_features=3)
    y, _ = random_batch(6, 4, 2, torch.float64, n_features=3)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distances(a, b, distance), (x, y))
    assert torch.autograd.gradcheck(lambda a: pairwise_distances(a, distance=distance), (x,))


def test_pairwise_distances_keeps_dtype_and_clamps_cosine():
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    distances = pairwise_distances(x, distance="cosine")
    expected = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0], [2.0, 2.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(distances, expected)


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


def brute_force_triplets(distances, labels, margin, strategy):
    """Every triplet the strategy keeps, by looping over (a, p, n)."""
    labels = labels.tolist()
    if strategy == "batch_hard":
        return brute_force_batch_hard(distances, labels)
    kept = []
    for a, p, n in itertools.product(range(len(labels)), repeat=3):
        if a == p or labels[a] != labels[p] or labels[a] == labels[n]:
            continue
        gap = float(distances[a, n] - distances[a, p])
        keep = {
            "all": gap <= margin,
            "hard": gap <= 0,
            "semihard": 0 < gap <= margin,
            "easy": gap > margin,
            "none": True,
        }[strategy]
        if keep:
            kept.append((a, p, n))
    return kept


def brute_force_batch_hard(distances, labels):
    kept = []
    for a, label in enumerate(labels):
        positives = [p for p, other in enumerate(labels) if other == label and p != a]
        negatives = [n for n, other in enumerate(labels) if other != label]
        if positives and negatives:
            p = max(positives, key=lambda index: float(distances[a, index]))
            n = min(negatives, key=lambda index: float(distances[a, index]))
            kept.append((a, p, n))
    return kept


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


def mean_of_nonzero(terms):
    nonzero = [term for term in terms if term > 0]
    return sum(nonzero) / len(nonzero) if nonzero else 0.0


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
