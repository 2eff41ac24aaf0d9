"""Losses over the pairs of a batch: the contrastive, supervised contrastive and multi-similarity losses.

* :func:`contrastive_loss` (Hadsell, Chopra & LeCun, 2006): same-label pairs should be closer
  than ``pos_margin``, different-label pairs farther than ``neg_margin``; the hinges are
  averaged over the non-zero ones, as pytorch-metric-learning's ``ContrastiveLoss`` does.
* :func:`supcon_loss` (supervised contrastive, Khosla et al., 2020): each anchor must pick its
  same-label samples out of a softmax over its cosines with the rest of the batch.
* :func:`multi_similarity_loss` (Wang et al., 2019): soft hinges on the cosines of the hardest
  pairs, positives pulled above ``base`` and negatives pushed below it, with the loss's own
  pair mining.

:class:`ContrastiveLoss`, :class:`SupConLoss` and :class:`MultiSimilarityLoss` hold the
hyper-parameters for a training loop.

Taught in notebooks/03_siamese_contrastive.ipynb (contrastive) and
notebooks/10_reality_check.ipynb (supervised contrastive, multi-similarity)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..distances import _require_distance, _require_embeddings, pairwise_distances, unit_rows
from ..miners import _as_labels, positive_negative_masks
from ._checks import (
    _checked_indices,
    _entries,
    _mean_of_nonzero,
    _require_contrastive_margins,
    _require_positive,
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


# --------------------------------------------------------------------------------------------
# Supervised contrastive loss (Khosla et al., 2020) and multi-similarity loss (Wang et al., 2019)
# --------------------------------------------------------------------------------------------
#
# Both compare the cosines of the batch's pairs, s_ij = cos(e_i, e_j): the embeddings are
# L2-normalised inside the loss, as pytorch-metric-learning's default CosineSimilarity does.
# With the masks of positive_negative_masks, P(i) are the other samples with i's label (the
# anchor's positives) and N(i) the samples with another label (its negatives).


def supcon_loss(embeddings, labels, temperature=0.1):
    """The supervised contrastive loss: each anchor picks its same-label samples out of the batch.

    Each sample ``i`` of the batch is an anchor. Its candidates are all the other samples,
    scored by a softmax over their cosines with it, sharpened by the temperature ``t``; its
    loss is minus the log-probability of its positives, averaged over them::

        loss(i) = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip / t) / sum_{k != i} exp(s_ik / t) )

    It is NT-Xent (SimCLR) with labels: an anchor has every same-label sample as a positive,
    not just one augmented view. The loss is averaged over the anchors with a non-zero
    loss, i.e. those with at least one positive (a sample alone in its class has nothing to
    pick and is left out, rather than counted as 0). A batch of a single class has nothing to
    contrast with: its loss is 0. This is pytorch-metric-learning's ``SupConLoss`` (with its
    default ``AvgNonZeroReducer``): same values and gradients.

    Args:
        embeddings: (B, D) float tensor; normalised here (the loss only sees directions).
        labels: (B,) integer tensor of class labels.
        temperature: t > 0. A small temperature sharpens the softmax, so that the candidates
            closest to the anchor (hard negatives among them) weigh most.

    Returns:
        A scalar tensor, differentiable with respect to ``embeddings``.

    Raises:
        ValueError: If ``embeddings`` is not a 2-D float tensor, ``labels`` is not 1-D with
            one entry per row, or ``temperature <= 0``.

    Example:
        >>> embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> round(float(supcon_loss(embeddings, torch.tensor([0, 0, 1]), temperature=1.0)), 4)
        0.5032

    Anchor 0 has cosine 0 with its positive and -1 with its negative: ``-log(1 / (1 + e^-1))``;
    anchor 1 has cosine 0 with both: ``-log(1 / 2)``; anchor 2 has no positive. The mean of
    0.3133 and 0.6931.

    Taught in notebooks/10_reality_check.ipynb
    """
    _require_positive("temperature", temperature)
    similarities, positive, negative = _cosines_and_masks(embeddings, labels)
    if not negative.any():
        # One class only (or one sample): nothing to contrast with. pytorch-metric-learning
        # returns 0 here too; multiplying keeps the 0 connected to the graph for backward().
        return similarities.sum() * 0.0
    # -inf on the diagonal: exp(-inf) = 0, so an anchor is never a candidate for itself.
    itself = torch.eye(len(similarities), dtype=torch.bool, device=similarities.device)
    logits = (similarities / temperature).masked_fill(itself, float("-inf"))
    log_probabilities = logits.log_softmax(dim=1)
    # Each anchor's mean over its positives; an anchor without positives gets 0, which the
    # mean over the non-zero anchors then leaves out.
    positive_log_probabilities = torch.where(positive, log_probabilities, 0.0)
    per_anchor = -positive_log_probabilities.sum(dim=1) / positive.sum(dim=1).clamp_min(1)
    return _mean_of_nonzero(per_anchor)


def multi_similarity_loss(embeddings, labels, alpha=2.0, beta=50.0, base=0.5, mine=True, epsilon=0.1):
    """The multi-similarity loss: soft hinges pull positive cosines above ``base``, push negatives below.

    Each sample ``i`` of the batch is an anchor, with the loss::

        loss(i) = 1/alpha * log(1 + sum_{p in P(i)} exp(-alpha * (s_ip - base)))
                + 1/beta  * log(1 + sum_{n in N(i)} exp( beta  * (s_in - base)))

    ``log(1 + sum exp(...))`` is a soft maximum of a hinge: each term is near 0 when all its
    pairs are on the right side of ``base`` (positives above, negatives below), and grows
    about linearly with the worst pair otherwise; ``alpha`` and ``beta`` set how sharply the
    worst pairs dominate. The loss is averaged over all B anchors (an anchor without pairs
    counts as 0).

    With ``mine`` (the paper's pair mining), an anchor keeps only its informative pairs,
    compared with its hardest pair of the other kind:

    * a positive ``p`` when ``s_ip - epsilon < max_{n in N(i)} s_in``: it is not clearly more
      similar than the most similar negative;
    * a negative ``n`` when ``s_in + epsilon > min_{p in P(i)} s_ip``: it is not clearly less
      similar than the least similar positive.

    An anchor without negatives keeps no positive, and one without positives no negative.
    Without ``mine``, every pair of the batch counts.

    This is pytorch-metric-learning's ``MultiSimilarityLoss(alpha, beta, base)``, after its
    ``MultiSimilarityMiner(epsilon)`` with ``mine`` (same values and gradients), with one
    difference: when the mining keeps at most one positive and one negative pair in the whole
    batch, pytorch-metric-learning returns 0, while here those pairs count.

    Args:
        embeddings: (B, D) float tensor; normalised here (the loss only sees directions).
        labels: (B,) integer tensor of class labels.
        alpha: > 0, the sharpness of the positive term.
        beta: > 0, the sharpness of the negative term.
        base: The cosine (``lambda`` in the paper) that positive pairs should exceed and
            negative pairs stay under.
        mine: Whether to keep only the pairs that the mining selects (True) or all pairs.
        epsilon: The mining's margin, >= 0; used only with ``mine``.

    Returns:
        A scalar tensor, differentiable with respect to ``embeddings``.

    Raises:
        ValueError: If ``embeddings`` is not a 2-D float tensor, ``labels`` is not 1-D with
            one entry per row, ``alpha`` or ``beta`` is not > 0, ``base`` is not a finite
            number, or ``epsilon`` is not >= 0.

    Example:
        >>> embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> labels = torch.tensor([0, 0, 1])
        >>> round(float(multi_similarity_loss(embeddings, labels, mine=False)), 4)
        0.3994
        >>> round(float(multi_similarity_loss(embeddings, labels)), 4)
        0.1997

    The positive pair has cosine 0.6; sample 2 has cosine 0 with sample 0 and 0.8 with
    sample 1. Without mining, anchors 0 and 1 each pay ``log(1 + e^(2 * -0.1)) / 2 = 0.299``
    for their positive, and anchors 1 and 2 about ``50 * 0.3 / 50 = 0.3`` for the negative pair
    (1, 2); the negative (0, 2) at cosine 0 costs almost nothing. With mining, anchor 0 keeps
    nothing (its positive, 0.6, is more similar than its negative, 0, by more than 0.1) and
    anchor 2 has no positive, so no negative either: only anchor 1 pays.

    Taught in notebooks/10_reality_check.ipynb
    """
    _require_multi_similarity_parameters(alpha, beta, base, epsilon)
    similarities, positive, negative = _cosines_and_masks(embeddings, labels)
    if mine:
        positive, negative = _multi_similarity_pairs(similarities.detach(), positive, negative, epsilon)
    positive_terms = _log_one_plus_sum_exp(alpha * (base - similarities), positive) / alpha
    negative_terms = _log_one_plus_sum_exp(beta * (similarities - base), negative) / beta
    return (positive_terms + negative_terms).mean()


def _cosines_and_masks(embeddings, labels):
    """The (B, B) cosines of the batch and its positive and negative masks, inputs checked."""
    _require_embeddings(embeddings, "embeddings")
    labels = _as_labels(labels, len(embeddings), embeddings.device)
    unit = unit_rows(embeddings)
    positive, negative = positive_negative_masks(labels)
    return unit @ unit.T, positive, negative


def _multi_similarity_pairs(similarities, positive, negative, epsilon):
    """The masks of the pairs that the multi-similarity mining keeps (see :func:`multi_similarity_loss`).

    Returns:
        ``(positive, negative)``, two (B, B) bool tensors, subsets of the given masks.
    """
    # An anchor without negatives has -inf as its most similar negative: no positive is
    # below it. An anchor without positives has +inf as its least similar one: no negative
    # is above it.
    most_similar_negative = similarities.masked_fill(~negative, float("-inf")).amax(dim=1, keepdim=True)
    least_similar_positive = similarities.masked_fill(~positive, float("inf")).amin(dim=1, keepdim=True)
    hard_positive = positive & (similarities - epsilon < most_similar_negative)
    hard_negative = negative & (similarities + epsilon > least_similar_positive)
    return hard_positive, hard_negative


def _log_one_plus_sum_exp(x, mask):
    """``log(1 + sum_j exp(x_ij))`` over the masked entries of each row: (B,), 0 for a row without any.

    The 1 is ``exp(0)``: a column of zeros joins the row, and ``torch.logsumexp`` does the
    rest without overflow (with ``beta = 50``, ``exp(beta * (s - base))`` passes float32's
    largest number once ``s - base`` is above about 1.77).
    """
    x = x.masked_fill(~mask, float("-inf"))
    zeros = x.new_zeros(len(x), 1)
    return torch.logsumexp(torch.cat([x, zeros], dim=1), dim=1)


def _require_multi_similarity_parameters(alpha, beta, base, epsilon):
    _require_positive("alpha", alpha)
    _require_positive("beta", beta)
    if not _is_number(base) or not math.isfinite(base):
        raise ValueError(
            f"base must be a finite number, got {base!r}: it is the cosine that positive pairs "
            "should exceed and negative pairs stay under, usually in [0, 1]."
        )
    if not _is_number(epsilon) or not epsilon >= 0:
        raise ValueError(
            f"epsilon must be a number >= 0, got {epsilon!r}: it is the margin by which the "
            "mining compares a pair with the anchor's hardest pair of the other kind."
        )


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SupConLoss(torch.nn.Module):
    """:func:`supcon_loss` as a module: ``loss_fn(embeddings, labels)``.

    Args:
        temperature: As in :func:`supcon_loss`, checked here.

    Example:
        >>> loss_fn = SupConLoss(temperature=0.1)
        >>> loss = loss_fn(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))

    Taught in notebooks/10_reality_check.ipynb
    """

    def __init__(self, temperature=0.1):
        super().__init__()
        _require_positive("temperature", temperature)
        self.temperature = temperature

    def forward(self, embeddings, labels):
        """The loss of a batch; see :func:`supcon_loss`.

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer tensor of class labels.

        Returns:
            A scalar tensor.

        Taught in notebooks/10_reality_check.ipynb
        """
        return supcon_loss(embeddings, labels, self.temperature)

    def extra_repr(self):
        return f"temperature={self.temperature}"


class MultiSimilarityLoss(torch.nn.Module):
    """:func:`multi_similarity_loss` as a module: ``loss_fn(embeddings, labels)``.

    Args:
        alpha, beta, base, mine, epsilon: As in :func:`multi_similarity_loss`, checked here.

    Example:
        >>> loss_fn = MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5)
        >>> loss = loss_fn(torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))

    Taught in notebooks/10_reality_check.ipynb
    """

    def __init__(self, alpha=2.0, beta=50.0, base=0.5, mine=True, epsilon=0.1):
        super().__init__()
        _require_multi_similarity_parameters(alpha, beta, base, epsilon)
        self.alpha = alpha
        self.beta = beta
        self.base = base
        self.mine = bool(mine)
        self.epsilon = epsilon

    def forward(self, embeddings, labels):
        """The loss of a batch; see :func:`multi_similarity_loss`.

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer tensor of class labels.

        Returns:
            A scalar tensor.

        Taught in notebooks/10_reality_check.ipynb
        """
        return multi_similarity_loss(embeddings, labels, self.alpha, self.beta, self.base, self.mine, self.epsilon)

    def extra_repr(self):
        return f"alpha={self.alpha}, beta={self.beta}, base={self.base}, mine={self.mine}, epsilon={self.epsilon}"
