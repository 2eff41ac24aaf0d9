"""Tagging metrics (Lee et al., ISMIR 2020): tags scored by nearness to a tag vector.

* :func:`class_centroids` gives each tag the mean embedding of its items (its prototype), and
  :func:`tag_scores` scores every item against every tag vector (centroid or proxy) by
  nearness, for auto-tagging and tag-to-track retrieval.
* :func:`per_tag_auc` and :func:`tag_auc` (macro ROC-AUC) judge those scores for auto-tagging,
  :func:`tag_to_track_retrieval` (R@k and P@k of each tag as a query) for tag-to-track retrieval.

Taught in notebooks/05_classification_and_proxies.ipynb, notebooks/06_disentangled.ipynb and
notebooks/07_cross_modal.ipynb
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from ..distances import unit_rows
from .neighbors import (
    DISTANCES,
    _as_embeddings,
    _as_numpy,
    _checked_ks,
    _embedding_pair,
    _require_choice,
)


@torch.no_grad()
def class_centroids(embeddings, tags, tag_names=None):
    """The mean embedding of the items of each tag: the tag's "prototype".

    A metric-learning model has no output layer to score tags with; Lee et al. (ISMIR 2020)
    give each tag the centroid of its training items instead, and score an item by how near
    it is to each centroid (:func:`tag_scores`).

    Args:
        embeddings: (N, D) float tensor or array.
        tags: (N, T) multi-hot array or tensor of 0/1 (or bools): item ``i`` has tag ``t`` when
            ``tags[i, t]`` is 1. Or (N,) int class indices in [0, T), meaning one tag each,
            with T the largest index plus one (``codes`` of ``ClipDataset.labels``).
        tag_names: Optional T names of the tags, used in error messages.

    Returns:
        (T, D) numpy array in the embeddings' dtype: row ``t`` is the mean of the embeddings of
        the items having tag ``t``.

    Raises:
        ValueError: On bad embeddings (as in :func:`nearest_neighbors`), tags that are not
            0/1 with one row per item (or not non-negative int labels), or a tag with no item,
            whose centroid does not exist.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    embeddings, _ = _embedding_pair(embeddings, None, None, "embeddings", "")
    membership = _multi_hot(tags, len(embeddings))
    counts = membership.sum(axis=0)
    if (counts == 0).any():
        empty = int(np.flatnonzero(counts == 0)[0])
        name = repr(tag_names[empty]) if tag_names is not None else f"column {empty}"
        raise ValueError(
            f"{int((counts == 0).sum())} tag(s) have no item, the first being {name}: a tag "
            "needs at least one item to have a centroid. Drop those tags' columns, or compute "
            "the centroids on a set (e.g. the training split) where every tag occurs."
        )
    membership = torch.as_tensor(membership, dtype=embeddings.dtype, device=embeddings.device)
    sums = membership.T @ embeddings
    return (sums / membership.sum(dim=0)[:, None]).cpu().numpy()


def _multi_hot(tags, n_items):
    """``tags`` as an (N, T) numpy 0/1 array: multi-hot as given, or int labels one-hot."""
    tags = _as_numpy(tags)
    if tags.ndim == 1 and tags.dtype.kind in "iu":
        if len(tags) != n_items or (len(tags) and tags.min() < 0):
            raise ValueError(
                f"int labels must have shape ({n_items},) with values >= 0, got shape "
                f"{tags.shape}{' and negative values' if len(tags) and tags.min() < 0 else ''}."
            )
        one_hot = np.zeros((n_items, int(tags.max()) + 1), dtype=np.uint8)
        one_hot[np.arange(n_items), tags] = 1
        return one_hot
    if tags.ndim != 2 or tags.shape[0] != n_items or tags.shape[1] == 0:
        raise ValueError(
            f"tags must be an (N, T) multi-hot array with N = {n_items} rows, one per item, or "
            f"(N,) int class labels; got shape {tags.shape} and dtype {tags.dtype}."
        )
    if tags.dtype.kind not in "biuf" or not np.isin(tags, (0, 1)).all():
        raise ValueError("tags must hold only 0 and 1 (or False and True): threshold soft tags first, e.g. tags > 0.5.")
    return tags.astype(np.uint8)


@torch.no_grad()
def tag_scores(embeddings, class_vectors, *, distance="cosine"):
    """How strongly each item is predicted to have each tag, from its nearness to the tag.

    Scores items against tag vectors in the embedding space (centroids from
    :func:`class_centroids`, or a proxy model's proxies): for auto-tagging, read a row; for
    tag-to-track retrieval, sort a column.

    Args:
        embeddings: (N, D) float tensor or array.
        class_vectors: (T, D) float tensor or array, one vector per tag.
        distance: ``"cosine"`` scores by cosine similarity, in [-1, 1]; ``"euclidean"`` and
            ``"squared"`` by minus the (squared) Euclidean distance, in (-inf, 0].

    Returns:
        (N, T) numpy array of scores in the inputs' dtype; larger means more likely.

    Raises:
        ValueError: On bad embeddings or class vectors (as in :func:`nearest_neighbors`), or an
            unknown distance.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    _require_choice(distance, DISTANCES, "distance")
    embeddings, class_vectors = _embedding_pair(embeddings, class_vectors, None, "embeddings", "class_vectors")
    if distance == "cosine":
        unit_classes = unit_rows(class_vectors)
        scores = unit_rows(embeddings) @ unit_classes.T
    else:
        # T is small, so the exact differences are cheap and keep distances near 0 accurate.
        scores = -torch.cdist(embeddings, class_vectors, compute_mode="donot_use_mm_for_euclid_dist")
        if distance == "squared":
            scores = -scores.pow(2)
    return scores.cpu().numpy()


def per_tag_auc(scores, tags, tag_names=None):
    """The ROC-AUC of each tag: how well its scores rank its items above the other items.

    The AUC of a tag is the probability that one of its items, drawn at random, scores higher
    than a random item without it, ties counting one half (the Mann-Whitney U statistic over
    the product of the class sizes). It is computed from the ranks of each column's scores,
    equal scores sharing their mean rank, so all tags go at once. A tag that every item has,
    or none has, has no AUC and is left out.

    Args:
        scores: (N, T) float array or tensor, larger meaning more likely (:func:`tag_scores`,
            or a classifier's logits).
        tags: (N, T) multi-hot 0/1 array or tensor of the true tags, or (N,) int labels as in
            :func:`class_centroids`.
        tag_names: Optional T names, the keys of the result; column indices by default.

    Returns:
        ``{tag: auc}``, a float in [0, 1] for each tag having both positive and negative items,
        in column order.

    Raises:
        ValueError: If scores are not a finite (N, T) array, tags are not 0/1 of that shape,
            or ``tag_names`` does not hold T names.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    scores = _as_embeddings(scores, "scores", torch.device("cpu")).double().numpy()
    tags = _multi_hot(tags, len(scores))
    if tags.shape != scores.shape:
        raise ValueError(
            f"tags and scores must have the same (N, T) shape, got {tags.shape} and "
            f"{scores.shape}: one column per tag, one row per item, in the same order."
        )
    names = list(range(tags.shape[1])) if tag_names is None else list(tag_names)
    if len(names) != tags.shape[1]:
        raise ValueError(f"tag_names must hold {tags.shape[1]} names, got {len(names)}.")
    ranks = rankdata(scores, axis=0)
    n_positive = tags.sum(axis=0).astype(np.float64)
    n_negative = len(tags) - n_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        u_statistics = (ranks * tags).sum(axis=0) - n_positive * (n_positive + 1) / 2
        aucs = u_statistics / (n_positive * n_negative)
    scorable = (n_positive > 0) & (n_negative > 0)
    return {names[t]: float(aucs[t]) for t in np.flatnonzero(scorable)}


def tag_auc(scores, tags):
    """Auto-tagging macro ROC-AUC: the mean of :func:`per_tag_auc` over the scorable tags.

    The headline tagging number of Lee et al. (ISMIR 2020). Tags that every item has, or no
    item has, have no AUC and are skipped (a small test split may miss rare tags), so the
    result equals ``sklearn.metrics.roc_auc_score(tags[:, keep], scores[:, keep],
    average="macro")`` with ``keep`` the tags having both positive and negative items.

    Args:
        scores: (N, T) float array or tensor, larger meaning more likely.
        tags: (N, T) multi-hot 0/1 array or tensor.

    Returns:
        The macro ROC-AUC, a float in [0, 1]; 0.5 is chance.

    Raises:
        ValueError: As :func:`per_tag_auc`, or if no tag has both positive and negative items.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    aucs = per_tag_auc(scores, tags)
    if not aucs:
        raise ValueError(
            "No tag has both positive and negative items, so no AUC is defined: evaluate on "
            "more items, or check that tags holds the true tags of these items."
        )
    return float(np.mean(list(aucs.values())))


def tag_to_track_retrieval(scores, tags, ks=(1, 10)):
    """Tag-to-track retrieval: each tag is a query, the items ranked by their score for it.

    For each tag having both positive and negative items, the items are sorted by score
    (highest first; equal scores by item index, as :func:`nearest_neighbors` breaks ties) and
    its first ``k`` are read for every k:

    * ``R@k``: whether one of them has the tag, the recall at k of the deep metric learning
      literature (:func:`~mlcourse.metrics.recall_at_k`) with tags as the queries;
    * ``P@k``: the share of them that have the tag.

    Args:
        scores: (N, T) float array or tensor, larger meaning more likely (:func:`tag_scores`).
        tags: (N, T) multi-hot 0/1 array or tensor of the true tags.
        ks: Positive ints, each at most N.

    Returns:
        ``{"R@k": recall, ..., "P@k": precision, ...}``: means over the scorable tags, R for
        every k first, then P.

    Raises:
        ValueError: On scores or tags as :func:`per_tag_auc` refuses them, a k that is not a
            positive int at most N, or no scorable tag.

    Example:
        >>> scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
        >>> tags = np.array([[0, 1], [1, 0], [0, 1]])
        >>> tag_to_track_retrieval(scores, tags, ks=(1, 2))
        {'R@1': 0.0, 'R@2': 1.0, 'P@1': 0.0, 'P@2': 0.5}

    Taught in notebooks/07_cross_modal.ipynb
    """
    scores = _as_embeddings(scores, "scores", torch.device("cpu")).double().numpy()
    tags = _multi_hot(tags, len(scores))
    if tags.shape != scores.shape:
        raise ValueError(f"tags and scores must have the same (N, T) shape, got {tags.shape} and {scores.shape}.")
    ks = _checked_ks(ks)
    if max(ks) > len(scores):
        raise ValueError(f"ks must be at most {len(scores)} (the items), got {ks!r}")
    positives = tags.sum(axis=0)
    scorable = (positives > 0) & (positives < len(tags))
    if not scorable.any():
        raise ValueError("no tag has both items with it and items without it: nothing to retrieve.")
    order = np.argsort(-scores[:, scorable], axis=0, kind="stable")  # (N, T'): item indices, best first
    hits = np.take_along_axis(tags[:, scorable], order, axis=0).astype(np.float64)
    recall = {f"R@{k}": float(hits[:k].max(axis=0).mean()) for k in ks}
    precision = {f"P@{k}": float(hits[:k].mean(axis=0).mean()) for k in ks}
    return {**recall, **precision}
