"""Matching metrics: one true partner per query (cross-modal retrieval).

In matching tasks a query has exactly one right answer: the score excerpt of an audio clip
(Raffel & Ellis, 2016), the audio of a score excerpt. With query i's partner stored as gallery
item i, everything follows from the *rank* of the partner: 1 when it is the nearest gallery
item, N when it is the farthest. R@k is the fraction of queries whose partner ranks k or
better, and the mean reciprocal rank (MRR) the mean of 1 / rank.

Taught in notebooks/07_cross_modal.ipynb
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .neighbors import _as_numpy, _checked_ks, _embedding_pair, _Search


@torch.no_grad()
def match_ranks(queries, gallery, distance="cosine", block_size=None, device=None):
    """The rank of each query's partner among the gallery, query ``i``'s partner being item ``i``.

    Rank 1 means the partner is the nearest gallery item. Ties count against the query: the
    rank is the number of gallery items at least as near as the partner, the partner included,
    so a model that puts everything at the same distance gets rank N, not 1. The distances are
    computed blockwise, as in :func:`nearest_neighbors`, so the (Q, N) matrix is never held
    whole.

    Args:
        queries: (Q, D) float tensor or array, e.g. the audio embeddings.
        gallery: (N, D) float tensor or array with N >= Q, e.g. the score embeddings: item
            ``i < Q`` is the partner of query ``i``, items from Q on are distractors.
        distance: One of :data:`mlcourse.distances.DISTANCES`.
        block_size, device: as in :func:`nearest_neighbors`.

    Returns:
        (Q,) int64 numpy array of ranks in [1, N].

    Raises:
        ValueError: On bad embeddings (as in :func:`nearest_neighbors`), or a gallery with
            fewer items than there are queries.

    No notebook calls it: notebook 07 ranks through :func:`match_ranks_from_distances`.
    """
    queries, gallery = _embedding_pair(queries, gallery, device, "queries", "gallery")
    _require_partners(len(queries), len(gallery))
    search = _Search(queries, gallery, distance, False, block_size)
    ranks = []
    for rows, scores in search.score_blocks():
        own = torch.arange(rows.start, rows.stop, device=scores.device)
        partner_scores = scores[own - rows.start, own]
        # Larger scores are nearer: count the items scoring at least as well as the partner.
        ranks.append((scores >= partner_scores[:, None]).sum(dim=1))
    return torch.cat(ranks).cpu().numpy()


def match_ranks_from_distances(distances):
    """:func:`match_ranks` from a precomputed (Q, N) distance matrix, ``distances[i, i]`` the partner's.

    For distances that are not between embeddings, e.g. dynamic time warping between chroma
    sequences. Ties count against the query, as in :func:`match_ranks`. For the other
    direction of a symmetric task (score to audio), pass ``distances.T``.

    Args:
        distances: (Q, N) float array or tensor with N >= Q; smaller is nearer. ``inf`` is
            allowed (an item ruled out), NaN is not.

    Returns:
        (Q,) int64 numpy array of ranks in [1, N].

    Raises:
        ValueError: If ``distances`` is not 2-D with at least as many columns as rows, or
            holds NaN.

    Taught in notebooks/07_cross_modal.ipynb
    """
    distances = _as_numpy(distances)
    if distances.ndim != 2 or distances.dtype.kind not in "biuf" or 0 in distances.shape:
        raise ValueError(
            f"distances must be a (Q, N) numeric matrix, row i holding query i's distances "
            f"to the N gallery items, got shape {distances.shape} and dtype {distances.dtype}."
        )
    _require_partners(*distances.shape)
    if np.isnan(distances).any():
        raise ValueError(f"distances holds {int(np.isnan(distances).sum())} NaN value(s).")
    partner = distances[np.arange(len(distances)), np.arange(len(distances))]
    return (distances <= partner[:, None]).sum(axis=1).astype(np.int64)


def _require_partners(n_queries, n_gallery):
    if n_gallery < n_queries:
        raise ValueError(
            f"Query i's partner is gallery item i, so the gallery needs at least as many items "
            f"as there are queries, got {n_queries} queries and {n_gallery} gallery items."
        )


def mean_reciprocal_rank(ranks):
    """The mean of ``1 / rank`` over the queries (MRR), in (0, 1]; 1 when every rank is 1.

    With one relevant item per query, this is scikit-learn's
    ``label_ranking_average_precision_score``. A random ranking of N items has
    ``(1 + 1/2 + ... + 1/N) / N`` (about ``ln(N) / N``) as its expected MRR.

    Args:
        ranks: (Q,) ranks from :func:`match_ranks`, integers >= 1.

    Returns:
        The MRR, a float.

    Raises:
        ValueError: If ``ranks`` is not a non-empty 1-D array of integers >= 1.

    Taught in notebooks/07_cross_modal.ipynb
    """
    return float(np.mean(1.0 / _checked_ranks(ranks)))


def recall_at_ranks(ranks, ks=(1, 5, 10)):
    """R@k of a matching task: the fraction of queries whose partner ranks k or better.

    Args:
        ranks: (Q,) ranks from :func:`match_ranks`, integers >= 1.
        ks: The values of k, positive ints (one int is taken as ``(k,)``).

    Returns:
        ``{k: recall}``, floats in [0, 1] in the order of ``ks``, as :func:`recall_at_k` returns
        them. Chance, with N gallery items, is k / N.

    Raises:
        ValueError: On bad ranks (as in :func:`mean_reciprocal_rank`) or ks.

    Taught in notebooks/07_cross_modal.ipynb
    """
    ranks = _checked_ranks(ranks)
    return {k: float(np.mean(ranks <= k)) for k in _checked_ks(ks)}


def _checked_ranks(ranks):
    ranks = _as_numpy(ranks)
    if ranks.ndim != 1 or len(ranks) == 0 or ranks.dtype.kind not in "iu" or ranks.min() < 1:
        raise ValueError(
            f"ranks must be a non-empty 1-D array of integers >= 1 (from match_ranks), got "
            f"shape {ranks.shape} and dtype {ranks.dtype}."
        )
    return ranks


def retrieval_table(distances_by_method, seconds_per_query=None, ks=(1, 5, 10)):
    """One row per method: R@k, MRR and milliseconds per query of a matching task.

    Args:
        distances_by_method: ``{name: distances}``, each a (Q, N) distance matrix with query
            ``i``'s partner in column ``i`` (for embeddings, e.g. ``1 - audio @ score.T``).
            For both directions of a task, give two entries, e.g. ``"chroma, audio -> score":
            d`` and ``"chroma, score -> audio": d.T``.
        seconds_per_query: ``{name: seconds}`` from :func:`time_per_query`; a method without
            one gets NaN.
        ks: The k of the R@k columns.

    Returns:
        A pandas DataFrame indexed by method, with columns ``R@1``, ``R@5``, ``R@10`` (one per
        k), ``MRR`` and ``ms/query``.

    Raises:
        ValueError: If ``distances_by_method`` is empty, or a matrix is not valid (as in
            :func:`~mlcourse.metrics.match_ranks_from_distances`).

    Taught in notebooks/07_cross_modal.ipynb
    """
    if not distances_by_method:
        raise ValueError("distances_by_method must hold at least one {name: distances} entry")
    seconds_per_query = seconds_per_query or {}
    rows = {}
    for name, distances in distances_by_method.items():
        ranks = match_ranks_from_distances(distances)
        recalls = {f"R@{k}": recall for k, recall in recall_at_ranks(ranks, ks).items()}
        rows[name] = {
            **recalls,
            "MRR": mean_reciprocal_rank(ranks),
            "ms/query": 1000 * seconds_per_query.get(name, np.nan),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
