"""Pair metrics: are similar items nearer to each other than dissimilar ones?

* :func:`pair_distances` splits the distances of all pairs of items into those of positive
  pairs (same label) and those of negative pairs (different labels), leaving out pairs of one
  group (e.g. two clips of one piece). Histograms of the two, and the ROC-AUC of the distance as
  a score for "same label", show how well a distance alone tells the two kinds apart.

Taught in notebooks/03_siamese_contrastive.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from ..distances import pairwise_distances
from .neighbors import _as_embeddings, _label_array


@torch.no_grad()
def pair_distances(embeddings, labels, groups=None):
    """The Euclidean distances of all positive and all negative pairs of items.

    Every unordered pair ``{i, j}`` with ``i < j`` counts once: as positive when both items have
    the same label, as negative otherwise. With ``groups``, pairs of items of one group are left
    out, so that only items of different groups (pieces, recordings) are compared.

    Args:
        embeddings: (N, D) float tensor or array.
        labels: (N,) labels.
        groups: Optional (N,) group of each item.

    Returns:
        ``(positive, negative)``: two 1-D numpy arrays of distances, in the embeddings' dtype,
        pairs in row-major order of ``(i, j)``.

    Raises:
        ValueError: On bad embeddings (as in :func:`mlcourse.metrics.nearest_neighbors`), or
            labels or groups of another length than the embeddings.

    Example:
        >>> positive, negative = pair_distances([[0.0], [1.0], [3.0]], ["a", "a", "b"])
        >>> positive.tolist(), negative.tolist()
        ([1.0], [3.0, 2.0])

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    embeddings = _as_embeddings(embeddings, "embeddings", "cpu")
    labels = _label_array(labels, "labels", len(embeddings))
    distances = pairwise_distances(embeddings).numpy()
    pairs = np.triu(np.ones_like(distances, dtype=bool), k=1)
    if groups is not None:
        groups = _label_array(groups, "groups", len(embeddings))
        pairs &= groups[:, None] != groups[None, :]
    same_label = labels[:, None] == labels[None, :]
    return distances[pairs & same_label], distances[pairs & ~same_label]
