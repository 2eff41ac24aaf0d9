"""Metrics: how well an embedding puts related items next to each other.

A metric-learning model is judged by the neighbourhoods of its embedding space, so almost every
metric here starts from a nearest-neighbour search:

* :func:`nearest_neighbors` finds the k nearest gallery items of every query.
* :func:`recall_at_k` (R@K) is the fraction of queries with at least one item of their own
  class among their k nearest neighbours, the headline number of deep metric learning papers
  (Song et al., 2016; Lee et al., ISMIR 2020).
* :func:`mean_average_precision` (mAP) scores the whole ranking of the gallery, not just its top.
* :func:`retrieval_accuracies` gives the field's other figures under pytorch-metric-learning's
  names: precision at 1, R-precision, MAP@R and the mean reciprocal rank (Musgrave et al., 2020).
* :func:`binarize`, :func:`pack_bits` and :func:`hamming_distances` search by the Hamming
  distance between sign bits (hashing, Raffel & Ellis, 2015).
* :func:`knn_accuracy` classifies each query by a majority vote of its k nearest neighbours;
  :func:`nearest_prototype_accuracy` by the nearest class mean.
* :func:`pair_distances` gives the distances of similar and of dissimilar pairs, to compare.
* :func:`triplet_accuracy` is the fraction of (anchor, positive, negative) triplets that the
  embedding orders correctly, which is what a triplet loss trains for, and
  :func:`triplet_kind_shares` the shares of easy, semi-hard and hard triplets.

The evaluation of Lee et al. (ISMIR 2020) adds tagging and per-concept metrics:

* :func:`class_centroids` gives each tag the mean embedding of its items (its prototype), and
  :func:`tag_scores` scores every item against every tag vector (centroid or proxy) by
  nearness, for auto-tagging and tag-to-track retrieval.
* :func:`per_tag_auc` and :func:`tag_auc` (macro ROC-AUC) judge those scores.
* :func:`concept_triplet_accuracy` is the triplet accuracy of each concept (genre, mood,
  instrument, era), in the complete space and in each concept's sub-space of a disentangled
  embedding.

Matching tasks, where each query has one true partner (audio clip and its score excerpt),
are scored by the partner's rank: :func:`match_ranks`, :func:`mean_reciprocal_rank`,
:func:`recall_at_ranks` and :func:`retrieval_table`. What a simple reader finds in an
embedding is measured by :func:`knn_accuracy` and :func:`linear_readout_r2`.

One module per family: ``neighbors`` (the blockwise search every metric starts from, and the
input checks they share), ``retrieval``, ``probes``, ``pairs``, ``triplets``, ``tagging``,
``matching`` and ``hashing``. Everything is imported here, so ``from mlcourse.metrics import recall_at_k``
works whichever module holds it.

Taught in notebooks/01_distances_and_lda.ipynb to notebooks/10_reality_check.ipynb
"""

from .hashing import binarize, hamming_distances, hamming_nearest_neighbors, pack_bits
from .matching import match_ranks, match_ranks_from_distances, mean_reciprocal_rank, recall_at_ranks, retrieval_table
from .neighbors import BLOCK_BYTES, DISTANCES, nearest_neighbors
from .pairs import pair_distances
from .probes import knn_accuracy, linear_readout_r2, nearest_prototype_accuracy
from .retrieval import chance_recall_at_1, group_spread, mean_average_precision, recall_at_k, retrieval_accuracies
from .tagging import class_centroids, per_tag_auc, tag_auc, tag_scores, tag_to_track_retrieval
from .triplets import concept_triplet_accuracy, triplet_accuracy, triplet_kind_shares

__all__ = [
    "BLOCK_BYTES",
    "DISTANCES",
    "binarize",
    "chance_recall_at_1",
    "class_centroids",
    "concept_triplet_accuracy",
    "group_spread",
    "hamming_distances",
    "hamming_nearest_neighbors",
    "knn_accuracy",
    "linear_readout_r2",
    "match_ranks",
    "match_ranks_from_distances",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "nearest_neighbors",
    "nearest_prototype_accuracy",
    "pack_bits",
    "pair_distances",
    "per_tag_auc",
    "recall_at_k",
    "recall_at_ranks",
    "retrieval_accuracies",
    "retrieval_table",
    "tag_auc",
    "tag_scores",
    "tag_to_track_retrieval",
    "triplet_accuracy",
    "triplet_kind_shares",
]
