"""The contrastive loss (Hadsell, Chopra & LeCun, 2006): pairs closer or farther than a margin.

Same-label pairs should be closer than ``pos_margin``, different-label pairs farther than
``neg_margin``; the hinges are averaged over the non-zero ones, as pytorch-metric-learning's
``ContrastiveLoss`` does. :class:`ContrastiveLoss` holds the hyper-parameters for a training
loop.

Taught in notebooks/03_siamese_contrastive.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..distances import _require_distance, pairwise_distances
from ..miners import _as_labels, positive_negative_masks
from ._checks import (
    _checked_indices,
    _entries,
    _mean_of_nonzero,
    _require_contrastive_margins,
)


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
    """The contrastive loss: same-label pairs within ``pos_margin``, others past ``neg_margin``.

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
    anchor_pos, positive, anchor_neg, negative = _checked_indices(pairs, names, len(distances), distances.device)
    positive_hinges = F.relu(_entries(distances, anchor_pos, positive) - pos_margin)
    negative_hinges = F.relu(neg_margin - _entries(distances, anchor_neg, negative))
    return positive_hinges, negative_hinges, len(positive_hinges), len(negative_hinges)


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
            embeddings,
            labels,
            self.pos_margin,
            self.neg_margin,
            self.distance,
            pairs,
            return_stats=True,
        )
        return loss

    def extra_repr(self):
        return f"pos_margin={self.pos_margin}, neg_margin={self.neg_margin}, distance={self.distance!r}"
