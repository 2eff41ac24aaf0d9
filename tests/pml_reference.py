"""Shared by the distance, miner and loss tests: random batches, pytorch-metric-learning objects, brute-force loops."""

from __future__ import annotations

import itertools

import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import miners as pml_miners

DTYPES = [torch.float32, torch.float64]
DISTANCES = ["euclidean", "squared", "cosine"]
MARGIN_STRATEGIES = ["all", "hard", "semihard", "easy"]
STRATEGIES = MARGIN_STRATEGIES + ["batch_hard", "none"]
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


def pml_miner(strategy, margin, distance):
    if strategy == "none":
        return None
    if strategy == "batch_hard":
        return pml_miners.BatchHardMiner(distance=pml_distance(distance))
    return pml_miners.TripletMarginMiner(margin, type_of_triplets=strategy, distance=pml_distance(distance))


def value_and_gradient(loss_fn, embeddings):
    """A loss's value and its gradient with respect to a fresh copy of the embeddings."""
    embeddings = embeddings.detach().clone().requires_grad_(True)
    loss = loss_fn(embeddings)
    loss.backward()
    return loss.detach(), embeddings.grad


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


def mean_of_nonzero(terms):
    nonzero = [term for term in terms if term > 0]
    return sum(nonzero) / len(nonzero) if nonzero else 0.0
