"""Retrieval metrics: how well an embedding puts items of the same class next to each other.

A metric-learning model is judged by the neighbourhoods of its embedding space, so almost every
metric here starts from a nearest-neighbour search:

* :func:`nearest_neighbors` finds the k nearest gallery items of every query.
* :func:`recall_at_k` (R@K) is the fraction of queries with at least one item of their own
  class among their k nearest neighbours, the headline number of deep metric learning papers
  (Song et al., 2016; Lee et al., ISMIR 2020).
* :func:`mean_average_precision` (mAP) scores the whole ranking of the gallery, not just its top.
* :func:`knn_accuracy` classifies each query by a majority vote of its k nearest neighbours.
* :func:`triplet_accuracy` is the fraction of (anchor, positive, negative) triplets that the
  embedding orders correctly, which is what a triplet loss trains for.

The evaluation of Lee et al. (ISMIR 2020) adds tagging and per-concept metrics:

* :func:`class_centroids` gives each tag the mean embedding of its items (its prototype), and
  :func:`tag_scores` scores every item against every tag vector (centroid or proxy) by
  nearness, for auto-tagging and tag-to-track retrieval.
* :func:`per_tag_auc` and :func:`tag_auc` (macro ROC-AUC) judge those scores.
* :func:`concept_triplet_accuracy` is the triplet accuracy of each concept (genre, mood,
  instrument, era), in the complete space and in each concept's sub-space of a disentangled
  embedding.

Without a gallery, the embeddings are searched among themselves and each query is left out of
its own neighbours (leave-one-out); with one, the queries are searched in the gallery.

How the search scales: the distances between 50,000 embeddings would fill a 50,000 x 50,000
matrix, 10 GB in float32. So the queries go in blocks of rows, each block small enough for its
distances to fit in :data:`BLOCK_BYTES`, and each block is one matrix product. For the
Euclidean distance,

    ||q - g||^2 = ||q||^2 + ||g||^2 - 2 q.g,

and as ``||q||^2`` is the same for all the candidates of a query, ranking them only needs the
*score* ``2 q.g - ||g||^2`` (larger is nearer). For the cosine distance the rows are scaled to
unit length and the score is ``q.g``. ``torch.topk`` then keeps the k best scores of each row.
The expansion loses digits when the embeddings are far from the origin compared with the
distances between them (float32 keeps about 7): subtract their mean first in that case.

Every function takes numpy arrays or torch tensors, on any device, and computes in the
embeddings' floating-point dtype (float32 or float64; other dtypes are converted to float32).

Taught in notebooks/03_siamese_contrastive.ipynb, notebooks/04_triplet_mining.ipynb,
notebooks/05_classification_and_proxies.ipynb and notebooks/06_disentangled.ipynb
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from .checks import named_device, require_positive_int

__all__ = [
    "class_centroids",
    "concept_triplet_accuracy",
    "knn_accuracy",
    "linear_readout_r2",
    "mean_average_precision",
    "nearest_neighbors",
    "per_tag_auc",
    "recall_at_k",
    "tag_auc",
    "tag_scores",
    "triplet_accuracy",
]

BLOCK_BYTES = 256 * 2**20
"""Memory budget of the (block, N) scores of one block of queries."""

DISTANCES = ("euclidean", "cosine")
"""The distances every metric accepts; cosine distance is ``1 - cos(q, g)``."""


# --------------------------------------------------------------------------------------------
# Nearest neighbours
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def nearest_neighbors(
    queries,
    gallery=None,
    k=8,
    distance="euclidean",
    exclude_self=None,
    block_size=None,
    device=None,
    groups=None,
    gallery_groups=None,
):
    """The k nearest gallery items of every query, nearest first.

    Args:
        queries: (Q, D) float tensor or array.
        gallery: (N, D) float tensor or array; ``None`` searches the queries among themselves.
        k: Neighbours per query, at most the number of candidates (N, or N - 1 when the query
            itself is excluded).
        distance: ``"euclidean"`` or ``"cosine"``.
        exclude_self: Leave query ``i`` out of its own neighbours, taking it to be gallery item
            ``i``. Defaults to True when ``gallery`` is None, else False.
        block_size: Queries per block; ``None`` picks the most whose (block, N) scores fit in
            :data:`BLOCK_BYTES`. It changes the memory used, never the result.
        device: Where to compute (``"cpu"``, ``"cuda"``, a ``torch.device``); ``None`` uses the
            queries' device, the CPU for numpy arrays.
        groups: Optional (Q,) group of each query (e.g. the piece a clip comes from): gallery
            items of the query's own group are left out of its neighbours, so that retrieval
            must find *other* pieces. ``gallery_groups`` (N,) gives the gallery's groups when
            there is a separate gallery.

    Returns:
        ``(distances, indices)``, two (Q, k) numpy arrays: distances in the embeddings' dtype
        and gallery indices as int64, nearest first. A query with fewer than k candidates
        outside its group gets them first, then excluded items at distance ``inf``. Distances that are equal as computed are
        ordered by gallery index, smallest first, on every device. Euclidean distances come
        from the expansion above, so in float32 a distance below about 1e-3 times the norms
        of the embeddings is rounding noise (a duplicate may be at 1e-4 rather than 0).

    Raises:
        ValueError: If an input is not a 2-D array of finite numbers, queries and gallery differ
            in dimension, k is not in [1, candidates], or distance, block_size or device is
            not valid.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    queries, gallery = _embedding_pair(queries, gallery, device, "queries", "gallery")
    search = _Search(queries, gallery, distance, exclude_self, block_size)
    search.exclude_groups(groups, gallery_groups)
    scores, indices = search.top_k(k)
    return search.distances_from_scores(scores).cpu().numpy(), indices.cpu().numpy()


class _Search:
    """Queries and gallery made ready for blockwise scoring, the common ground of every metric.

    The score of a (query, gallery item) pair is larger for nearer pairs: ``2 q.g - ||g||^2``
    for the Euclidean distance, ``q.g`` of unit-length rows for the cosine distance.

    Args:
        queries: (Q, D) tensor. gallery: (N, D) tensor of the same dtype and device, or None.
        distance, exclude_self, block_size: as in :func:`nearest_neighbors`.
    """

    def __init__(self, queries, gallery, distance, exclude_self, block_size):
        _require_choice(distance, DISTANCES, "distance")
        self.searches_itself = gallery is None
        self.exclude_self = self.searches_itself if exclude_self is None else bool(exclude_self)
        gallery = queries if gallery is None else gallery
        if self.exclude_self and len(queries) > len(gallery):
            raise ValueError(
                f"exclude_self=True takes query i to be gallery item i, so it needs no more "
                f"queries ({len(queries)}) than gallery items ({len(gallery)}): pass "
                "exclude_self=False, or put the queries first in the gallery."
            )
        self.distance, self.device = distance, queries.device
        self.queries, self.gallery, self.gallery_bias = _scoring_form(queries, gallery, distance)
        self.block_size = _checked_block_size(block_size, len(gallery), queries.element_size())
        self.groups = None

    def exclude_groups(self, groups, gallery_groups):
        """Leave each query's own group out of its candidates (see :func:`nearest_neighbors`)."""
        if groups is None and gallery_groups is None:
            return
        if groups is None:
            raise ValueError("gallery_groups was given without groups: pass both, or neither.")
        query_groups, gallery_groups, _ = _encoded_labels(
            self, groups, gallery_groups, names=("groups", "gallery_groups")
        )
        self.groups = query_groups, gallery_groups

    @property
    def n_candidates(self):
        """How many gallery items can be a query's neighbour."""
        return len(self.gallery) - self.exclude_self

    def score_blocks(self):
        """Yield ``(rows, scores)``: a slice of queries and their (B, N) scores.

        A query's score with itself is -inf when it is excluded, so it ranks last. Every block
        is written into the same buffer, so a block's scores only last until the next block:
        a fresh block of hundreds of megabytes each time would cost about a fifth more time on
        a CPU, spent by the operating system handing out new memory.
        """
        n_rows = min(self.block_size, len(self.queries))
        buffer = self.queries.new_empty((n_rows, len(self.gallery)))
        for start in range(0, len(self.queries), self.block_size):
            rows = slice(start, min(start + self.block_size, len(self.queries)))
            scores = buffer[: rows.stop - rows.start]
            if self.gallery_bias is None:
                torch.mm(self.queries[rows], self.gallery.T, out=scores)
            else:
                torch.addmm(
                    self.gallery_bias, self.queries[rows], self.gallery.T, alpha=2, out=scores
                )
            if self.exclude_self:
                own = torch.arange(rows.start, rows.stop, device=self.device)
                scores[own - rows.start, own] = -torch.inf
            if self.groups is not None:
                query_groups, gallery_groups = self.groups
                scores.masked_fill_(query_groups[rows, None] == gallery_groups, -torch.inf)
            yield rows, scores

    def top_k(self, k):
        """(Q, k) best scores and their (Q, k) int64 gallery indices, best first."""
        require_positive_int(k, "k")
        if k > self.n_candidates:
            less_self = ", less the query itself" if self.exclude_self else ""
            raise ValueError(
                f"k={k} is more than the {self.n_candidates} neighbours each query can have "
                f"(the gallery's {len(self.gallery)} items{less_self}): use k <= "
                f"{self.n_candidates}."
            )
        blocks = [_top_k_ties_by_index(scores, k) for _, scores in self.score_blocks()]
        return torch.cat([scores for scores, _ in blocks]), torch.cat([idx for _, idx in blocks])

    def distances_from_scores(self, scores):
        """(Q, k) distances of the (Q, k) scores of all the queries."""
        if self.distance == "cosine":
            return 1 - scores
        squared_norms = self.queries.pow(2).sum(dim=1, keepdim=True)
        return (squared_norms - scores).clamp_min(0).sqrt()


def _scoring_form(queries, gallery, distance):
    """``(queries, gallery, gallery_bias)`` such that the scores are ``bias + 2 q.g``.

    For the cosine distance the rows are scaled to unit length and there is no bias (None).
    """
    if distance == "cosine":
        unit_queries = _unit_rows(queries, "queries")
        unit_gallery = unit_queries if gallery is queries else _unit_rows(gallery, "gallery")
        return unit_queries, unit_gallery, None
    return queries, gallery, -gallery.pow(2).sum(dim=1)


def _top_k_ties_by_index(scores, k):
    """The k largest scores of each row and their columns, equal scores by column.

    ``torch.topk`` returns equal scores in an order that differs between devices. Asking for
    one score more than needed shows which rows have a tie across the cut-off (the k-th and
    the (k+1)-th scores are equal); only those rows, rare in real data, get a full stable sort,
    which keeps equal scores in column order.

    Args:
        scores: (B, N) tensor. k: int, at most N.

    Returns:
        ``(values, columns)``: (B, k) scores, best first, and their (B, k) int64 columns.
    """
    n_taken = min(k + 1, scores.shape[1])
    values, columns = _ordered_by_score_then_column(*scores.topk(n_taken, dim=1))
    if n_taken > k:
        tied = values[:, k - 1] == values[:, k]
        if tied.any():
            fully_sorted = scores[tied].sort(dim=1, descending=True, stable=True)
            values[tied] = fully_sorted.values[:, :n_taken]
            columns[tied] = fully_sorted.indices[:, :n_taken]
    return values[:, :k], columns[:, :k]


def _ordered_by_score_then_column(values, columns):
    """Reorder each row by decreasing value, equal values by increasing column."""
    by_column = columns.argsort(dim=1)
    values, columns = values.gather(1, by_column), columns.gather(1, by_column)
    by_value = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, by_value), columns.gather(1, by_value)


def _rows_per_block(n_gallery, bytes_per_entry):
    """The most query rows whose (rows, n_gallery) entries fit in :data:`BLOCK_BYTES`."""
    return max(1, BLOCK_BYTES // (n_gallery * bytes_per_entry))


def _checked_block_size(block_size, n_gallery, bytes_per_entry):
    if block_size is None:
        return _rows_per_block(n_gallery, bytes_per_entry)
    require_positive_int(block_size, "block_size")
    return block_size


# --------------------------------------------------------------------------------------------
# Retrieval metrics
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def recall_at_k(
    embeddings,
    labels,
    ks=(1, 2, 4, 8),
    gallery=None,
    gallery_labels=None,
    distance="euclidean",
    block_size=None,
    device=None,
    groups=None,
    gallery_groups=None,
):
    """Recall at k (R@K): how often one of a query's k nearest neighbours shares its label.

    For each k, the fraction of queries with at least one item of their own class among their k
    nearest gallery items, as in the deep metric learning literature (Song et al., 2016). A
    query whose class has no other item counts as a miss. Equal distances at the k-th place
    are broken by gallery index, as in :func:`nearest_neighbors`. One search at ``max(ks)``
    serves every k.

    Args:
        embeddings: (Q, D) float tensor or array, the queries.
        labels: (Q,) int or str labels of the queries, an array, tensor or list.
        ks: The values of k, positive ints (one int is taken as ``(k,)``).
        gallery: (N, D) float tensor or array to search; ``None`` searches the queries among
            themselves, each one left out of its own neighbours.
        gallery_labels: (N,) labels of the gallery, needed with it and only with it.
        distance: ``"euclidean"`` or ``"cosine"``.
        block_size, device, groups, gallery_groups: as in :func:`nearest_neighbors`; with
            groups, an item of the query's own group never counts as a hit.

    Returns:
        ``{k: recall}``: a float in [0, 1] for each k, in the order of ``ks``.

    Raises:
        ValueError: On a bad embedding array (see :func:`nearest_neighbors`), labels of the
            wrong length, a gallery without labels (or labels without a gallery), or a k that
            is not a positive int or is more than the gallery's candidates.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    ks = _checked_ks(ks)
    queries, gallery = _embedding_pair(embeddings, gallery, device, "embeddings", "gallery")
    search = _Search(queries, gallery, distance, None, block_size)
    search.exclude_groups(groups, gallery_groups)
    query_classes, gallery_classes, _ = _encoded_labels(search, labels, gallery_labels)
    scores, neighbours = search.top_k(max(ks))
    # Excluded items (score -inf) fill the list only when a query has too few candidates.
    matches = (gallery_classes[neighbours] == query_classes[:, None]) & (scores > -torch.inf)
    found_within = matches.int().cummax(dim=1).values
    recalls = found_within.double().mean(dim=0)
    return {k: float(recalls[k - 1]) for k in ks}


@torch.no_grad()
def mean_average_precision(
    embeddings,
    labels,
    gallery=None,
    gallery_labels=None,
    distance="euclidean",
    block_size=None,
    device=None,
    groups=None,
    gallery_groups=None,
):
    """Mean average precision (mAP) of the ranking of the whole gallery for every query.

    The relevant items of a query are the gallery items with its label. Ranking the gallery by
    distance, the average precision (AP) of a query is the mean, over its relevant items, of
    the precision at that item's rank: the fraction of relevant items among the items at least
    as near as it. Items at equal distance count together, as in scikit-learn's
    ``average_precision_score``, so the result does not depend on how ties are ordered.
    mAP is the mean AP over the queries.

    Queries with no relevant item in the gallery (without a gallery: whose class has a single
    item) have no AP and are skipped.

    Args:
        embeddings: (Q, D) float tensor or array, the queries.
        labels: (Q,) int or str labels of the queries.
        gallery: (N, D) float tensor or array to rank; ``None`` ranks the queries themselves,
            each query left out of its own ranking.
        gallery_labels: (N,) labels of the gallery, needed with it and only with it.
        distance: ``"euclidean"`` or ``"cosine"``.
        block_size, device, groups, gallery_groups: as in :func:`nearest_neighbors`; with
            groups, the items of the query's own group are left out of its ranking.

    Returns:
        The mAP, a float in (0, 1].

    Raises:
        ValueError: On bad embeddings or labels (as in :func:`recall_at_k`), or if no query has
            a relevant item in the gallery.

    Taught in notebooks/09_applications.ipynb
    """
    queries, gallery = _embedding_pair(embeddings, gallery, device, "embeddings", "gallery")
    search = _Search(queries, gallery, distance, None, block_size)
    search.exclude_groups(groups, gallery_groups)
    query_classes, gallery_classes, n_classes = _encoded_labels(search, labels, gallery_labels)
    members = _ClassMembers(gallery_classes, n_classes)
    precisions = []
    for rows, scores in search.score_blocks():
        relevant_scores = members.scores(scores, query_classes[rows])
        precisions.append(_average_precisions(scores, relevant_scores))
    # One sum over all the queries, so that the block size cannot change the rounding.
    precisions = torch.cat(precisions)
    if len(precisions) == 0:
        raise ValueError(
            "No query has a relevant item (one with its label) in the gallery, so mAP is "
            "undefined: check that the labels match, and that classes have 2 or more items "
            "when there is no separate gallery."
        )
    return float(precisions.mean())


class _ClassMembers:
    """The gallery's indices grouped by class, to look up the scores of a query's class.

    Args:
        gallery_classes: (N,) int64 tensor of class indices. n_classes: int.
    """

    def __init__(self, gallery_classes, n_classes):
        self.by_class = gallery_classes.argsort(stable=True)
        self.sizes = torch.bincount(gallery_classes, minlength=n_classes)
        self.starts = self.sizes.cumsum(dim=0) - self.sizes
        # Padding every block to the same width keeps sums over a row, and so the result,
        # independent of how the queries are split into blocks.
        self.offsets = torch.arange(max(int(self.sizes.max()), 1), device=gallery_classes.device)

    def scores(self, scores, query_classes):
        """(B, M) scores of the members of each query's class, padded with -inf.

        Args:
            scores: (B, N) tensor. query_classes: (B,) int64 tensor.

        Returns:
            (B, M) tensor, M the size of the gallery's largest class (at least 1).
        """
        positions = self.starts[query_classes, None] + self.offsets
        # The padding's positions may run past the end; any real index will do for them.
        positions = positions.clamp(max=len(self.by_class) - 1)
        member_scores = scores.gather(1, self.by_class[positions])
        padding = self.offsets >= self.sizes[query_classes, None]
        return member_scores.masked_fill(padding, -torch.inf)


def _average_precisions(scores, relevant_scores):
    """The average precision of each query of a block that has a relevant item.

    With ties counted together, a relevant item of score ``s`` comes at rank
    ``#{items with score >= s}`` and has ``#{relevant items with score >= s}`` relevant items
    at or above it. Both counts are binary searches of ``s`` in sorted scores, so a sort of
    each row replaces a loop over the ranking.

    Args:
        scores: (B, N) tensor, larger is nearer, -inf for an excluded query itself. It is
            sorted in place: the caller must not need it afterwards.
        relevant_scores: (B, M) scores of each query's relevant items, -inf in the padding and
            for the query itself.

    Returns:
        (B',) float64 tensor, the AP of each of the B' queries that has a relevant item.
    """
    relevant_scores = relevant_scores.sort(dim=1).values
    is_relevant = relevant_scores > -torch.inf
    # Counting from the end of increasing rows: items >= s = row length - items < s.
    at_or_above = scores.shape[1] - torch.searchsorted(_sort_rows(scores), relevant_scores)
    relevant_at_or_above = relevant_scores.shape[1] - torch.searchsorted(
        relevant_scores, relevant_scores
    )
    precisions = (relevant_at_or_above.double() / at_or_above) * is_relevant
    n_relevant = is_relevant.sum(dim=1)
    has_relevant = n_relevant > 0
    return precisions.sum(dim=1)[has_relevant] / n_relevant[has_relevant]


def _sort_rows(scores):
    """Each row of ``scores`` in increasing order, sorted in place on a CPU.

    ``torch.sort`` also works out the permutation, which is not needed here; on a CPU, numpy's
    in-place sort of the values alone is several times faster and needs no second (B, N) array.
    numpy sorts on one core but lets other threads run meanwhile, so each of torch's threads
    sorts a share of the rows. On a GPU, ``torch.sort`` is fast, but its sorted copy and
    permutation take three times the block's memory. The sorted values are the same either way.
    """
    if scores.device.type != "cpu":
        return scores.sort(dim=1).values
    shares = np.array_split(scores.numpy(), min(torch.get_num_threads(), len(scores)))
    with ThreadPoolExecutor(len(shares)) as pool:
        list(pool.map(lambda rows: rows.sort(axis=1), shares))
    return scores


# --------------------------------------------------------------------------------------------
# Classification and triplet metrics
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def knn_accuracy(
    train_embeddings,
    train_labels,
    test_embeddings=None,
    test_labels=None,
    k=1,
    distance="euclidean",
):
    """Accuracy of a k-nearest-neighbour classifier that votes with the training items.

    Each test item gets the most common label among its k nearest training items. When labels
    tie for most votes, the smallest label wins (in sorted order: 0 < 1, "a" < "b"), the rule
    of scikit-learn's ``KNeighborsClassifier`` with uniform weights. Without a test set, each
    training item is classified by the others (leave-one-out). Neighbours at equal distance are
    taken by training index, as in :func:`nearest_neighbors`.

    Args:
        train_embeddings: (N, D) float tensor or array.
        train_labels: (N,) int or str labels.
        test_embeddings: (Q, D) float tensor or array, or None for leave-one-out.
        test_labels: (Q,) labels, given exactly when ``test_embeddings`` is.
        k: Neighbours that vote, at most N (N - 1 for leave-one-out).
        distance: ``"euclidean"`` or ``"cosine"``.

    Returns:
        The fraction of test (or training) items classified correctly, a float in [0, 1].

    Raises:
        ValueError: On bad embeddings or labels (as in :func:`recall_at_k`), only one of
            ``test_embeddings`` and ``test_labels``, or a k that is not in [1, N].

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    leave_one_out = test_embeddings is None
    if leave_one_out != (test_labels is None):
        raise ValueError(
            "Pass both test_embeddings and test_labels, or neither for leave-one-out accuracy "
            "on the training set."
        )
    if leave_one_out:
        queries, gallery = _embedding_pair(train_embeddings, None, None, "train_embeddings", "")
        label_pair, names = (train_labels, None), ("train_labels", "")
    else:
        queries, gallery = _embedding_pair(
            test_embeddings, train_embeddings, None, "test_embeddings", "train_embeddings"
        )
        label_pair, names = (test_labels, train_labels), ("test_labels", "train_labels")
    search = _Search(queries, gallery, distance, None, None)
    query_classes, gallery_classes, _ = _encoded_labels(search, *label_pair, names=names)
    _, neighbours = search.top_k(k)
    predictions = _majority_vote(gallery_classes[neighbours])
    return float((predictions == query_classes).double().mean())


def linear_readout_r2(embeddings, values, groups, folds=5, alpha=10.0):
    """How much of a quantity a linear read-out of the embeddings recovers, on unseen groups.

    The groups (pieces, say) are dealt into ``folds`` folds, the largest group first, each to
    the fold with the fewest items so far (scikit-learn's ``GroupKFold``). For each fold, a
    ridge regression is fitted to the other folds: the embeddings standardised with those
    folds' means and standard deviations, the values centred on their mean, and the weights
    ``w = (X'X + alpha I)^-1 X'y``. It then predicts the held-out fold. The score is the
    coefficient of determination of all held-out predictions together,
    ``R^2 = 1 - sum (y - prediction)^2 / sum (y - mean y)^2``: 1 when the read-out recovers
    the values exactly, 0 when it does no better than their mean, below 0 when worse.

    Use it to ask whether an embedding carries something it should not: a high R^2 for a
    recording's noise level means the embedding encodes the noise.

    Args:
        embeddings: (N, D) float tensor or array.
        values: (N,) numbers to read out.
        groups: (N,) group of each item; a group is never split between fitting and testing.
        folds: Number of folds, at least 2 and at most the number of groups.
        alpha: Ridge regularisation, > 0.

    Returns:
        R^2, a float.

    Raises:
        ValueError: On mismatched lengths, non-finite inputs, constant values, or fewer groups
            than folds.

    Taught in notebooks/08_self_supervised.ipynb
    """
    x = np.asarray(embeddings.detach().cpu() if torch.is_tensor(embeddings) else embeddings, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    if x.ndim != 2 or y.shape != (len(x),) or groups.shape != (len(x),):
        raise ValueError(f"expected (N, D) embeddings with N values and N groups, got shapes "
                         f"{x.shape}, {y.shape} and {groups.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("embeddings and values must be finite (no NaN or inf)")
    if np.ptp(y) == 0:
        raise ValueError("the values are all equal: there is nothing to read out")
    require_positive_int(folds, "folds")
    names, sizes = np.unique(groups, return_counts=True)
    if not 2 <= folds <= len(names):
        raise ValueError(f"folds must be between 2 and the number of groups ({len(names)}), got {folds}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    fold_of_group, fold_sizes = {}, np.zeros(folds, dtype=int)
    for index in np.argsort(-sizes, kind="stable"):
        fold = int(np.argmin(fold_sizes))
        fold_of_group[names[index]] = fold
        fold_sizes[fold] += sizes[index]
    fold_of_item = np.array([fold_of_group[g] for g in groups])
    predictions = np.empty_like(y)
    for fold in range(folds):
        held_out = fold_of_item == fold
        fit_x, fit_y = x[~held_out], y[~held_out]
        mean, std = fit_x.mean(axis=0), fit_x.std(axis=0)
        std[std == 0] = 1.0
        standard = (fit_x - mean) / std
        weights = np.linalg.solve(standard.T @ standard + alpha * np.eye(x.shape[1]),
                                  standard.T @ (fit_y - fit_y.mean()))
        predictions[held_out] = ((x[held_out] - mean) / std) @ weights + fit_y.mean()
    return float(1 - np.sum((y - predictions) ** 2) / np.sum((y - y.mean()) ** 2))

def _majority_vote(neighbour_classes):
    """The most common class of each row; among equally common classes, the smallest.

    Args:
        neighbour_classes: (Q, k) int64 tensor of class indices.

    Returns:
        (Q,) int64 tensor.
    """
    votes = (neighbour_classes[:, :, None] == neighbour_classes[:, None, :]).sum(dim=2)
    # Classes are below n_classes, so one number orders by votes first, then by smaller class.
    n_classes = int(neighbour_classes.max()) + 1
    preference = votes * n_classes - neighbour_classes
    return neighbour_classes.gather(1, preference.argmax(dim=1, keepdim=True)).squeeze(1)


@torch.no_grad()
def triplet_accuracy(embeddings, anchors, positives, negatives, distance="euclidean"):
    """The fraction of triplets whose positive is nearer the anchor than their negative.

    Triplet ``t`` is correct when ``d(a, p) < d(a, n)`` with ``a = embeddings[anchors[t]]``,
    ``p = embeddings[positives[t]]`` and ``n = embeddings[negatives[t]]``; a tie counts as a
    mistake, because a triplet loss with a margin would still push those apart.

    Args:
        embeddings: (N, D) float tensor or array.
        anchors, positives, negatives: (T,) integer row indices into ``embeddings``.
        distance: ``"euclidean"`` or ``"cosine"``.

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
        embeddings = _unit_rows(embeddings, "embeddings")
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


# --------------------------------------------------------------------------------------------
# Checking and converting inputs
# --------------------------------------------------------------------------------------------


def _embedding_pair(queries, gallery, device, query_name, gallery_name):
    """Checked (Q, D) query and (N, D) gallery tensors of one dtype on one device.

    Args:
        queries, gallery: arrays or tensors; ``gallery`` may be None (returned as None).
        device: as in :func:`nearest_neighbors`. query_name, gallery_name: for messages.

    Returns:
        ``(queries, gallery)`` tensors, float64 if either input is float64, else float32.
    """
    device = _resolve_device(device, queries)
    queries = _as_embeddings(queries, query_name, device)
    if gallery is None:
        return queries, None
    gallery = _as_embeddings(gallery, gallery_name, device)
    if gallery.shape[1] != queries.shape[1]:
        raise ValueError(
            f"{query_name} and {gallery_name} must have the same dimension D, got "
            f"{queries.shape[1]} and {gallery.shape[1]}: embed both with the same model."
        )
    dtype = torch.promote_types(queries.dtype, gallery.dtype)
    return queries.to(dtype), gallery.to(dtype)


def _as_embeddings(values, name, device):
    """``values`` as a 2-D float32/float64 tensor on ``device``, checked to be finite."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
    else:
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got an array of dtype {array.dtype}.")
        tensor = torch.as_tensor(array)
    if tensor.ndim != 2 or 0 in tensor.shape:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_items, n_dimensions) with at least one "
            f"of each, got shape {tuple(tensor.shape)}. A single vector v is v.reshape(1, -1)."
        )
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    tensor = tensor.to(device)
    finite_rows = torch.isfinite(tensor).all(dim=1)
    if not finite_rows.all():
        bad_rows = torch.nonzero(~finite_rows).flatten()
        raise ValueError(
            f"{name} has NaN or infinite values in {len(bad_rows)} row(s), the first being row "
            f"{int(bad_rows[0])}: a model whose training diverged outputs NaN; retrain it with "
            "a lower learning rate, or drop those rows (and their labels)."
        )
    return tensor


def _unit_rows(embeddings, name):
    """Each row scaled to unit length, for the cosine distance.

    Raises:
        ValueError: If a row is all zeros, which has no direction.
    """
    norms = embeddings.norm(dim=1, keepdim=True)
    zero_rows = torch.nonzero(norms.squeeze(1) == 0).flatten()
    if len(zero_rows):
        raise ValueError(
            f"{name} has {len(zero_rows)} all-zero row(s), the first being row "
            f"{int(zero_rows[0])}: the cosine distance is undefined without a direction. Drop "
            "those rows or use distance='euclidean'."
        )
    return embeddings / norms


def _resolve_device(device, queries):
    """The torch device to compute on: ``device``, or else the queries' own device."""
    if device is None:
        return queries.device if isinstance(queries, torch.Tensor) else torch.device("cpu")
    return named_device(device)


def _encoded_labels(search, labels, gallery_labels, names=("labels", "gallery_labels")):
    """The query and gallery labels as int64 class indices on the search's device.

    ``np.unique`` numbers the labels of queries and gallery together, in sorted order, so ints
    and strings both work and a label gets the same index on both sides.

    Returns:
        ``(query_classes, gallery_classes, n_classes)``: (Q,) and (N,) tensors, and an int.
    """
    query_labels = _label_array(labels, names[0], len(search.queries))
    if search.searches_itself:
        if gallery_labels is not None:
            raise ValueError(
                f"{names[1]} was given without a gallery: pass the gallery too, or leave "
                f"out {names[1]} to search the embeddings among themselves."
            )
        gallery_labels = query_labels
    elif gallery_labels is None:
        raise ValueError(f"A gallery needs its labels: pass {names[1]}, one per gallery item.")
    else:
        gallery_labels = _label_array(gallery_labels, names[1], len(search.gallery))
        if _is_text(query_labels) != _is_text(gallery_labels):
            raise ValueError(
                f"{names[0]} and {names[1]} must both be numbers or both be strings, got "
                f"dtypes {query_labels.dtype} and {gallery_labels.dtype}."
            )
    classes, class_indices = np.unique(
        np.concatenate([query_labels, gallery_labels]), return_inverse=True
    )
    class_indices = torch.as_tensor(class_indices, dtype=torch.long, device=search.device)
    return class_indices[: len(query_labels)], class_indices[len(query_labels) :], len(classes)


def _label_array(labels, name, n_items):
    """``labels`` as a 1-D numpy array of length ``n_items``."""
    array = _as_numpy(labels)
    if array.shape != (n_items,):
        hint = " (flatten it with .ravel())" if array.size == n_items else ""
        raise ValueError(
            f"{name} must have shape ({n_items},), one label per embedding, got shape "
            f"{array.shape}{hint}."
        )
    return array


def _as_numpy(values):
    """A numpy array of ``values``, a tensor (on any device), an array or a list."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _is_text(array):
    return array.dtype.kind in "USO"


def _checked_ks(ks):
    """``ks`` as a tuple of distinct positive ints, in the given order."""
    ks = (ks,) if isinstance(ks, (int, np.integer)) else tuple(ks)
    if not ks:
        raise ValueError("ks must hold at least one k, e.g. ks=(1, 2, 4, 8).")
    for k in ks:
        require_positive_int(k, "each k in ks")
    return tuple(dict.fromkeys(int(k) for k in ks))


def _require_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")



# --------------------------------------------------------------------------------------------
# Tagging and per-concept metrics (Lee et al., ISMIR 2020)
# --------------------------------------------------------------------------------------------


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
        raise ValueError(
            "tags must hold only 0 and 1 (or False and True): threshold soft tags first, "
            "e.g. tags > 0.5."
        )
    return tags.astype(np.uint8)


@torch.no_grad()
def tag_scores(embeddings, class_vectors, distance="cosine"):
    """How strongly each item is predicted to have each tag, from its nearness to the tag.

    Scores items against tag vectors in the embedding space (centroids from
    :func:`class_centroids`, or a proxy model's proxies): for auto-tagging, read a row; for
    tag-to-track retrieval, sort a column.

    Args:
        embeddings: (N, D) float tensor or array.
        class_vectors: (T, D) float tensor or array, one vector per tag.
        distance: ``"cosine"`` scores by cosine similarity, in [-1, 1]; ``"euclidean"`` by
            minus the Euclidean distance, in (-inf, 0].

    Returns:
        (N, T) numpy array of scores in the inputs' dtype; larger means more likely.

    Raises:
        ValueError: On bad embeddings or class vectors (as in :func:`nearest_neighbors`), an
            unknown distance, or an all-zero row with the cosine distance.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    _require_choice(distance, DISTANCES, "distance")
    embeddings, class_vectors = _embedding_pair(
        embeddings, class_vectors, None, "embeddings", "class_vectors"
    )
    if distance == "cosine":
        unit_classes = _unit_rows(class_vectors, "class_vectors")
        scores = _unit_rows(embeddings, "embeddings") @ unit_classes.T
    else:
        # T is small, so the exact differences are cheap and keep distances near 0 accurate.
        scores = -torch.cdist(
            embeddings, class_vectors, compute_mode="donot_use_mm_for_euclid_dist"
        )
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


def concept_triplet_accuracy(embeddings, triplets, masks=None, distance="euclidean"):
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
        distance: ``"euclidean"`` or ``"cosine"``.

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
    complete = {concept: triplet_accuracy(embeddings, *concept_triplets, distance)
                for concept, concept_triplets in triplets.items()}
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


# --------------------------------------------------------------------------------------------
# Matching metrics: one true partner per query (cross-modal retrieval)
# --------------------------------------------------------------------------------------------
#
# In matching tasks a query has exactly one right answer: the score excerpt of an audio clip
# (Raffel & Ellis, 2016), the audio of a score excerpt. With query i's partner stored as
# gallery item i, everything follows from the *rank* of the partner: 1 when it is the nearest
# gallery item, N when it is the farthest. R@k is the fraction of queries whose partner ranks
# k or better, and the mean reciprocal rank (MRR) the mean of 1 / rank.

__all__ += [
    "match_ranks",
    "match_ranks_from_distances",
    "mean_reciprocal_rank",
    "recall_at_ranks",
]


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
        distance: ``"cosine"`` or ``"euclidean"``.
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
        ``{"R@1": ..., "R@5": ..., ...}``, floats in [0, 1] in the order of ``ks``. Chance,
        with N gallery items, is k / N.

    Raises:
        ValueError: On bad ranks (as in :func:`mean_reciprocal_rank`) or ks.

    Taught in notebooks/07_cross_modal.ipynb
    """
    ranks = _checked_ranks(ranks)
    return {f"R@{k}": float(np.mean(ranks <= k)) for k in _checked_ks(ks)}


def _checked_ranks(ranks):
    ranks = _as_numpy(ranks)
    if ranks.ndim != 1 or len(ranks) == 0 or ranks.dtype.kind not in "iu" or ranks.min() < 1:
        raise ValueError(
            f"ranks must be a non-empty 1-D array of integers >= 1 (from match_ranks), got "
            f"shape {ranks.shape} and dtype {ranks.dtype}."
        )
    return ranks
