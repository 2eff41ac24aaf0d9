"""Disentangled embeddings: one loss per concept, each on its own sub-space; track regularization.

A clip of music is similar to another in several ways at once: same genre, same mood, same
instrument, same era. One embedding trained on all concepts mixes them, so a nearest
neighbour may share the genre but not the mood. A *disentangled* embedding gives each concept
a sub-space of its own (Conditional Similarity Networks, Veit et al., 2017; Lee et al., ICASSP
2020 and ISMIR 2020): with 4 concepts and 256 dimensions, genre owns dimensions 0-63, mood
64-127, and so on, and each concept's loss only sees its own dimensions.

The two losses live with the other losses, in :mod:`mlcourse.losses.disentangled`:

* :class:`DisentangledLoss` adds up (averages) one loss per concept, each computed on that
  concept's masked embedding (see :class:`mlcourse.models.ConceptMasks`); without masks, it is
  the plain multi-concept model, every loss on the complete embedding. The per-concept losses
  can be of any kind with a ``loss(embeddings, labels)`` call: triplet, proxy or
  classification.
* :class:`TrackRegularizedLoss` adds a loss whose positives are other clips of the same track
  (non-overlapping segments of one rendering, drawn by
  :class:`mlcourse.data.samplers.TrackBatches`): ``L = L_concept + lambda * L_track``.

Labels are a (B, S) matrix of integer codes, one column per concept, plus a last column of
track ids for :class:`TrackRegularizedLoss`; :func:`label_matrix` builds it from a dataset.

Taught in notebooks/06_disentangled.ipynb
"""

from __future__ import annotations

import numpy as np

from .losses import DisentangledLoss, TrackRegularizedLoss

__all__ = ["DisentangledLoss", "TrackRegularizedLoss", "label_matrix"]


def label_matrix(dataset, concepts, track=False):
    """The labels of several concepts as one (N, S) int64 matrix (+ a track column).

    Args:
        dataset: A :class:`mlcourse.data.ClipDataset` (e.g. ``load_dataset("smoke")``).
        concepts: Concept names, e.g. ``mlcourse.data.CONCEPTS``; column ``i`` holds the codes
            of ``concepts[i]`` (as ``dataset.labels``).
        track: Add a last column of track ids, codes of ``meta.version_id``.

    Returns:
        (N, S) or (N, S + 1) int64 array.

    Raises:
        ValueError: If a concept is not in the metadata.

    Taught in notebooks/06_disentangled.ipynb
    """
    columns = [dataset.labels(concept)[0] for concept in concepts]
    if track:
        columns.append(np.unique(dataset.meta["version_id"].astype(str),
                                 return_inverse=True)[1].reshape(-1))
    return np.stack(columns, axis=1).astype(np.int64)
