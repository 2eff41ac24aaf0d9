"""What the pair and triplet losses share: reading the distance matrix, averaging hinges, input checks."""

from __future__ import annotations

import torch


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


def _require_contrastive_margins(pos_margin, neg_margin):
    if not 0 <= pos_margin < neg_margin:
        raise ValueError(
            f"the margins must satisfy 0 <= pos_margin < neg_margin, got "
            f"pos_margin={pos_margin!r}, neg_margin={neg_margin!r}: positive pairs "
            "should end up closer than negative ones."
        )


def _checked_indices(indices, names, n_samples, device):
    """A tuple of index tensors (pairs or triplets), checked and moved to ``device``.

    Raises:
        ValueError: If there are not ``len(names)`` 1-D integer tensors, lengths that must
            match do not, or an index is outside ``[0, n_samples)``.
    """
    if not isinstance(indices, (tuple, list)) or len(indices) != len(names):
        raise ValueError(
            f"expected a tuple of {len(names)} index tensors ({', '.join(names)}), "
            f"got {type(indices).__name__}{_length_note(indices)}."
        )
    indices = tuple(torch.as_tensor(index, device=device) for index in indices)
    for name, index in zip(names, indices):
        if index.ndim != 1 or index.is_floating_point() or index.dtype == torch.bool:
            raise ValueError(
                f"{name} must be a 1-D tensor of integer row indices, got {index.dtype} of shape {tuple(index.shape)}."
            )
        if len(index) and not 0 <= int(index.min()) <= int(index.max()) < n_samples:
            raise ValueError(f"{name} holds indices outside [0, {n_samples}), the batch's rows.")
    # Pairs come as (anchor, positive, anchor, negative): the lengths match two by two.
    groups = [indices] if len(indices) == 3 else [indices[:2], indices[2:]]
    if any(len({len(index) for index in group}) > 1 for group in groups):
        raise ValueError(f"{', '.join(names)} must have matching lengths, got {[len(index) for index in indices]}.")
    return tuple(index.long() for index in indices)


def _length_note(value):
    return f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""


def _require_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"{name} must be a number > 0, got {value!r}: it divides (or "
            "multiplies) the logits, and a sign flip would reward wrong classes."
        )
