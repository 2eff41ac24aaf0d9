"""Losses for deep metric learning: train a network so that distances between embeddings
reflect labels.

A network maps each input (here, a clip of music) to an embedding vector. A metric learning
loss looks at a batch of embeddings and their labels and pulls same-label embeddings together
while pushing different-label ones apart, so that a nearest-neighbour search in the embedding
space finds items of the same class. The pair and triplet losses only compare pairwise
distances; they do not normalise the embeddings (the model's last layer does, when it should).

* :func:`pairwise_distances`: the (B, B) distance matrix of a batch, in Euclidean, squared
  Euclidean or cosine distance, with a finite gradient everywhere.
* :func:`contrastive_loss` (Hadsell, Chopra & LeCun, 2006) looks at pairs: same-label pairs
  should be closer than ``pos_margin``, different-label pairs farther than ``neg_margin``.
* :func:`triplet_margin_loss` (Weinberger & Saul 2009; Schroff et al., 2015) looks at
  triplets: the anchor's positive should be closer than its negative by ``margin``. Which
  triplets count is chosen inside the batch by :func:`mlcourse.miners.mine_triplets`.
* :class:`ContrastiveLoss` and :class:`TripletMarginLoss` hold the hyper-parameters, so that
  a training loop calls ``loss_fn(embeddings, labels)``, and keep statistics of the last call.

Classification is metric learning against one learned vector per class (a *proxy*): the
losses below own those vectors as parameters, so the training loop learns them with the
network, and :meth:`class_vectors` gives them back for scoring tags by cosine.

* :func:`normalized_softmax_logits` (cosine to each class vector over a temperature) and
  :func:`proxy_nca_logits` (minus the scaled squared distance to each proxy); both normalise
  embeddings and class vectors, and differ only by a constant per row and the scale.
* :func:`logits_loss`: cross-entropy of class codes, or per-tag binary cross-entropy of
  multi-hot tags; :func:`check_class_labels` checks either form.
* :func:`proxy_nca_loss` (Movshovitz-Attias et al., 2017), with a multi-label form in which
  each positive tag competes only with the clip's negative tags.
* :class:`ClassificationLoss` (normalised softmax, as pytorch-metric-learning's
  ``NormalizedSoftmaxLoss``, or a plain linear classifier; single- or multi-label) and
  :class:`ProxyNCALoss` (as its ``ProxyNCALoss``; single- or multi-label).

Both losses average their hinges over the non-zero ones only (pairs or triplets that already
meet their margin are left out of the mean), as pytorch-metric-learning's default
``AvgNonZeroReducer`` does; they give the same values and gradients as its ``ContrastiveLoss``
and ``TripletMarginLoss`` (with ``LpDistance(normalize_embeddings=False)``).

Without labels, the positives come from the data (see the section at the end):

* :func:`nt_xent_loss` (SimCLR, Chen et al., 2020): two augmented views of each clip find
  each other among the batch;
* :func:`info_nce_loss`: the same across two modalities, audio clip against its piano roll;
* :func:`adjacency_dssm_loss` (Bretan & Heck, 2019): a clip picks the clip that follows it
  out of a softmax over similarities ``1 / (1 + distance)``; :func:`easy_negative_fraction`
  measures how many of its negatives are already easy.

The contrastive loss is taught in notebooks/03_siamese_contrastive.ipynb, the triplet loss
and its mining in notebooks/04_triplet_mining.ipynb, classification and proxies in
notebooks/05_classification_and_proxies.ipynb, InfoNCE in notebooks/07_cross_modal.ipynb,
NT-Xent and the adjacency DSSM in notebooks/08_self_supervised.ipynb.
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
    "ClassificationLoss",
    "ContrastiveLoss",
    "ProxyNCALoss",
    "TripletMarginLoss",
    "check_class_labels",
    "contrastive_loss",
    "logits_loss",
    "normalized_softmax_logits",
    "pairwise_distances",
    "proxy_nca_logits",
    "proxy_nca_loss",
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
    triplets_were_mined = triplets is None
    if triplets_were_mined:
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
    n_valid = None if labels is None else _count_valid_triplets(labels)
    # "all" and "none" mine every triplet whose hinge is not 0, so the hinges summed over the
    # mined ones are the hinges summed over the batch's valid triplets.
    every_active_mined = n_valid and mining in ("all", "none") and triplets_were_mined
    return loss, {
        "loss": loss.item(),
        "triplets": len(hinges),
        "valid_triplets": n_valid,
        "active_triplets": n_active,
        "active_fraction": n_active / len(hinges) if len(hinges) else 0.0,
        "active_share_of_valid": n_active / n_valid if n_valid else None,
        "mean_hinge_of_valid": float(hinges.detach().sum()) / n_valid if every_active_mined else None,
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
            mined ones have a non-zero hinge), ``active_fraction`` (active over mined, 0
            when none were mined), ``active_share_of_valid`` (active over valid) and
            ``mean_hinge_of_valid`` (the hinge averaged over every valid triplet, zeros
            included; only for mining ``"all"`` or ``"none"``, else None). The loss itself
            averages the active hinges only, so it stays near the margin while the network
            improves; these two fall as it learns. Empty before the first call.

    Example:
        >>> loss_fn = TripletMarginLoss(margin=0.2, mining="semihard")
        >>> loss = loss_fn(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> sorted(loss_fn.last_stats)[:3]
        ['active_fraction', 'active_share_of_valid', 'active_triplets']

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


# --------------------------------------------------------------------------------------------
# Classification as metric learning: logits from class vectors
# --------------------------------------------------------------------------------------------


def normalized_softmax_logits(embeddings, weights, temperature=0.05):
    """Cosine similarities between embeddings and class vectors, divided by a temperature.

    ``logits[i, c] = cos(e_i, w_c) / temperature``. With both sides L2-normalised, a softmax
    classifier scores a class by the angle to its vector alone, so its class vectors are points
    of the same sphere as the embeddings: classification becomes metric learning against one
    learned point per class. The cosine lies in [-1, 1]; a small temperature spreads it out
    enough for the softmax to become confident.

    Args:
        embeddings: (B, D) float tensor.
        weights: (C, D) float tensor, one vector per class (any length; it is normalised).
        temperature: > 0.

    Returns:
        (B, C) tensor of logits in ``[-1/temperature, 1/temperature]``, differentiable with
        respect to both arguments.

    Raises:
        ValueError: If the tensors are not 2-D float tensors of the same D, dtype and device,
            or ``temperature <= 0``.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    _require_positive("temperature", temperature)
    _require_class_vectors(embeddings, weights)
    return F.normalize(embeddings, dim=1) @ F.normalize(weights, dim=1).T / temperature


def proxy_nca_logits(embeddings, proxies, softmax_scale=1.0):
    """Minus the scaled squared distances between normalised embeddings and proxies.

    ``logits[i, c] = -softmax_scale * ||e_i/|e_i| - p_c/|p_c|| ^ 2``. For unit vectors
    ``||e - p||^2 = 2 - 2 cos(e, p)``, so up to a constant per row (which a softmax ignores)
    these are :func:`normalized_softmax_logits` with ``temperature = 1 / (2 softmax_scale)``:
    Proxy-NCA and the normalised softmax classifier are the same model.

    Args:
        embeddings: (B, D) float tensor.
        proxies: (C, D) float tensor, one proxy per class (any length; it is normalised).
        softmax_scale: > 0; how sharply the softmax prefers the nearest proxy.

    Returns:
        (B, C) tensor of logits in ``[-4 softmax_scale, 0]``, differentiable.

    Raises:
        ValueError: As :func:`normalized_softmax_logits`, or if ``softmax_scale <= 0``.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    _require_positive("softmax_scale", softmax_scale)
    _require_class_vectors(embeddings, proxies)
    squared = pairwise_distances(F.normalize(embeddings, dim=1), F.normalize(proxies, dim=1),
                                 distance="squared")
    return -softmax_scale * squared


def logits_loss(logits, labels, multi_label=False):
    """The classification loss of a batch of logits: softmax or per-tag sigmoid.

    * single-label, ``labels`` (B,) class codes: cross-entropy, averaged over the batch;
    * multi-label, ``labels`` (B, C) multi-hot: binary cross-entropy of each logit against its
      tag, averaged over tags and clips. Each tag is a separate yes/no question, so a clip can
      score high on several tags at once.

    Args:
        logits: (B, C) float tensor.
        labels: (B,) integer tensor in ``[0, C)``, or (B, C) tensor of 0s and 1s.
        multi_label: Which of the two forms ``labels`` has.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: If ``labels`` does not fit ``logits`` (see :func:`check_class_labels`).

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    labels = check_class_labels(labels, logits.shape[0], logits.shape[1], multi_label,
                                logits.device)
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)


def proxy_nca_loss(embeddings, labels, proxies, softmax_scale=1.0, multi_label=False):
    """Proxy-NCA (Movshovitz-Attias et al., 2017): pull each clip towards its class's proxy.

    With ``d(e, p)`` the squared distance between the normalised vectors (see
    :func:`proxy_nca_logits`), a clip of class ``y`` costs the NCA term

        -log( exp(-s d(e, p_y)) / sum_c exp(-s d(e, p_c)) ),

    the cross-entropy of :func:`proxy_nca_logits`, averaged over the batch. A single learned
    proxy stands for all of its class, so each clip is compared with C proxies rather than
    with the B - 1 other clips of the batch, and no triplets need to be mined.

    Multi-label (tags): a clip has several positive tags, which should not compete with one
    another. For each positive tag ``t`` of a clip the denominator holds ``t`` itself and the
    clip's *negative* tags only,

        -log( exp(-s d(e, p_t)) / (exp(-s d(e, p_t)) + sum_{u negative} exp(-s d(e, p_u))) ),

    averaged over the clip's positive tags, then over the clips that have at least one. (A clip
    with every tag positive has nothing to push away: its terms are 0.)

    Args:
        embeddings: (B, D) float tensor.
        labels: (B,) integer class codes in ``[0, C)``, or (B, C) multi-hot 0/1 when
            ``multi_label``.
        proxies: (C, D) float tensor.
        softmax_scale: s > 0.
        multi_label: Which of the two forms ``labels`` has.

    Returns:
        A scalar tensor (0, still differentiable, when no clip has a positive tag).

    Raises:
        ValueError: As :func:`proxy_nca_logits` and :func:`check_class_labels`.

    Notebook 05 trains with the module, :class:`ProxyNCALoss`, which computes this loss.
    """
    logits = proxy_nca_logits(embeddings, proxies, softmax_scale)
    return _proxy_nca_loss_of_logits(logits, labels, multi_label)


def _proxy_nca_loss_of_logits(logits, labels, multi_label):
    """:func:`proxy_nca_loss` from its (B, C) logits, so a caller can reuse them."""
    if not multi_label:
        return logits_loss(logits, labels)
    positive = check_class_labels(labels, *logits.shape, True, logits.device).bool()
    return _mean_over_positive_tags(_positive_tag_nca_terms(logits, positive), positive)


def _positive_tag_nca_terms(logits, positive):
    """(B, C) NCA terms of each positive tag against the clip's negative tags (0 elsewhere).

    The negatives' log-sum-exp is taken with the positives filled with the lowest finite
    float, not -inf: a clip with no negative tag then gets a finite value that drops out of
    ``logaddexp``, where -inf would make the backward pass produce NaN.
    """
    lowest = torch.finfo(logits.dtype).min
    negatives = torch.logsumexp(logits.masked_fill(positive, lowest), dim=1, keepdim=True)
    terms = torch.logaddexp(logits, negatives) - logits
    return terms.masked_fill(~positive, 0.0)


def _mean_over_positive_tags(terms, positive):
    """Mean over each clip's positive tags, then over the clips that have any."""
    tags_per_clip = positive.sum(dim=1)
    per_clip = terms.sum(dim=1) / tags_per_clip.clamp_min(1)
    return per_clip.sum() / torch.count_nonzero(tags_per_clip).clamp_min(1)


def check_class_labels(labels, n_samples, n_classes, multi_label, device=None):
    """``labels`` as a tensor on ``device``, checked against a batch and a number of classes.

    Args:
        labels: (B,) class codes in ``[0, n_classes)`` (any integer type), or, when
            ``multi_label``, a (B, n_classes) multi-hot array of 0s and 1s (integer, bool or
            float).
        n_samples: B.
        n_classes: C.
        multi_label: Which form to expect.
        device: Where to put the result (None: where it is).

    Returns:
        A (B,) int64 tensor, or a (B, C) tensor of the input's dtype.

    Raises:
        ValueError: If the shape, the type or a value is wrong.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    if labels is None:
        raise ValueError("labels are required: pass (B,) class codes, or (B, C) multi-hot tags "
                         "with multi_label=True.")
    labels = torch.as_tensor(labels, device=device)
    if multi_label:
        return _checked_multi_hot(labels, n_samples, n_classes)
    labels = _as_labels(labels, n_samples, device)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must hold integer class codes, got {labels.dtype}; convert "
                         "with labels.long(), or pass multi_label=True for multi-hot tags.")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from "
                         f"{int(labels.min())} to {int(labels.max())}: the loss has "
                         f"{n_classes} classes; build it with n_classes = labels.max() + 1.")
    return labels.long()


def _checked_multi_hot(labels, n_samples, n_classes):
    if labels.shape != (n_samples, n_classes):
        raise ValueError(f"multi-hot labels must have shape (B, C) = ({n_samples}, "
                         f"{n_classes}), got {tuple(labels.shape)}: one row per clip, one "
                         "column per tag, as dataset.tags.")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("multi-hot labels must hold only 0s and 1s; threshold or binarise "
                         "them first, e.g. (labels > 0).")
    return labels


# --------------------------------------------------------------------------------------------
# Modules that own their class vectors
# --------------------------------------------------------------------------------------------


class ClassificationLoss(torch.nn.Module):
    """A softmax (or per-tag sigmoid) classifier on top of the embeddings, as a loss.

    The module holds one weight vector per class, W of shape (C, D), learned together with the
    network (:func:`mlcourse.train.train` optimises the parameters of a module loss). Logits:

    * ``normalize=True``: ``cos(e, w_c) / temperature`` (:func:`normalized_softmax_logits`), the
      normalised softmax of Zhai & Wu (2019); the class vectors then live on the embedding
      sphere and act as proxies, so tags can be scored by cosine to :meth:`class_vectors`;
    * ``normalize=False``: ``e @ W.T + b``, an ordinary linear classifier (the paper's
      "classification without normalization"); ``temperature`` is not used.

    Single-label the loss is the cross-entropy of integer labels (B,); with ``multi_label``
    (tags) it is the binary cross-entropy of (B, C) multi-hot labels, averaged over tags and
    clips (:func:`logits_loss`). Normalised and single-label, it gives the same values and
    gradients as pytorch-metric-learning's ``NormalizedSoftmaxLoss`` with the same weights
    (which it stores transposed, as (D, C)).

    Args:
        n_classes: C >= 1.
        embedding_dim: D >= 1.
        normalize: Whether to normalise embeddings and weights (and have no bias).
        temperature: > 0.
        multi_label: Whether labels are (B, C) multi-hot tags instead of (B,) class codes.

    Attributes:
        weight: (C, D) parameter, drawn from a standard normal when normalised (the length
            does not matter), else with standard deviation ``1/sqrt(D)`` so that the first
            logits are of the size of one embedding coordinate.
        bias: (C,) parameter starting at 0, or None when normalised (a constant per class
            would let a class win without being near its vector).
        last_stats: ``loss`` and, single-label, ``accuracy`` (fraction of the batch whose
            highest logit is its class) or, multi-label, ``top_tag_hit`` (fraction of clips
            with a tag whose highest-scored tag is one of theirs). Empty before the first call.

    Raises:
        ValueError: If ``n_classes`` or ``embedding_dim`` < 1 or ``temperature <= 0``.

    Example:
        >>> loss_fn = ClassificationLoss(n_classes=3, embedding_dim=4)
        >>> loss = loss_fn(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> loss_fn.class_vectors().shape
        torch.Size([3, 4])

    Taught in notebooks/05_classification_and_proxies.ipynb
    """

    def __init__(self, n_classes, embedding_dim, normalize=True, temperature=0.05,
                 multi_label=False):
        super().__init__()
        _require_sizes(n_classes, embedding_dim)
        _require_positive("temperature", temperature)
        self.normalize = bool(normalize)
        self.temperature = temperature
        self.multi_label = bool(multi_label)
        scale = 1.0 if self.normalize else embedding_dim ** -0.5
        self.weight = torch.nn.Parameter(torch.randn(n_classes, embedding_dim) * scale)
        self.bias = None if self.normalize else torch.nn.Parameter(torch.zeros(n_classes))
        self.last_stats = {}

    def logits(self, embeddings):
        """The (B, C) class scores of a batch, differentiable.

        Args:
            embeddings: (B, D) float tensor, on any device; the weights are cast to its dtype
                and device inside the graph, so their gradients still reach the parameters.

        Returns:
            (B, C) tensor of logits.

        Raises:
            ValueError: If ``embeddings`` is not a (B, D) float tensor with this module's D.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        _require_embeddings(embeddings, "embeddings")
        weight = self.weight.to(embeddings)
        if self.normalize:
            return normalized_softmax_logits(embeddings, weight, self.temperature)
        _require_class_vectors(embeddings, weight)
        return F.linear(embeddings, weight, self.bias.to(embeddings))

    def forward(self, embeddings, labels):
        """The loss of a batch (see the class docstring).

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer class codes, or (B, C) multi-hot tags when ``multi_label``.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If the embeddings or the labels do not fit (see
                :func:`check_class_labels`).

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        logits = self.logits(embeddings)
        loss = logits_loss(logits, labels, self.multi_label)
        self.last_stats = _class_vector_stats(loss, logits, labels, self.multi_label)
        return loss

    def class_vectors(self):
        """The (C, D) L2-normalised class weight vectors, detached: one point per class.

        Returns:
            (C, D) tensor; score tags of clips by ``F.normalize(e) @ class_vectors().T``.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        return F.normalize(self.weight.detach(), dim=1)

    def extra_repr(self):
        n_classes, embedding_dim = self.weight.shape
        return (f"n_classes={n_classes}, embedding_dim={embedding_dim}, "
                f"normalize={self.normalize}, temperature={self.temperature}, "
                f"multi_label={self.multi_label}")


class ProxyNCALoss(torch.nn.Module):
    """:func:`proxy_nca_loss` with its proxies as learned parameters.

    One proxy per class, compared with the normalised embeddings by squared Euclidean
    distance of the normalised vectors. Single-label it gives the same values and gradients as
    pytorch-metric-learning's ``ProxyNCALoss`` with the same proxies; the multi-label form
    (each positive tag against the clip's negative tags) is defined in :func:`proxy_nca_loss`.

    Args:
        n_classes: C >= 1.
        embedding_dim: D >= 1.
        softmax_scale: s > 0.
        multi_label: Whether labels are (B, C) multi-hot tags instead of (B,) class codes.

    Attributes:
        proxies: (C, D) parameter, drawn from a standard normal (its length does not matter).
        last_stats: As in :class:`ClassificationLoss`.

    Raises:
        ValueError: If ``n_classes`` or ``embedding_dim`` < 1 or ``softmax_scale <= 0``.

    Example:
        >>> loss_fn = ProxyNCALoss(n_classes=3, embedding_dim=4, softmax_scale=8.0)
        >>> loss = loss_fn(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> round(float(loss_fn.class_vectors().norm(dim=1).min()), 4)
        1.0

    Taught in notebooks/05_classification_and_proxies.ipynb
    """

    def __init__(self, n_classes, embedding_dim, softmax_scale=1.0, multi_label=False):
        super().__init__()
        _require_sizes(n_classes, embedding_dim)
        _require_positive("softmax_scale", softmax_scale)
        self.softmax_scale = softmax_scale
        self.multi_label = bool(multi_label)
        self.proxies = torch.nn.Parameter(torch.randn(n_classes, embedding_dim))
        self.last_stats = {}

    def logits(self, embeddings):
        """The (B, C) logits ``-s d(e, p_c)`` of a batch (:func:`proxy_nca_logits`).

        Args:
            embeddings: (B, D) float tensor, on any device (the proxies are cast to it).

        Returns:
            (B, C) tensor.

        Raises:
            ValueError: If ``embeddings`` is not a (B, D) float tensor with this module's D.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        _require_embeddings(embeddings, "embeddings")
        return proxy_nca_logits(embeddings, self.proxies.to(embeddings), self.softmax_scale)

    def forward(self, embeddings, labels):
        """The loss of a batch (see :func:`proxy_nca_loss`).

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer class codes, or (B, C) multi-hot tags when ``multi_label``.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If the embeddings or the labels do not fit.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        logits = self.logits(embeddings)
        loss = _proxy_nca_loss_of_logits(logits, labels, self.multi_label)
        self.last_stats = _class_vector_stats(loss, logits, labels, self.multi_label)
        return loss

    def class_vectors(self):
        """The (C, D) L2-normalised proxies, detached.

        Returns:
            (C, D) tensor.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        return F.normalize(self.proxies.detach(), dim=1)

    def extra_repr(self):
        n_classes, embedding_dim = self.proxies.shape
        return (f"n_classes={n_classes}, embedding_dim={embedding_dim}, "
                f"softmax_scale={self.softmax_scale}, multi_label={self.multi_label}")


@torch.no_grad()
def _class_vector_stats(loss, logits, labels, multi_label):
    """``last_stats`` of the class-vector losses: the loss and how often the top class is right.

    The labels have been checked by the loss already.
    """
    labels = torch.as_tensor(labels, device=logits.device)
    top = logits.argmax(dim=1)
    if not multi_label:
        return {"loss": loss.item(), "accuracy": (top == labels).double().mean().item()}
    has_tag = labels.bool().any(dim=1)
    hits = labels.bool().gather(1, top[:, None]).squeeze(1) & has_tag
    return {"loss": loss.item(),
            "top_tag_hit": hits.sum().item() / max(int(has_tag.sum()), 1)}


def _require_sizes(n_classes, embedding_dim):
    for name, value in (("n_classes", n_classes), ("embedding_dim", embedding_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def _require_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}: it divides (or "
                         "multiplies) the logits, and a sign flip would reward wrong classes.")


def _require_class_vectors(embeddings, vectors):
    """Checks (B, D) embeddings against (C, D) class vectors of the same dtype and device."""
    _require_embeddings(embeddings, "embeddings")
    _require_embeddings(vectors, "class vectors")
    if vectors.shape[1] != embeddings.shape[1]:
        raise ValueError(f"the embeddings have dimension {embeddings.shape[1]} but the class "
                         f"vectors {vectors.shape[1]}: build the loss with embedding_dim="
                         f"{embeddings.shape[1]}, the model's output size.")
    if vectors.dtype != embeddings.dtype or vectors.device != embeddings.device:
        raise ValueError(f"embeddings ({embeddings.dtype}, {embeddings.device}) and class "
                         f"vectors ({vectors.dtype}, {vectors.device}) differ: move one with "
                         ".to(the other).")


# --------------------------------------------------------------------------------------------
# Self-supervised and cross-modal losses
# --------------------------------------------------------------------------------------------
#
# Without labels, a batch can still say which items belong together: two augmented views of
# one clip (SimCLR), a clip and the clip that follows it in the recording (adjacency), an
# audio clip and its piano roll (cross-modal). In every loss below row i of one tensor is
# matched with row i of the other, and the other rows of the batch serve as the negatives.
#
# * nt_xent_loss (Chen et al., 2020, "SimCLR"): 2B views; each must find its partner among
#   the other 2B - 1.
# * info_nce_loss (van den Oord et al., 2018; symmetric as in CLIP, Radford et al., 2021):
#   two encoders, a (B, B) table of cosines; each query must find its key, and each key its
#   query.
# * adjacency_dssm_loss (Bretan & Heck, 2019): each clip must find the clip adjacent to it
#   among in-batch candidates, scored by the similarity 1 / (1 + distance).

__all__ += [
    "AdjacencyDSSMLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "adjacency_dssm_loss",
    "draw_negatives",
    "easy_negative_fraction",
    "info_nce_loss",
    "nt_xent_loss",
]


def nt_xent_loss(first, second, temperature=0.1):
    """SimCLR's NT-Xent loss (normalised, temperature-scaled cross-entropy).

    Row i of ``first`` and row i of ``second`` are two views of the same item, e.g. two
    random augmentations of one clip. The 2B views are L2-normalised and compared by cosine,
    and each view must pick its partner out of the other 2B - 1 views of the batch::

        loss(a) = -log( exp(cos(z_a, z_partner) / t) / sum_{k != a} exp(cos(z_a, z_k) / t) )

    averaged over the 2B views ``a``. A view is never a candidate for itself (its cosine with
    itself is always 1: it would win for free); the 2B - 2 views of the other items are its
    negatives. No labels are needed: the batch itself says which views belong together.

    It equals pytorch-metric-learning's ``NTXentLoss(temperature)`` applied to
    ``cat([first, second])`` with labels ``cat([arange(B), arange(B)])``.

    Args:
        first: (B, D) float tensor, B >= 2: one view of each item.
        second: (B, D) float tensor of the same shape, dtype and device: the other view.
        temperature: t > 0. A small temperature sharpens the softmax, so that the negatives
            closest to a view weigh most.

    Returns:
        A scalar tensor, differentiable with respect to both inputs.

    Raises:
        ValueError: If the inputs are not two (B, D) float tensors of the same shape, dtype
            and device with B >= 2, or ``temperature <= 0``.

    Example:
        >>> views = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(float(nt_xent_loss(views, views, temperature=1.0)), 4)
        0.5514

    Here each view's partner has cosine 1 and the two other views cosine 0:
    ``-log(e / (e + 2))``.

    Taught in notebooks/08_self_supervised.ipynb
    """
    _require_positive("temperature", temperature)
    _require_matched_rows(first, second, "first", "second")
    batch_size = len(first)
    views = F.normalize(torch.cat([first, second]), dim=1)
    logits = views @ views.T / temperature
    # -inf on the diagonal: exp(-inf) = 0, so a view is never a candidate for itself.
    self_pairs = torch.eye(2 * batch_size, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    # The partner of view i (from `first`) is view B + i (from `second`), and the other way.
    items = torch.arange(batch_size, device=logits.device)
    partners = torch.cat([items + batch_size, items])
    return F.cross_entropy(logits, partners)


def info_nce_loss(queries, keys, temperature=0.1, symmetric=True):
    """The cross-modal InfoNCE loss, as in CLIP: row i of ``queries`` must find row i of ``keys``.

    The two tensors come from two different encoders, e.g. an audio encoder and a piano-roll
    encoder whose outputs live in one shared space. The logits are the (B, B) cosines over a
    temperature::

        logits[i, j] = cos(q_i, k_j) / t

    and the loss is the cross-entropy of each row with target i: each query must pick its own
    key out of the B keys of the batch (the B - 1 others are its negatives). With
    ``symmetric`` it is averaged with the same over the columns, where each key must pick its
    query out of the B queries, so that search works both ways (audio -> score and
    score -> audio).

    Args:
        queries: (B, D) float tensor, B >= 2, from the first encoder.
        keys: (B, D) float tensor of the same shape, dtype and device, from the second
            encoder; both encoders must project to the same dimension D.
        temperature: t > 0.
        symmetric: Whether to average both directions (True) or use queries -> keys only.

    Returns:
        A scalar tensor, differentiable with respect to both inputs.

    Raises:
        ValueError: If the inputs are not two (B, D) float tensors of the same shape, dtype
            and device with B >= 2, or ``temperature <= 0``.

    Example:
        >>> audio = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(float(info_nce_loss(audio, audio, temperature=1.0)), 4)
        0.3133

    Each query has cosine 1 with its key and 0 with the other: ``-log(e / (e + 1))``.

    Taught in notebooks/07_cross_modal.ipynb
    """
    _require_positive("temperature", temperature)
    _require_matched_rows(queries, keys, "queries", "keys")
    logits = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature
    targets = torch.arange(len(logits), device=logits.device)
    queries_to_keys = F.cross_entropy(logits, targets)
    if not symmetric:
        return queries_to_keys
    # The transposed table: row j holds the cosines of key j with every query.
    keys_to_queries = F.cross_entropy(logits.T, targets)
    return (queries_to_keys + keys_to_queries) / 2


def draw_negatives(batch_size, n_negatives, generator=None, exclude=None):
    """For each query of a batch, ``n_negatives`` distinct random negatives among the others.

    Every allowed candidate of a row (any other row of the batch that ``exclude`` does not
    rule out) gets a uniform random number, and the ``n_negatives`` smallest numbers win: a
    uniform draw without replacement, for all rows at once. The draw is made on the CPU, so
    that a seeded generator gives the same negatives whatever device the embeddings are on.

    Args:
        batch_size: B >= 2.
        n_negatives: n, with 1 <= n <= B - 1, and no more than the allowed candidates of any
            row.
        generator: A CPU ``torch.Generator`` (seed it for a reproducible draw), or None for
            torch's global random state.
        exclude: None, or a (B, B) bool tensor, True where column j must not be a negative of
            row i (e.g. two clips of the same recording). Row i itself is never a negative
            of query i.

    Returns:
        (B, n) int64 tensor on the CPU: row i holds the indices of query i's negatives.

    Raises:
        ValueError: If ``n_negatives`` is not an integer in [1, B - 1], some row has fewer
            than n allowed candidates, ``exclude`` is not a (B, B) bool tensor, or the
            generator is not a CPU generator.

    Example:
        >>> negatives = draw_negatives(5, 2, torch.Generator().manual_seed(0))
        >>> negatives.shape
        torch.Size([5, 2])

    Taught in notebooks/08_self_supervised.ipynb
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}: the "
                         "negatives are the other rows of the batch.")
    _require_negative_count(n_negatives, batch_size)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"the generator must be a CPU torch.Generator, got one on "
                         f"{generator.device}: the negatives are drawn on the CPU.")
    allowed = _allowed_negatives(batch_size, exclude, "cpu")
    fewest = int(allowed.sum(dim=1).min())
    if fewest < n_negatives:
        raise ValueError(f"n_negatives={n_negatives} but exclude leaves some query only "
                         f"{fewest} candidate negatives: lower n_negatives or exclude fewer "
                         "pairs.")
    scores = torch.rand(batch_size, batch_size, generator=generator)
    # Uniform numbers are below 1, so a candidate scored 2 is never among the smallest.
    scores = scores.masked_fill(~allowed, 2.0)
    return scores.topk(n_negatives, dim=1, largest=False).indices


def adjacency_dssm_loss(queries, positives, n_negatives=None, scale=1.0, generator=None,
                        exclude=None):
    """The adjacency DSSM loss (Bretan & Heck, 2019): find the clip that comes next.

    Self-supervision from the order of the music: clip ``i`` of the batch (the query) and the
    clip adjacent to it in the same recording (``positives[i]``) should be similar, more
    similar than the clips adjacent to the other queries, which serve as negatives (in-batch
    negatives). As in the DSSM of Huang et al. (2013), the similarity is turned into a
    probability with a softmax over the candidates. The similarity is::

        sim(x, y) = 1 / (1 + ||x - y||)

    which is 1 for identical embeddings and falls towards 0 with distance, and the probability
    that query i picks its positive out of its candidates is::

        P(p_i | q_i) = exp(scale * sim(q_i, p_i)) / sum_d exp(scale * sim(q_i, d))

    where d runs over the positive p_i and the negatives of query i.

    The paper's loss is ``-log prod_i P(p_i | q_i)``; this function returns its mean over the
    queries, ``-(1/B) sum_i log P(p_i | q_i)``, which is the same divided by B, so that the
    size of the gradient (and a good learning rate) does not depend on the batch size.

    The similarity lies in (0, 1], so with ``scale=1`` (the paper's form) the softmax cannot
    become confident: even a perfect embedding, each positive at distance 0 and every
    negative infinitely far, keeps a loss of ``log(1 + n / e)`` with n negatives per query.
    Most negatives soon become easy (see :func:`easy_negative_fraction`); a larger ``scale``
    (the smoothing factor gamma of Huang et al.'s DSSM) sharpens the softmax, so that the few
    hard ones weigh more.

    Args:
        queries: (B, D) float tensor, B >= 2: one embedding per query clip.
        positives: (B, D) float tensor of the same shape, dtype and device: row i embeds the
            clip adjacent to query i.
        n_negatives: None to use all B - 1 other rows of ``positives`` as negatives (less
            the excluded ones), or n in [1, B - 1] to draw n of them at random per query
            (:func:`draw_negatives`).
        scale: > 0, multiplies the similarities before the softmax.
        generator: A CPU ``torch.Generator`` for the draw of negatives (None: torch's global
            random state); not used when ``n_negatives`` is None.
        exclude: None, or a (B, B) bool tensor, True where ``positives[j]`` must not be a
            negative of query i (e.g. clips of the same recording); its diagonal is ignored,
            since the positive always counts.

    Returns:
        A scalar tensor, differentiable with respect to both inputs.

    Raises:
        ValueError: If the inputs are not two (B, D) float tensors of the same shape, dtype
            and device with B >= 2, ``scale <= 0``, or ``n_negatives`` or ``exclude`` is
            malformed (see :func:`draw_negatives`).

    Example:
        >>> queries = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> round(float(adjacency_dssm_loss(queries, queries)), 4)
        0.3609

    Each query is at distance 0 from its positive (similarity 1) and 5 from the other
    (similarity 1/6): ``-log(e / (e + e^(1/6)))``.

    Taught in notebooks/08_self_supervised.ipynb
    """
    _require_matched_rows(queries, positives, "queries", "positives")
    _require_positive("scale", scale)
    batch_size = len(queries)
    # similarities[i, j] = sim(q_i, p_j): the positive of query i sits on the diagonal.
    similarities = 1.0 / (1.0 + pairwise_distances(queries, positives))
    logits = scale * similarities
    rows = torch.arange(batch_size, device=queries.device)
    if n_negatives is None:
        # Every row of `positives` competes, except the excluded ones (-inf: probability 0);
        # the positive itself always does. The target of row i is column i.
        candidates = _allowed_negatives(batch_size, exclude, queries.device)
        candidates.fill_diagonal_(True)
        return F.cross_entropy(logits.masked_fill(~candidates, float("-inf")), rows)
    negatives = draw_negatives(batch_size, n_negatives, generator, exclude)
    # Each query's candidates: column 0 its positive, columns 1 to n its negatives.
    columns = torch.cat([rows[:, None], negatives.to(queries.device)], dim=1)
    return F.cross_entropy(logits.gather(1, columns), torch.zeros_like(rows))


@torch.no_grad()
def easy_negative_fraction(queries, positives, exclude=None):
    """The fraction of (query, negative) pairs whose negative is already the farther one.

    For query i and negative j (any other row of ``positives`` not excluded), the pair is
    *easy* when ``||q_i - p_j|| > ||q_i - p_i||``: the negative is already farther than the
    positive (equivalently, less similar under :func:`adjacency_dssm_loss`'s similarity).
    Bretan & Heck point out that such easy pairs dominate the batches of in-batch training;
    they teach the model little.

    Args:
        queries: (B, D) float tensor, B >= 2.
        positives: (B, D) float tensor of the same shape, dtype and device.
        exclude: None, or a (B, B) bool tensor of pairs not to count (as in
            :func:`adjacency_dssm_loss`).

    Returns:
        A float in [0, 1] (0 when ``exclude`` leaves no pair).

    Raises:
        ValueError: As :func:`adjacency_dssm_loss`.

    Example:
        >>> queries = torch.tensor([[0.0], [1.0], [10.0]])
        >>> easy_negative_fraction(queries, queries)
        1.0

    Taught in notebooks/08_self_supervised.ipynb
    """
    _require_matched_rows(queries, positives, "queries", "positives")
    distances = pairwise_distances(queries, positives)
    positive_distances = distances.diagonal()[:, None]
    negatives = _allowed_negatives(len(queries), exclude, queries.device)
    easy = (distances > positive_distances) & negatives
    return easy.sum().item() / max(negatives.sum().item(), 1)


class NTXentLoss(torch.nn.Module):
    """:func:`nt_xent_loss` as a module: ``loss_fn(first, second)``.

    Args:
        temperature: As in :func:`nt_xent_loss`, checked here.

    Example:
        >>> loss_fn = NTXentLoss(temperature=0.1)
        >>> loss = loss_fn(torch.randn(8, 4), torch.randn(8, 4))

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, temperature=0.1):
        super().__init__()
        _require_positive("temperature", temperature)
        self.temperature = temperature

    def forward(self, first, second):
        """The loss of a batch of view pairs; see :func:`nt_xent_loss`.

        Args:
            first: (B, D) float tensor, one view of each item.
            second: (B, D) float tensor, the other view.

        Returns:
            A scalar tensor.

        Taught in notebooks/08_self_supervised.ipynb
        """
        return nt_xent_loss(first, second, self.temperature)

    def extra_repr(self):
        return f"temperature={self.temperature}"


class InfoNCELoss(torch.nn.Module):
    """:func:`info_nce_loss` as a module: ``loss_fn(queries, keys)``.

    Args:
        temperature, symmetric: As in :func:`info_nce_loss`, checked here.

    Example:
        >>> loss_fn = InfoNCELoss(temperature=0.07)
        >>> loss = loss_fn(torch.randn(8, 4), torch.randn(8, 4))

    Taught in notebooks/07_cross_modal.ipynb
    """

    def __init__(self, temperature=0.1, symmetric=True):
        super().__init__()
        _require_positive("temperature", temperature)
        self.temperature = temperature
        self.symmetric = bool(symmetric)

    def forward(self, queries, keys):
        """The loss of a batch of matched pairs; see :func:`info_nce_loss`.

        Args:
            queries: (B, D) float tensor from the first encoder.
            keys: (B, D) float tensor from the second encoder; row i matches query i.

        Returns:
            A scalar tensor.

        Taught in notebooks/07_cross_modal.ipynb
        """
        return info_nce_loss(queries, keys, self.temperature, self.symmetric)

    def extra_repr(self):
        return f"temperature={self.temperature}, symmetric={self.symmetric}"


class AdjacencyDSSMLoss(torch.nn.Module):
    """:func:`adjacency_dssm_loss` as a module: ``loss_fn(queries, positives, exclude=None)``.

    The module holds its own CPU random generator for the draw of negatives, so a run is
    reproducible from ``seed`` alone, on any device, whatever else draws random numbers.

    Args:
        n_negatives: None (all other rows of the batch) or the number of negatives drawn per
            query, >= 1 (and at most B - 1, checked on each batch).
        scale: > 0, as in :func:`adjacency_dssm_loss`.
        seed: Seed of the module's generator.

    Attributes:
        generator: The CPU ``torch.Generator`` of the draws.
        last_stats: ``loss`` and ``easy_negative_fraction`` (see
            :func:`easy_negative_fraction`) of the last call. Empty before the first call.

    Raises:
        ValueError: If ``n_negatives`` is neither None nor an integer >= 1, or ``scale <= 0``.

    Example:
        >>> loss_fn = AdjacencyDSSMLoss(n_negatives=4, seed=0)
        >>> loss = loss_fn(torch.randn(8, 4), torch.randn(8, 4))
        >>> sorted(loss_fn.last_stats)
        ['easy_negative_fraction', 'loss']

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, n_negatives=None, scale=1.0, seed=0):
        super().__init__()
        if n_negatives is not None:
            _require_negative_count(n_negatives, None)
        _require_positive("scale", scale)
        self.n_negatives = n_negatives
        self.scale = scale
        self.generator = torch.Generator().manual_seed(seed)
        self.last_stats = {}

    def forward(self, queries, positives, exclude=None):
        """The loss of a batch of (query, adjacent clip) pairs; see :func:`adjacency_dssm_loss`.

        Args:
            queries: (B, D) float tensor.
            positives: (B, D) float tensor; row i embeds the clip adjacent to query i.
            exclude: None, or a (B, B) bool tensor of pairs not to use as negatives.

        Returns:
            A scalar tensor.

        Taught in notebooks/08_self_supervised.ipynb
        """
        loss = adjacency_dssm_loss(queries, positives, self.n_negatives, self.scale,
                                   self.generator, exclude)
        self.last_stats = {
            "loss": loss.item(),
            "easy_negative_fraction": easy_negative_fraction(queries, positives, exclude),
        }
        return loss

    def extra_repr(self):
        return f"n_negatives={self.n_negatives}, scale={self.scale}"


def _require_matched_rows(first, second, first_name, second_name):
    """Checks two (B, D) float tensors whose rows i belong together, with B >= 2."""
    _require_embeddings(first, first_name)
    _require_embeddings(second, second_name)
    if (first.shape != second.shape or first.dtype != second.dtype
            or first.device != second.device):
        raise ValueError(f"{first_name} and {second_name} must have the same shape, dtype and "
                         f"device, row i of one matching row i of the other; got "
                         f"{tuple(first.shape)} {first.dtype} {first.device} and "
                         f"{tuple(second.shape)} {second.dtype} {second.device}.")
    if len(first) < 2:
        raise ValueError(f"{first_name} and {second_name} need at least 2 rows, got "
                         f"{len(first)}: the other rows of the batch are the negatives, and a "
                         "batch of one item has none.")


def _require_negative_count(n_negatives, batch_size):
    """Checks ``n_negatives`` is an int in [1, batch_size - 1] (no upper bound if None)."""
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, int) or n_negatives < 1:
        raise ValueError(f"n_negatives must be None or an integer >= 1, got {n_negatives!r}.")
    if batch_size is not None and n_negatives > batch_size - 1:
        raise ValueError(f"n_negatives={n_negatives} but a batch of {batch_size} has only "
                         f"{batch_size - 1} other rows to draw negatives from: use "
                         "n_negatives < B, or None for all of them.")


def _allowed_negatives(batch_size, exclude, device):
    """(B, B) bool on ``device``: True where column j may be a negative of row i.

    That is every j != i, less the pairs marked in ``exclude`` (None, or a (B, B) bool
    tensor).
    """
    allowed = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    if exclude is None:
        return allowed
    exclude = torch.as_tensor(exclude)
    if exclude.dtype != torch.bool or exclude.shape != (batch_size, batch_size):
        raise ValueError(f"exclude must be a ({batch_size}, {batch_size}) bool tensor, True "
                         f"where column j must not be a negative of row i; got "
                         f"{exclude.dtype} of shape {tuple(exclude.shape)}.")
    return allowed & ~exclude.to(device)
