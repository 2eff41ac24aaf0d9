"""Online triplet mining: which (anchor, positive, negative) triplets of a batch to train on.

A triplet ``(a, p, n)`` has an anchor ``a``, a positive ``p`` with the anchor's label and a
negative ``n`` with another label. The triplet loss asks the negative to be farther from the
anchor than the positive by a margin. Writing

    gap = d(a, n) - d(a, p)

(positive when the negative is the farther one), a batch's triplets fall into three kinds:

* **easy**: ``gap > margin``. The margin is already met; the hinge is 0, nothing to learn.
* **semi-hard**: ``0 < gap <= margin``. The negative is farther, but not by enough.
* **hard**: ``gap <= 0``. The negative is at least as close as the positive.

A batch of B samples holds up to B^3 triplets, most of them easy once training is under
way, so *which* ones the loss averages over changes what the model learns.
:func:`mine_triplets` implements the usual strategies on a batch's distance matrix; the
boundaries (which side of 0 and of the margin is inclusive) are those of
pytorch-metric-learning's ``TripletMarginMiner``, and ``"batch_hard"`` (Hermans et al., 2017)
is its ``BatchHardMiner``.

Memory: a (B, B, B) mask of every triplet would take B^3 bytes, 1 GiB at B = 1024. Only the
(anchor, positive) pairs can start a triplet, so the margin strategies compare each such pair
with the anchor's row of distances, a (pairs, B) matrix; with K samples per class that is
(K - 1) B^2 entries, and it is processed in blocks of at most :data:`BLOCK_BYTES`. What
cannot be bounded is the answer itself: 24 bytes per mined triplet (three int64 indices).
A batch of 1024 in classes of 4 holds about 3 million triplets (72 MB); in 10 classes of
about 100 it holds 95 million (2.3 GB, and the loss needs several times that): use P x K
batches with a small K.

Taught in notebooks/04_triplet_mining.ipynb
"""

from __future__ import annotations

import torch

from .checks import BLOCK_BYTES

__all__ = [
    "BLOCK_BYTES",
    "STRATEGIES",
    "mine_triplets",
    "positive_negative_masks",
    "triplet_gaps",
]

STRATEGIES = ("all", "hard", "semihard", "easy", "batch_hard", "none")
"""The mining strategies of :func:`mine_triplets`."""


def positive_negative_masks(labels):
    """Which pairs of a batch share a label (positives) and which do not (negatives).

    Args:
        labels: (B,) integer tensor of class labels.

    Returns:
        ``(positive, negative)``, two (B, B) bool tensors on the labels' device:
        ``positive[i, j]`` is true when ``i != j`` and ``labels[i] == labels[j]`` (a sample is
        not its own positive); ``negative[i, j]`` when ``labels[i] != labels[j]``.

    Raises:
        ValueError: If ``labels`` is not one-dimensional.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    labels = _as_labels(labels, None, device=None)
    same_label = labels[:, None] == labels[None, :]
    itself = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same_label & ~itself, ~same_label


@torch.no_grad()
def mine_triplets(distances, labels, margin=0.2, strategy="all"):
    """The triplets of a batch selected by a mining strategy.

    With ``gap = d(a, n) - d(a, p)``, the strategies keep, among all valid triplets:

    * ``"all"``: ``gap <= margin``, every triplet that does not beat the margin;
    * ``"hard"``: ``gap <= 0``;
    * ``"semihard"``: ``0 < gap <= margin``;
    * ``"easy"``: ``gap > margin`` (their hinge is 0: useful to look at, not to train on);
    * ``"batch_hard"``: one triplet per anchor, its farthest positive and its nearest
      negative; anchors without a positive or without a negative are skipped;
    * ``"none"``: every valid triplet, with no selection.

    Args:
        distances: (B, B) float tensor, smaller meaning closer, such as the output of
            :func:`mlcourse.losses.pairwise_distances`. Gradients are not tracked.
        labels: (B,) integer tensor of class labels (a list or an array is converted).
        margin: The triplet loss's margin, > 0; used by the four margin strategies.
        strategy: One of :data:`STRATEGIES`.

    Returns:
        ``(anchor, positive, negative)``, three (T,) int64 tensors on the distances' device,
        sorted by anchor, then positive, then negative (``"batch_hard"``: by anchor).

    Raises:
        ValueError: If ``strategy`` is unknown, ``margin <= 0``, ``distances`` is not a
            square matrix, or ``labels`` does not have one label per row.

    Example:
        >>> distances = torch.tensor([[0.0, 0.5, 0.3], [0.5, 0.0, 0.9], [0.3, 0.9, 0.0]])
        >>> mine_triplets(distances, torch.tensor([0, 0, 1]), margin=0.2, strategy="hard")
        (tensor([0]), tensor([1]), tensor([2]))

    Taught in notebooks/04_triplet_mining.ipynb
    """
    _require_strategy(strategy)
    _require_positive_margin(margin)
    _require_distance_matrix(distances)
    labels = _as_labels(labels, len(distances), distances.device)
    positive, negative = positive_negative_masks(labels)
    if strategy == "batch_hard":
        return _batch_hard_triplets(distances, positive, negative)
    return _selected_triplets(distances, positive, negative, margin, strategy)


def triplet_gaps(distances, anchor, positive, negative):
    """How much farther each triplet's negative is than its positive: ``d(a, n) - d(a, p)``.

    A gap above the margin makes an easy triplet, between 0 and the margin a semi-hard one,
    and 0 or below a hard one.

    Args:
        distances: (B, B) float tensor of distances.
        anchor, positive, negative: (T,) int64 tensors of row indices, as from
            :func:`mine_triplets`.

    Returns:
        (T,) tensor of gaps, in the distances' dtype, differentiable.

    Taught in notebooks/04_triplet_mining.ipynb
    """
    return distances[anchor, negative] - distances[anchor, positive]


def _selected_triplets(distances, positive, negative, margin, strategy):
    """The triplets of a margin strategy (or ``"none"``), a block of (a, p) pairs at a time.

    Each pair (a, p) is compared with the whole row ``distances[a]``: a (pairs, B) gap matrix
    instead of a (B, B, B) one. Pairs come sorted by (a, p) and ``nonzero`` is row-major, so
    the triplets come out sorted by (a, p, n).
    """
    pair_anchor, pair_positive = positive.nonzero(as_tuple=True)
    bytes_per_pair = max(1, len(distances) * (distances.element_size() + 3))
    pairs_per_block = max(1, BLOCK_BYTES // bytes_per_pair)
    blocks = []
    for start in range(0, len(pair_anchor), pairs_per_block):
        anchor = pair_anchor[start : start + pairs_per_block]
        positive_index = pair_positive[start : start + pairs_per_block]
        keep = negative[anchor]
        if strategy != "none":
            gaps = distances[anchor] - distances[anchor, positive_index][:, None]
            keep &= _within_strategy(gaps, margin, strategy)
        pair, negative_index = keep.nonzero(as_tuple=True)
        blocks.append((anchor[pair], positive_index[pair], negative_index))
    if not blocks:
        empty = pair_anchor.new_empty(0)
        return empty, empty.clone(), empty.clone()
    if len(blocks) == 1:  # the usual case; torch.cat would copy it
        return blocks[0]
    return tuple(torch.cat(parts) for parts in zip(*blocks))


def _within_strategy(gaps, margin, strategy):
    """Bool mask of the gaps a margin strategy keeps (the bounds of ``TripletMarginMiner``)."""
    if strategy == "easy":
        return gaps > margin
    if strategy == "hard":
        return gaps <= 0
    if strategy == "semihard":
        return (gaps > 0) & (gaps <= margin)
    return gaps <= margin


def _batch_hard_triplets(distances, positive, negative):
    """Each anchor with its farthest positive and its nearest negative."""
    farthest_positive = distances.masked_fill(~positive, -torch.inf).argmax(dim=1)
    nearest_negative = distances.masked_fill(~negative, torch.inf).argmin(dim=1)
    has_both = positive.any(dim=1) & negative.any(dim=1)
    anchor = has_both.nonzero().flatten()
    return anchor, farthest_positive[anchor], nearest_negative[anchor]


# --------------------------------------------------------------------------------------------
# Input checks, shared with mlcourse.losses
# --------------------------------------------------------------------------------------------


def _as_labels(labels, n_samples, device):
    """``labels`` as a 1-D tensor on ``device`` (None: where it is), checked against the batch.

    Raises:
        ValueError: If ``labels`` is not 1-D or, when ``n_samples`` is given, its length is not
            ``n_samples``.
    """
    if labels is None:
        raise ValueError("labels are required: pass a (B,) tensor with one class per sample.")
    labels = torch.as_tensor(labels, device=device)
    if labels.ndim != 1:
        raise ValueError(
            f"labels must be a 1-D tensor of shape (B,), got shape "
            f"{tuple(labels.shape)}. Flatten them, e.g. labels.flatten()."
        )
    if n_samples is not None and len(labels) != n_samples:
        raise ValueError(
            f"labels has {len(labels)} entries but the batch has {n_samples} "
            "samples: pass exactly one label per sample."
        )
    return labels


def _require_strategy(strategy):
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown mining strategy {strategy!r}: use one of {STRATEGIES}.")


def _require_positive_margin(margin):
    if not margin > 0:
        raise ValueError(
            f"margin must be a number > 0, got {margin!r}. With no margin the "
            "loss is satisfied as soon as the negative is a hair farther."
        )


def _require_distance_matrix(distances):
    if not torch.is_tensor(distances) or not distances.is_floating_point():
        raise ValueError(
            "distances must be a floating-point tensor, such as the output of mlcourse.losses.pairwise_distances."
        )
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(
            f"distances must be a square (B, B) matrix, got shape "
            f"{tuple(distances.shape)}. Compute it with "
            "mlcourse.losses.pairwise_distances(embeddings)."
        )
