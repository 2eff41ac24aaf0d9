"""Losses for deep metric learning: train a network so that distances between embeddings
reflect labels.

A network maps each input (here, a clip of music) to an embedding vector. A metric learning
loss looks at a batch of embeddings and their labels and pulls same-label embeddings together
while pushing different-label ones apart, so that a nearest-neighbour search in the embedding
space finds items of the same class. The losses here only compare pairwise distances; they do
not normalise the embeddings (the model's last layer does, when it should).

* :func:`pairwise_distances`: the (B, B) distance matrix of a batch, in Euclidean, squared
  Euclidean or cosine distance, with a finite gradient everywhere.
* :func:`contrastive_loss` (Hadsell, Chopra & LeCun, 2006) looks at pairs: same-label pairs
  should be closer than ``pos_margin``, different-label pairs farther than ``neg_margin``.
* :func:`triplet_margin_loss` (Weinberger & Saul 2009; Schroff et al., 2015) looks at
  triplets: the anchor's positive should be closer than its negative by ``margin``. Which
  triplets count is chosen inside the batch by :func:`mlcourse.miners.mine_triplets`.
* :class:`ContrastiveLoss` and :class:`TripletMarginLoss` hold the hyper-parameters, so that
  a training loop calls ``loss_fn(embeddings, labels)``, and keep statistics of the last call.

Both losses average their hinges over the non-zero ones only (pairs or triplets that already
meet their margin are left out of the mean), as pytorch-metric-learning's default
``AvgNonZeroReducer`` does; they give the same values and gradients as its ``ContrastiveLoss``
and ``TripletMarginLoss`` (with ``LpDistance(normalize_embeddings=False)``).

The contrastive loss is taught in notebooks/03_siamese_contrastive.ipynb, the triplet loss
and its mining in notebooks/04_triplet_mining.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlcourse.miners import (
    _as_labels,
    _require_positive_margin,
    _require_strategy,
    mine_triplets,
    positive_negative_masks,
)

__all__ = [
    "DISTANCES",
    "ContrastiveLoss",
    "TripletMarginLoss",
    "contrastive_loss",
    "pairwise_distances",
    "triplet_margin_loss",
]

DISTANCES = ("euclidean", "squared", "cosine")
"""The distances of :func:`pairwise_distances`: Euclidean, squared Euclidean, 1 - cosine."""


# --------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------


def pairwise_distances(x, y=None, distance="euclidean"):
    """Distances between every row of ``x`` and every row of ``y``.

    * ``"euclidean"``: ``||x_i - y_j||``;
    * ``"squared"``: ``||x_i - y_j||^2``;
    * ``"cosine"``: ``1 - cos(x_i, y_j)``, in [0, 2]; it ignores the vectors' lengths.

    Squared distances are computed as ``||x_i||^2 + ||y_j||^2 - 2 x_i . y_j``, one matrix
    product instead of a (B, B', D) tensor of differences; rounding can make that slightly
    negative, so it is clamped. The square root has an infinite slope at 0, so for
    ``"euclidean"`` the clamp is at the smallest positive float instead of 0: the gradient
    stays finite (and is 0 where the clamp acts), and two rows that coincide are about 1e-19
    apart (in float32) rather than 0. Without ``y``, the diagonal (each row against itself)
    is exactly 0 for every distance, with a zero gradient.

    Args:
        x: (B, D) float tensor.
        y: (B', D) float tensor of the same dtype and device, or None for ``x`` itself.
        distance: One of :data:`DISTANCES`.

    Returns:
        (B, B') tensor of distances, in the dtype and on the device of ``x``, differentiable.

    Raises:
        ValueError: If ``distance`` is unknown, or ``x`` or ``y`` is not a 2-D float tensor
            (or their dimensions D differ).

    Example:
        >>> pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        tensor([[0., 5.],
                [5., 0.]])

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    _require_distance(distance)
    _require_embeddings(x, "x")
    if y is not None:
        _require_embeddings(y, "y")
        _require_same_width(x, y)
    y_or_x = x if y is None else y
    if distance == "cosine":
        result = _cosine_distances(x, y_or_x)
    elif distance == "squared":
        result = _squared_distances(x, y_or_x, 0.0)
    else:
        # pow(0.5) rather than sqrt(): its backward keeps its input, not its output, which
        # leaves us free to overwrite the output's diagonal below.
        result = _squared_distances(x, y_or_x, torch.finfo(x.dtype).tiny).pow(0.5)
    if y is None:
        # Rounding leaves |x|^2 + |x|^2 - 2 x.x a little off 0. Writing the B zeros in place
        # is cheaper than masking all B^2 entries, and autograd gives them a zero gradient.
        result.diagonal().zero_()
    return result


def _squared_distances(x, y, smallest):
    """``||x_i - y_j||^2`` from norms and one matrix product, clamped at ``smallest``."""
    x_norms = (x * x).sum(dim=1)
    y_norms = x_norms if y is x else (y * y).sum(dim=1)
    squared_norms = x_norms[:, None] + y_norms[None, :]
    return torch.addmm(squared_norms, x, y.T, alpha=-2).clamp_min(smallest)


def _cosine_distances(x, y):
    """``1 - cos(x_i, y_j)``, clamped to [0, 2] (rounding can step past the ends)."""
    similarities = F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    return (1.0 - similarities).clamp(0.0, 2.0)


# --------------------------------------------------------------------------------------------
# Shared by the losses: reading entries of the distance matrix, averaging hinges
# --------------------------------------------------------------------------------------------


def _entries(matrix, rows, columns):
    """``matrix[rows, columns]``, read from the flattened matrix.

    The same values; but the backward pass of ``index_select`` adds the gradients back with
    ``index_add``, which on a CPU takes about half the time of the backward pass of 2-D
    indexing when there are millions of triplets.
    """
    return matrix.flatten().index_select(0, rows * matrix.shape[1] + columns)


def _mean_of_nonzero(hinges):
    """The mean of the positive entries of ``hinges`` (>= 0), or 0 when there are none.

    Dividing the full sum by the count keeps the result connected to the graph even when it
    is 0, so ``backward()`` works (and gives zero gradients) on a batch with nothing to learn.
    """
    return hinges.sum() / torch.count_nonzero(hinges).clamp_min(1)


# --------------------------------------------------------------------------------------------
# Contrastive loss
# --------------------------------------------------------------------------------------------


def contrastive_loss(
    embeddings,
    labels,
    pos_margin=0.0,
    neg_margin=1.0,
    distance="euclidean",
    pairs=None,
    *,
    return_stats=False,
):
    """The contrastive loss: pull same-label pairs within ``pos_margin``, push others past
    ``neg_margin``.

    Over the pairs of the batch, with ``d`` the pair's distance::

        positive pairs (same label):      [d - pos_margin]_+
        negative pairs (different labels): [neg_margin - d]_+

    Each of the two terms is averaged over its non-zero hinges only (0 if there are none),
    then the two are added. Averaging over the pairs that still violate their margin keeps
    the loss from fading away as more and more pairs become satisfied. By default the pairs
    are all ``i < j`` of the batch; each unordered pair counts once (counting both orders,
    as pytorch-metric-learning does, doubles both sums and counts: the same averages).

    Args:
        embeddings: (B, D) float tensor.
        labels: (B,) integer tensor of class labels; may be None when ``pairs`` is given.
        pos_margin: Distance under which a positive pair costs nothing, >= 0.
        neg_margin: Distance beyond which a negative pair costs nothing, > ``pos_margin``.
        distance: One of :data:`DISTANCES`.
        pairs: None for all pairs of the batch, or ``(anchor_pos, positive, anchor_neg,
            negative)``, four 1-D int64 tensors of row indices (the first two of equal
            length P+, the last two of equal length P-), e.g. from a pair sampler.
        return_stats: Also return a dict of statistics (see :class:`ContrastiveLoss`).

    Returns:
        A scalar tensor; or ``(loss, stats)`` when ``return_stats`` is true.

    Raises:
        ValueError: If ``embeddings`` is not a 2-D float tensor, ``labels`` does not have one
            entry per row, the margins are not ``0 <= pos_margin < neg_margin``, ``distance``
            is unknown, or ``pairs`` is malformed.

    Example:
        >>> embeddings = torch.tensor([[0.0, 0.0], [0.0, 0.5], [0.0, 0.8]])
        >>> round(float(contrastive_loss(embeddings, torch.tensor([0, 0, 1]))), 4)
        0.95

    Here the positive pair (0, 1) costs 0.5 - 0 and the negative pairs (0, 2) and (1, 2)
    cost 1 - 0.8 and 1 - 0.3: 0.5 + (0.2 + 0.7) / 2.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    _require_contrastive_margins(pos_margin, neg_margin)
    distances = pairwise_distances(embeddings, distance=distance)
    if labels is not None or pairs is None:
        labels = _as_labels(labels, len(embeddings), embeddings.device)
    if pairs is None:
        pair_hinges = _hinges_of_all_pairs(distances, labels, pos_margin, neg_margin)
    else:
        pair_hinges = _hinges_of_given_pairs(distances, pairs, pos_margin, neg_margin)
    positive_hinges, negative_hinges, n_positive, n_negative = pair_hinges
    loss = _mean_of_nonzero(positive_hinges) + _mean_of_nonzero(negative_hinges)
    if not return_stats:
        return loss
    return loss, {
        "loss": loss.item(),
        "positive_pairs": int(n_positive),
        "negative_pairs": int(n_negative),
        "active_positive_pairs": int(torch.count_nonzero(positive_hinges)),
        "active_negative_pairs": int(torch.count_nonzero(negative_hinges)),
    }


def _hinges_of_all_pairs(distances, labels, pos_margin, neg_margin):
    """The hinges of every pair ``i < j`` of the batch.

    A batch holds few positive pairs (K - 1 per sample, with K samples per class) and many
    negative ones (nearly all pairs). So the positives are gathered into a vector, while the
    negatives stay a (B, B) matrix, 0 where there is no negative pair: masking the whole
    matrix is faster than gathering most of it, and the zeros drop out of the mean.

    Returns:
        ``(positive_hinges, negative_hinges, n_positive, n_negative)``: a (P+,) and a (B, B)
        tensor, and the numbers of pairs of each kind.
    """
    positive, negative = positive_negative_masks(labels)
    upper = torch.ones_like(positive).triu_(diagonal=1)
    anchor, partner = (positive & upper).nonzero(as_tuple=True)
    negative &= upper
    positive_hinges = F.relu(_entries(distances, anchor, partner) - pos_margin)
    negative_hinges = F.relu(torch.where(negative, neg_margin - distances, 0.0))
    return positive_hinges, negative_hinges, len(anchor), torch.count_nonzero(negative)


def _hinges_of_given_pairs(distances, pairs, pos_margin, neg_margin):
    """The hinges of explicit pairs, as (P+,) and (P-,) vectors, with their numbers."""
    names = ("anchor_pos", "positive", "anchor_neg", "negative")
    anchor_pos, positive, anchor_neg, negative = _checked_indices(
        pairs, names, len(distances), distances.device)
    positive_hinges = F.relu(_entries(distances, anchor_pos, positive) - pos_margin)
    negative_hinges = F.relu(neg_margin - _entries(distances, anchor_neg, negative))
    return positive_hinges, negative_hinges, len(positive_hinges), len(negative_hinges)


# --------------------------------------------------------------------------------------------
# Triplet margin loss
# --------------------------------------------------------------------------------------------


def triplet_margin_loss(
    embeddings,
    labels,
    margin=0.2,
    mining="all",
    distance="euclidean",
    triplets=None,
    *,
    return_stats=False,
):
    """The triplet margin loss: each anchor's positive closer than its negative by ``margin``.

    For a triplet ``(a, p, n)`` the hinge is ``[d(a, p) - d(a, n) + margin]_+``. The triplets
    are mined inside the batch from its distance matrix by
    :func:`mlcourse.miners.mine_triplets` with strategy ``mining``, then the loss is the mean
    of the non-zero hinges (0 if there are none): triplets that already meet the margin do not
    dilute the average.

    Args:
        embeddings: (B, D) float tensor.
        labels: (B,) integer tensor of class labels; may be None when ``triplets`` is given.
        margin: The required gap between ``d(a, n)`` and ``d(a, p)``, > 0.
        mining: A strategy of :data:`mlcourse.miners.STRATEGIES`: ``"all"``, ``"hard"``,
            ``"semihard"``, ``"easy"``, ``"batch_hard"`` or ``"none"``.
        distance: One of :data:`DISTANCES`.
        triplets: None to mine, or ``(anchor, positive, negative)``, three 1-D int64 tensors
            of row indices of equal length, e.g. from a triplet sampler (``mining`` is then
            not used).
        return_stats: Also return a dict of statistics (see :class:`TripletMarginLoss`).

    Returns:
        A scalar tensor; or ``(loss, stats)`` when ``return_stats`` is true.

    Raises:
        ValueError: If ``embeddings`` is not a 2-D float tensor, ``labels`` does not have one
            entry per row, ``margin <= 0``, ``mining`` or ``distance`` is unknown, or
            ``triplets`` is malformed.

    Example:
        >>> embeddings = torch.tensor([[0.0, 0.0], [0.0, 0.5], [0.0, 0.6]])
        >>> round(float(triplet_margin_loss(embeddings, torch.tensor([0, 0, 1]))), 4)
        0.35

    The two triplets cost 0.5 - 0.6 + 0.2 (anchor 0) and 0.5 - 0.1 + 0.2 (anchor 1).

    Taught in notebooks/04_triplet_mining.ipynb
    """
    _require_positive_margin(margin)
    distances = pairwise_distances(embeddings, distance=distance)
    if labels is not None or triplets is None:
        labels = _as_labels(labels, len(embeddings), embeddings.device)
    if triplets is None:
        triplets = mine_triplets(distances.detach(), labels, margin, mining)
    else:
        triplets = _checked_indices(triplets, ("anchor", "positive", "negative"),
                                    len(embeddings), embeddings.device)
    anchor, positive, negative = triplets
    hinges = F.relu(
        _entries(distances, anchor, positive) - _entries(distances, anchor, negative) + margin)
    loss = _mean_of_nonzero(hinges)
    if not return_stats:
        return loss
    n_active = int(torch.count_nonzero(hinges))
    return loss, {
        "loss": loss.item(),
        "triplets": len(hinges),
        "valid_triplets": None if labels is None else _count_valid_triplets(labels),
        "active_triplets": n_active,
        "active_fraction": n_active / len(hinges) if len(hinges) else 0.0,
    }


def _count_valid_triplets(labels):
    """How many (anchor, positive, negative) triplets a batch holds, without listing them.

    An anchor of a class of size ``c`` has ``c - 1`` positives and ``B - c`` negatives.
    """
    _, class_sizes = torch.unique(labels, return_counts=True)
    return int((class_sizes * (class_sizes - 1) * (len(labels) - class_sizes)).sum())


# --------------------------------------------------------------------------------------------
# Modules for a training loop
# --------------------------------------------------------------------------------------------


class ContrastiveLoss(torch.nn.Module):
    """:func:`contrastive_loss` as a module: ``loss_fn(embeddings, labels)``.

    Args:
        pos_margin, neg_margin, distance: As in :func:`contrastive_loss`, checked here.

    Attributes:
        last_stats: A dict about the last call, for plotting during training: ``loss``,
            ``positive_pairs`` and ``negative_pairs`` (how many pairs of each kind),
            ``active_positive_pairs`` and ``active_negative_pairs`` (how many have a non-zero
            hinge). Empty before the first call.

    Example:
        >>> loss_fn = ContrastiveLoss(neg_margin=0.5)
        >>> loss = loss_fn(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> sorted(loss_fn.last_stats)[:2]
        ['active_negative_pairs', 'active_positive_pairs']

    Taught in notebooks/03_siamese_contrastive.ipynb
    """

    def __init__(self, pos_margin=0.0, neg_margin=1.0, distance="euclidean"):
        super().__init__()
        _require_contrastive_margins(pos_margin, neg_margin)
        _require_distance(distance)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        self.distance = distance
        self.last_stats = {}

    def forward(self, embeddings, labels, pairs=None):
        """The loss of a batch; see :func:`contrastive_loss` (``pairs`` as there).

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer tensor of class labels.

        Returns:
            A scalar tensor.

        Taught in notebooks/03_siamese_contrastive.ipynb
        """
        loss, self.last_stats = contrastive_loss(
            embeddings, labels, self.pos_margin, self.neg_margin, self.distance, pairs,
            return_stats=True,
        )
        return loss

    def extra_repr(self):
        return (f"pos_margin={self.pos_margin}, neg_margin={self.neg_margin}, "
                f"distance={self.distance!r}")


class TripletMarginLoss(torch.nn.Module):
    """:func:`triplet_margin_loss` as a module: ``loss_fn(embeddings, labels)``.

    Args:
        margin, mining, distance: As in :func:`triplet_margin_loss`, checked here.

    Attributes:
        last_stats: A dict about the last call, for plotting during training: ``loss``,
            ``triplets`` (how many were mined), ``valid_triplets`` (how many the batch holds,
            mined or not; None when the call had no labels), ``active_triplets`` (how many
            mined ones have a non-zero hinge) and ``active_fraction`` (active over mined, 0
            when none were mined). Empty before the first call.

    Example:
        >>> loss_fn = TripletMarginLoss(margin=0.2, mining="semihard")
        >>> loss = loss_fn(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> sorted(loss_fn.last_stats)
        ['active_fraction', 'active_triplets', 'loss', 'triplets', 'valid_triplets']

    Taught in notebooks/04_triplet_mining.ipynb
    """

    def __init__(self, margin=0.2, mining="all", distance="euclidean"):
        super().__init__()
        _require_positive_margin(margin)
        _require_distance(distance)
        _require_strategy(mining)
        self.margin = margin
        self.mining = mining
        self.distance = distance
        self.last_stats = {}

    def forward(self, embeddings, labels, triplets=None):
        """The loss of a batch; see :func:`triplet_margin_loss` (``triplets`` as there).

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer tensor of class labels.

        Returns:
            A scalar tensor.

        Taught in notebooks/04_triplet_mining.ipynb
        """
        loss, self.last_stats = triplet_margin_loss(
            embeddings, labels, self.margin, self.mining, self.distance, triplets,
            return_stats=True,
        )
        return loss

    def extra_repr(self):
        return f"margin={self.margin}, mining={self.mining!r}, distance={self.distance!r}"


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _require_distance(distance):
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}: use one of {DISTANCES}.")


def _require_embeddings(embeddings, name):
    if not torch.is_tensor(embeddings) or not embeddings.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape (B, D); got "
                         f"{type(embeddings).__name__}. Convert with torch.as_tensor(..., "
                         "dtype=torch.float32).")
    if embeddings.ndim != 2:
        raise ValueError(f"{name} must have shape (B, D), one row per sample; got shape "
                         f"{tuple(embeddings.shape)}. A single embedding needs x[None, :], "
                         "a batch of feature maps x.flatten(1).")


def _require_same_width(x, y):
    if x.shape[1] != y.shape[1] or x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"x and y must have the same dimension, dtype and device; got "
                         f"{tuple(x.shape)} {x.dtype} {x.device} and {tuple(y.shape)} "
                         f"{y.dtype} {y.device}.")


def _require_contrastive_margins(pos_margin, neg_margin):
    if not 0 <= pos_margin < neg_margin:
        raise ValueError(f"the margins must satisfy 0 <= pos_margin < neg_margin, got "
                         f"pos_margin={pos_margin!r}, neg_margin={neg_margin!r}: positive pairs "
                         "should end up closer than negative ones.")


def _checked_indices(indices, names, n_samples, device):
    """A tuple of index tensors (pairs or triplets), checked and moved to ``device``.

    Raises:
        ValueError: If there are not ``len(names)`` 1-D integer tensors, lengths that must
            match do not, or an index is outside ``[0, n_samples)``.
    """
    if not isinstance(indices, (tuple, list)) or len(indices) != len(names):
        raise ValueError(f"expected a tuple of {len(names)} index tensors ({', '.join(names)}), "
                         f"got {type(indices).__name__}{_length_note(indices)}.")
    indices = tuple(torch.as_tensor(index, device=device) for index in indices)
    for name, index in zip(names, indices):
        if index.ndim != 1 or index.is_floating_point() or index.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D tensor of integer row indices, got "
                             f"{index.dtype} of shape {tuple(index.shape)}.")
        if len(index) and not 0 <= int(index.min()) <= int(index.max()) < n_samples:
            raise ValueError(f"{name} holds indices outside [0, {n_samples}), the batch's rows.")
    # Pairs come as (anchor, positive, anchor, negative): the lengths match two by two.
    groups = [indices] if len(indices) == 3 else [indices[:2], indices[2:]]
    if any(len({len(index) for index in group}) > 1 for group in groups):
        raise ValueError(f"{', '.join(names)} must have matching lengths, got "
                         f"{[len(index) for index in indices]}.")
    return tuple(index.long() for index in indices)


def _length_note(value):
    return f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""
