"""Triplet metrics: does the embedding order (anchor, positive, negative) triplets right?

* :func:`triplet_accuracy` is the fraction of triplets that the embedding orders correctly,
  which is what a triplet loss trains for.
* :func:`concept_triplet_accuracy` is the triplet accuracy of each concept (genre, mood,
  instrument, era), in the complete space and in each concept's sub-space of a disentangled
  embedding (Lee et al., ISMIR 2020).
* :func:`triplet_kind_shares` sorts triplets by their gap into easy, semi-hard and hard ones,
  the kinds that online mining chooses from.

Taught in notebooks/04_triplet_mining.ipynb and notebooks/06_disentangled.ipynb
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..distances import unit_rows
from .neighbors import (
    BLOCK_BYTES,
    DISTANCES,
    _as_numpy,
    _embedding_pair,
    _require_choice,
)


@torch.no_grad()
def triplet_accuracy(embeddings, anchors, positives, negatives, distance="euclidean"):
    """The fraction of triplets whose positive is nearer the anchor than their negative.

    Triplet ``t`` is correct when ``d(a, p) < d(a, n)`` with ``a = embeddings[anchors[t]]``,
    ``p = embeddings[positives[t]]`` and ``n = embeddings[negatives[t]]``; a tie counts as a
    mistake, because a triplet loss with a margin would still push those apart.

    Args:
        embeddings: (N, D) float tensor or array.
        anchors, positives, negatives: (T,) integer row indices into ``embeddings``.
        distance: One of :data:`mlcourse.distances.DISTANCES`.

    Returns:
        The fraction of correct triplets, a float in [0, 1].

    Raises:
        ValueError: On bad embeddings (as in :func:`nearest_neighbors`), or index arrays that are
            not 1-D integers in [0, N) of one common, non-zero length.

    No notebook calls it: it scores triplets of your own.
    """
    _require_choice(distance, DISTANCES, "distance")
    embeddings, _ = _embedding_pair(embeddings, None, None, "embeddings", "")
    if distance == "cosine":
        embeddings = unit_rows(embeddings)
    triplets = _triplet_indices((anchors, positives, negatives), len(embeddings), embeddings.device)
    # Gathering (3, T, D) rows at once could need gigabytes; a chunk of triplets stays in budget.
    chunk = max(1, BLOCK_BYTES // (3 * embeddings.shape[1] * embeddings.element_size()))
    n_correct = 0
    for start in range(0, triplets.shape[1], chunk):
        anchor, positive, negative = embeddings[triplets[:, start : start + chunk]]
        positive_gap = _dissimilarity(anchor, positive, distance)
        n_correct += int((positive_gap < _dissimilarity(anchor, negative, distance)).sum())
    return n_correct / triplets.shape[1]


def _dissimilarity(first, second, distance):
    """(T,) numbers in the same order as the distances between paired (T, D) rows.

    The squared Euclidean distance, or minus the dot product of unit rows for cosine.
    """
    if distance == "cosine":
        return -(first * second).sum(dim=1)
    return (first - second).pow(2).sum(dim=1)


def _triplet_indices(index_arrays, n_items, device):
    """The anchors, positives and negatives as one checked (3, T) int64 tensor."""
    names = ("anchors", "positives", "negatives")
    arrays = [_as_numpy(values) for values in index_arrays]
    lengths = [array.shape[0] if array.ndim == 1 else None for array in arrays]
    if None in lengths or len(set(lengths)) != 1 or lengths[0] == 0:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in zip(names, arrays))
        raise ValueError(
            f"anchors, positives and negatives must be 1-D with one common, non-zero length "
            f"(one entry per triplet), got shapes {shapes}."
        )
    for name, array in zip(names, arrays):
        if array.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integer row indices, got dtype {array.dtype}.")
        if array.min() < 0 or array.max() >= n_items:
            raise ValueError(
                f"{name} must hold row indices in [0, {n_items}) for {n_items} embeddings, "
                f"got values from {array.min()} to {array.max()}."
            )
    return torch.as_tensor(np.stack(arrays), dtype=torch.long, device=device)


def concept_triplet_accuracy(embeddings, triplets, *, masks=None, distance="euclidean"):
    """Triplet accuracy per concept, in the complete space and in each concept's sub-space.

    Rebuilds the triplet-prediction table of Lee et al. (ISMIR 2020). For each concept, its
    triplets (e.g. from :func:`mlcourse.data.triplets.sample_concept_triplets`) are scored by
    :func:`triplet_accuracy` on the whole embedding, and, for a disentangled model, on the
    concept's own sub-space: the embeddings times the concept's mask, which zeroes (or, for a
    soft mask, scales) the dimensions of the other concepts. A model that has disentangled the
    concepts does better in the sub-space than in the complete space.

    Args:
        embeddings: (N, D) float tensor or array.
        triplets: ``{concept: (anchors, positives, negatives)}``, three (T,) integer row index
            arrays per concept (T may differ between concepts).
        masks: None, or ``{concept: mask}`` with a (D,) float or bool array or tensor for every
            concept of ``triplets`` (others are ignored).
        distance: One of :data:`mlcourse.distances.DISTANCES`.

    Returns:
        A pandas DataFrame with one column per concept, in the order of ``triplets``, then
        ``"overall"``, the unweighted mean over the concepts (as in the paper). Its rows are
        ``"complete"``, and ``"subspace"`` when masks are given; the values are accuracies in
        [0, 1]. ``pd.concat({name: table, ...})`` stacks the tables of several models.

    Raises:
        ValueError: If ``triplets`` is empty, a concept has no mask, a mask is not (D,) and
            finite, or on what :func:`triplet_accuracy` refuses.

    Taught in notebooks/06_disentangled.ipynb
    """
    if not isinstance(triplets, dict) or not triplets:
        raise ValueError(
            "triplets must be a non-empty dict {concept: (anchors, positives, negatives)}, "
            "e.g. from sample_all_concept_triplets."
        )
    embeddings, _ = _embedding_pair(embeddings, None, None, "embeddings", "")
    complete = {
        concept: triplet_accuracy(embeddings, *concept_triplets, distance)
        for concept, concept_triplets in triplets.items()
    }
    rows = {"complete": complete}
    if masks is not None:
        subspace = {}
        for concept, concept_triplets in triplets.items():
            mask = _concept_mask(masks, concept, embeddings)
            subspace[concept] = triplet_accuracy(embeddings * mask, *concept_triplets, distance)
        rows["subspace"] = subspace
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(triplets))
    table["overall"] = table.mean(axis=1)
    return table


def _concept_mask(masks, concept, embeddings):
    """The mask of ``concept`` as a (D,) tensor matching ``embeddings``, checked."""
    if not isinstance(masks, dict) or concept not in masks:
        given = list(masks) if isinstance(masks, dict) else type(masks).__name__
        raise ValueError(
            f"masks must be a dict with a mask for every concept of triplets; {concept!r} has "
            f"none (masks: {given}). Pass masks=None to score the complete space only."
        )
    mask = _as_numpy(masks[concept])
    if mask.shape != (embeddings.shape[1],) or mask.dtype.kind not in "biuf":
        raise ValueError(
            f"The mask of {concept!r} must be a ({embeddings.shape[1]},) numeric array, one "
            f"weight per embedding dimension, got shape {mask.shape} and dtype {mask.dtype}."
        )
    mask = torch.as_tensor(mask.astype(np.float64), device=embeddings.device)
    if not torch.isfinite(mask).all():
        raise ValueError(f"The mask of {concept!r} has NaN or infinite values.")
    return mask.to(embeddings.dtype)


def triplet_kind_shares(gaps, margin):
    """The shares of hard, semi-hard and easy triplets, from their gaps ``d(a, n) - d(a, p)``.

    The kinds have the boundaries of :func:`mlcourse.miners.mine_triplets` (and of
    pytorch-metric-learning's ``TripletMarginMiner``):

    * **hard**: gap <= 0, the negative is at least as near as the positive;
    * **semi-hard**: 0 < gap <= margin, the right order but not yet by the margin;
    * **easy**: gap > margin, nothing left for a triplet loss to do.

    Args:
        gaps: (T,) array or tensor of gaps, e.g. from :func:`mlcourse.miners.triplet_gaps`.
        margin: The triplet loss's margin, > 0.

    Returns:
        ``{"hard": share, "semi-hard": share, "easy": share}``, floats in [0, 1] summing to 1.

    Raises:
        ValueError: If there are no gaps, or the margin is not positive.

    Example:
        >>> triplet_kind_shares([-0.1, 0.1, 0.5, 0.8], margin=0.2)
        {'hard': 0.25, 'semi-hard': 0.25, 'easy': 0.5}

    Taught in notebooks/04_triplet_mining.ipynb
    """
    gaps = _as_numpy(gaps).ravel()
    if len(gaps) == 0:
        raise ValueError("no gaps: pass the gaps of at least one triplet")
    if not margin > 0:
        raise ValueError(f"margin must be a number > 0, got {margin!r}")
    return {
        "hard": float((gaps <= 0).mean()),
        "semi-hard": float(((gaps > 0) & (gaps <= margin)).mean()),
        "easy": float((gaps > margin).mean()),
    }
