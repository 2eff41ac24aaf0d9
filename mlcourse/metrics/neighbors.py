"""Nearest-neighbour search, blockwise: the search every retrieval metric starts from.

* :func:`nearest_neighbors` finds the k nearest gallery items of every query.

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
The input checks that every metric shares live here too.

Taught in notebooks/03_siamese_contrastive.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import BLOCK_BYTES, choose_device, require_positive_int
from ..distances import DISTANCES, unit_rows


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
        distance: One of :data:`mlcourse.distances.DISTANCES`.
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
        outside its group gets them first, then excluded items at distance ``inf``. Distances
        that are equal as computed are ordered by gallery index, smallest first, on every
        device. Euclidean distances come
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
                torch.addmm(self.gallery_bias, self.queries[rows], self.gallery.T, alpha=2, out=scores)
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
        squared = (self.queries.pow(2).sum(dim=1, keepdim=True) - scores).clamp_min(0)
        return squared if self.distance == "squared" else squared.sqrt()


def _scoring_form(queries, gallery, distance):
    """``(queries, gallery, gallery_bias)`` such that the scores are ``bias + 2 q.g``.

    For the cosine distance the rows are scaled to unit length (an all-zero row stays zero, see
    :func:`mlcourse.distances.unit_rows`) and there is no bias (None). The squared Euclidean
    distance ranks like the Euclidean one.
    """
    if distance == "cosine":
        unit_queries = unit_rows(queries)
        return unit_queries, unit_queries if gallery is queries else unit_rows(gallery), None
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


def _resolve_device(device, queries):
    """The torch device to compute on: ``device``, else the queries' own (``checks.choose_device``)."""
    return choose_device(device, like=queries)


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
    classes, class_indices = np.unique(np.concatenate([query_labels, gallery_labels]), return_inverse=True)
    class_indices = torch.as_tensor(class_indices, dtype=torch.long, device=search.device)
    return class_indices[: len(query_labels)], class_indices[len(query_labels) :], len(classes)


def _label_array(labels, name, n_items):
    """``labels`` as a 1-D numpy array of length ``n_items``."""
    array = _as_numpy(labels)
    if array.shape != (n_items,):
        hint = " (flatten it with .ravel())" if array.size == n_items else ""
        raise ValueError(
            f"{name} must have shape ({n_items},), one label per embedding, got shape {array.shape}{hint}."
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
