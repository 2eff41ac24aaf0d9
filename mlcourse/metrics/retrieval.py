"""Retrieval metrics: are the items of a query's class near it?

* :func:`recall_at_k` (R@K) is the fraction of queries with at least one item of their own
  class among their k nearest neighbours, the headline number of deep metric learning papers
  (Song et al., 2016; Lee et al., ISMIR 2020).
* :func:`mean_average_precision` (mAP) scores the whole ranking of the gallery, not just its top.
* :func:`retrieval_accuracies` gives the field's other usual numbers under the names of
  pytorch-metric-learning's ``AccuracyCalculator``: precision at 1, R-precision, MAP@R
  (Musgrave et al., 2020) and the mean reciprocal rank.
* :func:`chance_recall_at_1` is the R@1 of a random neighbour: the level R@1 must beat.
* :func:`group_spread` compares distances within groups (e.g. clips of one recording) with
  distances between groups.

Taught in notebooks/03_siamese_contrastive.ipynb, notebooks/09_applications.ipynb and
notebooks/10_reality_check.ipynb
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .matching import mean_reciprocal_rank
from .neighbors import _checked_ks, _embedding_pair, _encoded_labels, _Search, _top_k_ties_by_index


@torch.no_grad()
def recall_at_k(
    embeddings,
    labels,
    ks=(1, 2, 4, 8),
    *,
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
        distance: One of :data:`mlcourse.distances.DISTANCES`.
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
    *,
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
        distance: One of :data:`mlcourse.distances.DISTANCES`.
        block_size, device, groups, gallery_groups: as in :func:`nearest_neighbors`; with
            groups, the items of the query's own group are left out of its ranking.

    Returns:
        The mAP, a float in (0, 1].

    Raises:
        ValueError: On bad embeddings or labels (as in :func:`recall_at_k`), or if no query has
            a relevant item in the gallery.

    Taught in notebooks/09_applications.ipynb
    """
    search, query_classes, gallery_classes, members = _ranking_by_class(
        embeddings, labels, gallery, gallery_labels, distance, block_size, device, groups, gallery_groups
    )
    precisions = []
    for rows, scores in search.score_blocks():
        relevant_scores = members.scores(scores, query_classes[rows])
        precisions.append(_average_precisions(scores, relevant_scores))
    # One sum over all the queries, so that the block size cannot change the rounding.
    precisions = torch.cat(precisions)
    if len(precisions) == 0:
        raise _no_relevant_item("mAP is")
    return float(precisions.mean())


@torch.no_grad()
def retrieval_accuracies(
    embeddings,
    labels,
    *,
    gallery=None,
    gallery_labels=None,
    distance="euclidean",
    block_size=None,
    device=None,
    groups=None,
    gallery_groups=None,
):
    """Precision at 1, R-precision, MAP@R and MRR, named as pytorch-metric-learning names them.

    The relevant items of a query are the gallery items with its label (less the query itself
    without a gallery, and less its own group with groups); R is their number, which differs
    from query to query. The gallery is ranked by distance, equal distances by gallery index
    as in :func:`nearest_neighbors`, and

    * ``"precision_at_1"``: the share of queries whose nearest item is relevant. It is R@1 of
      :func:`recall_at_k` over the queries that have a relevant item. R@K asks for at least
      one relevant item among the K nearest, so it only grows with K, and already with K = 2
      it says nothing about the nearest item alone.
    * ``"r_precision"``: the share of relevant items among the R nearest, 1 when they are
      exactly the relevant ones.
    * ``"mean_average_precision_at_r"`` (MAP@R, Musgrave et al., 2020): the average precision
      truncated at R, the mean over the R first places of the precision at each place that
      holds a relevant item, 0 at the others: ``(1/R) sum_{i<=R} P(i) rel(i)``. It is 1 only
      when the relevant items come first, and unlike R-precision it also rewards their order
      within the R nearest. :func:`mean_average_precision` scores the whole ranking instead.
    * ``"mean_reciprocal_rank"``: the mean of ``1 / rank`` of the nearest relevant item, as
      in :func:`mean_reciprocal_rank`.

    Each is a mean over the queries that have a relevant item; the others (without a gallery:
    a class of one item) are left out, as pytorch-metric-learning leaves them out, whereas
    :func:`recall_at_k` counts them as misses. On data without equal distances the four
    numbers are those of ``AccuracyCalculator(k=None)``, or ``k="max_bin_count"`` for the
    first three; with an int k smaller than a class, that one caps R at k.

    Args:
        embeddings: (Q, D) float tensor or array, the queries.
        labels: (Q,) int or str labels of the queries, an array, tensor or list.
        gallery: (N, D) float tensor or array to rank; ``None`` ranks the queries themselves,
            each query left out of its own ranking.
        gallery_labels: (N,) labels of the gallery, needed with it and only with it.
        distance: One of :data:`mlcourse.distances.DISTANCES`.
        block_size, device, groups, gallery_groups: as in :func:`nearest_neighbors`; with
            groups, the items of the query's own group are left out of its ranking.

    Returns:
        ``{"precision_at_1": ..., "r_precision": ..., "mean_average_precision_at_r": ...,
        "mean_reciprocal_rank": ...}``, floats in [0, 1].

    Raises:
        ValueError: On bad embeddings or labels (as in :func:`recall_at_k`), or if no query has
            a relevant item in the gallery.

    Example:
        Queries 2 and 4 are alone in their classes, so only 0, 1 and 3 are scored; the
        nearest item of query 3 is a "b", its second nearest an "a":

        >>> points, labels = [[0.0], [1.0], [3.0], [4.0], [9.0]], ["a", "a", "b", "a", "c"]
        >>> for name, value in retrieval_accuracies(points, labels).items():
        ...     print(f"{name}: {value:.3f}")
        precision_at_1: 0.667
        r_precision: 0.500
        mean_average_precision_at_r: 0.417
        mean_reciprocal_rank: 0.833

        :func:`recall_at_k` counts queries 2 and 4 as misses: R@1 is 2 / 5, not 2 / 3.

        >>> recall_at_k(points, labels, ks=1)
        {1: 0.4}

    Taught in notebooks/10_reality_check.ipynb
    """
    search, query_classes, gallery_classes, members = _ranking_by_class(
        embeddings, labels, gallery, gallery_labels, distance, block_size, device, groups, gallery_groups
    )
    per_query = {"rank": [], "r_precision": [], "average_precision_at_r": []}
    for rows, scores in search.score_blocks():
        classes = query_classes[rows]
        relevant_scores, relevant_columns = members.scores_and_columns(scores, classes)
        n_relevant = (relevant_scores > -torch.inf).sum(dim=1)
        scored = n_relevant > 0
        if not scored.any():
            continue
        per_query["rank"].append(_rank_of_nearest_relevant(scores, relevant_scores, relevant_columns)[scored])
        # The R nearest of every query of the block, R up to the block's largest.
        _, neighbours = _top_k_ties_by_index(scores, int(n_relevant.max()))
        places = torch.arange(1, neighbours.shape[1] + 1, device=scores.device)
        hits = (gallery_classes[neighbours] == classes[:, None]) & (places <= n_relevant[:, None])
        precisions = hits.cumsum(dim=1).double() / places * hits
        per_query["r_precision"].append((hits.sum(dim=1).double() / n_relevant)[scored])
        per_query["average_precision_at_r"].append((precisions.sum(dim=1) / n_relevant)[scored])
    if not per_query["rank"]:
        raise _no_relevant_item("these metrics are")
    # One mean over all the queries, so that the block size cannot change the rounding.
    ranks, r_precisions, average_precisions = (torch.cat(values) for values in per_query.values())
    return {
        "precision_at_1": float((ranks == 1).double().mean()),
        "r_precision": float(r_precisions.mean()),
        "mean_average_precision_at_r": float(average_precisions.mean()),
        "mean_reciprocal_rank": mean_reciprocal_rank(ranks.cpu().numpy()),
    }


def _ranking_by_class(
    embeddings, labels, gallery, gallery_labels, distance, block_size, device, groups, gallery_groups
):
    """The search, the queries' and gallery's class codes and the class members, for ranking metrics."""
    queries, gallery = _embedding_pair(embeddings, gallery, device, "embeddings", "gallery")
    search = _Search(queries, gallery, distance, None, block_size)
    search.exclude_groups(groups, gallery_groups)
    query_classes, gallery_classes, n_classes = _encoded_labels(search, labels, gallery_labels)
    return search, query_classes, gallery_classes, _ClassMembers(gallery_classes, n_classes)


def _no_relevant_item(what):
    """The error of a ranking metric when no query has a relevant item."""
    return ValueError(
        f"No query has a relevant item (one with its label) in the gallery, so {what} "
        "undefined: check that the labels match, and that classes have 2 or more items "
        "when there is no separate gallery."
    )


def _rank_of_nearest_relevant(scores, relevant_scores, relevant_columns):
    """The place of each query's nearest relevant item in its ranking, equal scores by column.

    Counting, rather than sorting: the items scoring more than the nearest relevant one, and
    those scoring the same with a smaller column, come before it.

    Args:
        scores: (B, N) tensor. relevant_scores, relevant_columns: (B, M) from
            :meth:`_ClassMembers.scores_and_columns`.

    Returns:
        (B,) int64 tensor of ranks from 1; meaningless for a row without a relevant item.
    """
    best = relevant_scores.max(dim=1, keepdim=True).values
    first_column = relevant_columns.masked_fill(relevant_scores != best, scores.shape[1]).amin(dim=1, keepdim=True)
    columns = torch.arange(scores.shape[1], device=scores.device)
    tied_before = (scores == best) & (columns < first_column)
    return 1 + (scores > best).sum(dim=1) + tied_before.sum(dim=1)


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
        return self.scores_and_columns(scores, query_classes)[0]

    def scores_and_columns(self, scores, query_classes):
        """:meth:`scores`, and the (B, M) gallery columns of the members (any in the padding)."""
        positions = self.starts[query_classes, None] + self.offsets
        # The padding's positions may run past the end; any real index will do for them.
        positions = positions.clamp(max=len(self.by_class) - 1)
        columns = self.by_class[positions]
        member_scores = scores.gather(1, columns)
        padding = self.offsets >= self.sizes[query_classes, None]
        return member_scores.masked_fill(padding, -torch.inf), columns


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
    relevant_at_or_above = relevant_scores.shape[1] - torch.searchsorted(relevant_scores, relevant_scores)
    precisions = (relevant_at_or_above.double() / at_or_above) * is_relevant
    n_relevant = is_relevant.sum(dim=1)
    has_relevant = n_relevant > 0
    return precisions.sum(dim=1)[has_relevant] / n_relevant[has_relevant]


def chance_recall_at_1(labels, groups=None):
    """The R@1 of a random neighbour: what R@1 is when the embedding knows nothing.

    For each query, the share of its candidate neighbours (every other item, or every item of
    another group) that share its label, averaged over the queries. A query without a
    candidate counts as a miss, as in :func:`recall_at_k`.

    Args:
        labels: (N,) labels.
        groups: Optional (N,) group ids (e.g. pieces); candidates are then the items of other
            groups, as with ``recall_at_k(..., groups=groups)``.

    Returns:
        A float in [0, 1].

    Taught in notebooks/06_disentangled.ipynb
    """
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    if labels.ndim != 1 or groups.shape != labels.shape:
        raise ValueError(f"labels and groups must be (N,) arrays of one length, got {labels.shape}, {groups.shape}")
    candidate = groups[:, None] != groups[None, :]
    same_label = (labels[:, None] == labels[None, :]) & candidate
    candidates = candidate.sum(axis=1)
    shares = np.divide(same_label.sum(axis=1), candidates, out=np.zeros(len(labels)), where=candidates > 0)
    return float(shares.mean())


def group_spread(embeddings, groups):
    """How tight groups are: mean cosine distance within a group over that between groups.

    Below 1, the items of a group (e.g. the clips of one recording) sit closer to each other
    than to items of other groups; 1 means the embedding ignores the groups.

    Args:
        embeddings: (N, D) array or tensor.
        groups: (N,) group ids; at least one group must have two items.

    Returns:
        A float.

    Taught in notebooks/06_disentangled.ipynb
    """
    unit = torch.nn.functional.normalize(torch.as_tensor(embeddings, dtype=torch.float64), dim=1)
    distances = (1 - unit @ unit.T).numpy()
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    if len(codes) != len(distances):
        raise ValueError(f"groups has {len(codes)} entries for {len(distances)} embeddings")
    same = codes[:, None] == codes[None, :]
    np.fill_diagonal(same, False)
    if not same.any():
        raise ValueError("group_spread needs a group with at least two items")
    return float(distances[same].mean() / distances[codes[:, None] != codes[None, :]].mean())


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
