"""The course's distances between embeddings: one set, one rule for a vector without a direction.

* :data:`DISTANCES`: Euclidean, squared Euclidean and cosine distance. The losses, the metrics
  and the explorer all take ``distance=`` one of these.
* :func:`unit_rows`: each row scaled to unit length, for the cosine distance. An all-zero row
  has no direction; it stays zero, so its cosine with anything is 0 and its cosine distance is
  1 from everything (a silent frame is equally far from every chord). Everything in the course
  that takes a cosine follows this rule.
* :func:`pairwise_distances`: the (B, B) or (B, C) distance matrix of a batch, for the losses,
  with a finite gradient everywhere (also between identical embeddings, where the Euclidean
  distance itself has none).

Taught in notebooks/03_siamese_contrastive.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["DISTANCES", "pairwise_distances", "unit_rows"]

DISTANCES = ("euclidean", "squared", "cosine")
"""The distances of :func:`pairwise_distances`: Euclidean, squared Euclidean, 1 - cosine."""


def unit_rows(x):
    """Each row of ``x`` divided by its length; an all-zero row stays zero.

    Args:
        x: (N, D) float tensor.

    Returns:
        (N, D) tensor, differentiable (as ``torch.nn.functional.normalize``).

    Example:
        >>> unit_rows(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
        tensor([[0.6000, 0.8000],
                [0.0000, 0.0000]])

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    return F.normalize(x, dim=1)


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
    similarities = unit_rows(x) @ unit_rows(y).T
    return (1.0 - similarities).clamp(0.0, 2.0)


def _require_distance(distance):
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}: use one of {DISTANCES}.")


def _require_embeddings(embeddings, name):
    if not torch.is_tensor(embeddings) or not embeddings.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor of shape (B, D); got "
            f"{type(embeddings).__name__}. Convert with torch.as_tensor(..., "
            "dtype=torch.float32)."
        )
    if embeddings.ndim != 2:
        raise ValueError(
            f"{name} must have shape (B, D), one row per sample; got shape "
            f"{tuple(embeddings.shape)}. A single embedding needs x[None, :], "
            "a batch of feature maps x.flatten(1)."
        )


def _require_same_width(x, y):
    if x.shape[1] != y.shape[1] or x.dtype != y.dtype or x.device != y.device:
        raise ValueError(
            f"x and y must have the same dimension, dtype and device; got "
            f"{tuple(x.shape)} {x.dtype} {x.device} and {tuple(y.shape)} "
            f"{y.dtype} {y.device}."
        )
