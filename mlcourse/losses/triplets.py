"""The triplet margin loss (Weinberger & Saul, 2009; Schroff et al., 2015).

The anchor's positive should be closer than its negative by ``margin``; which triplets count is
chosen inside the batch by :func:`mlcourse.miners.mine_triplets`. The hinges are averaged over
the non-zero ones, as pytorch-metric-learning's ``TripletMarginLoss`` does.
:class:`TripletMarginLoss` holds the hyper-parameters for a training loop.

Taught in notebooks/04_triplet_mining.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..distances import _require_distance, pairwise_distances
from ..miners import (
    _as_labels,
    _require_positive_margin,
    _require_strategy,
    mine_triplets,
)
from ._checks import _checked_indices, _entries, _mean_of_nonzero


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
        triplets = _checked_indices(triplets, ("anchor", "positive", "negative"), len(embeddings), embeddings.device)
    anchor, positive, negative = triplets
    hinges = F.relu(_entries(distances, anchor, positive) - _entries(distances, anchor, negative) + margin)
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
            embeddings,
            labels,
            self.margin,
            self.mining,
            self.distance,
            triplets,
            return_stats=True,
        )
        return loss

    def extra_repr(self):
        return f"margin={self.margin}, mining={self.mining!r}, distance={self.distance!r}"
