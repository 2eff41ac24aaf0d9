"""Losses for deep metric learning: train a network so that distances reflect labels.

A network maps each input (here, a clip of music) to an embedding vector. A metric learning
loss looks at a batch of embeddings and their labels and pulls same-label embeddings together
while pushing different-label ones apart, so that a nearest-neighbour search in the embedding
space finds items of the same class. The pair and triplet losses only compare pairwise
distances; they do not normalise the embeddings (the model's last layer does, when it should).

* :func:`~mlcourse.distances.pairwise_distances`: the (B, B) distance matrix of a batch, in
  Euclidean, squared Euclidean or cosine distance, with a finite gradient everywhere.
* :func:`contrastive_loss` (Hadsell, Chopra & LeCun, 2006) looks at pairs: same-label pairs
  should be closer than ``pos_margin``, different-label pairs farther than ``neg_margin``.
* :func:`triplet_margin_loss` (Weinberger & Saul 2009; Schroff et al., 2015) looks at
  triplets: the anchor's positive should be closer than its negative by ``margin``. Which
  triplets count is chosen inside the batch by :func:`mlcourse.miners.mine_triplets`.
* :func:`supcon_loss` (supervised contrastive, Khosla et al., 2020) and
  :func:`multi_similarity_loss` (Wang et al., 2019) weigh every pair of the batch at once:
  the first as a softmax over all other clips with several positives, the second with soft
  weights from the similarities of a pair and of its neighbours, after its own pair mining.
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

Without labels, the positives come from the data:

* :func:`nt_xent_loss` (SimCLR, Chen et al., 2020): two augmented views of each clip find
  each other among the batch;
* :func:`info_nce_loss`: the same across two modalities, audio clip against its piano roll;
* :func:`adjacency_dssm_loss` (Bretan & Heck, 2019): a clip picks the clip that follows it
  out of a softmax over similarities ``1 / (1 + distance)``; :func:`easy_negative_fraction`
  measures how many of its negatives are already easy; :class:`AdjacencyDiscriminatorLoss`
  asks a small discriminator instead (A-AdjD).

Disentangled embeddings train one of these losses per concept, each on its own sub-space
(:class:`DisentangledLoss`, :class:`TrackRegularizedLoss`).

One module per family, one family per notebook: ``pairs`` (the contrastive loss, notebook 03;
SupCon and multi-similarity, notebook 10),
``triplets`` (04), ``proxies`` (classification and proxies, 05), ``disentangled`` (06) and
``selfsupervised`` (InfoNCE in 07; NT-Xent, the adjacency DSSM and the adjacency discriminator
in 08). The distances live in :mod:`mlcourse.distances`. Everything is imported here, so
``from mlcourse.losses import TripletMarginLoss`` works whichever module holds it.
"""

from ..distances import DISTANCES, pairwise_distances
from .disentangled import DisentangledLoss, TrackRegularizedLoss
from .pairs import (
    ContrastiveLoss,
    MultiSimilarityLoss,
    SupConLoss,
    contrastive_loss,
    multi_similarity_loss,
    supcon_loss,
)
from .proxies import (
    AttributeClassificationLoss,
    ClassificationLoss,
    ProxyNCALoss,
    check_class_labels,
    logits_loss,
    normalized_softmax_logits,
    proxy_nca_logits,
    proxy_nca_loss,
)
from .selfsupervised import (
    AdjacencyDiscriminatorLoss,
    AdjacencyDSSMLoss,
    InfoNCELoss,
    NTXentLoss,
    adjacency_dssm_loss,
    draw_negatives,
    easy_negative_fraction,
    info_nce_loss,
    nt_xent_loss,
)
from .triplets import TripletMarginLoss, triplet_margin_loss

__all__ = [
    "DISTANCES",
    "AdjacencyDSSMLoss",
    "AdjacencyDiscriminatorLoss",
    "AttributeClassificationLoss",
    "ClassificationLoss",
    "ContrastiveLoss",
    "DisentangledLoss",
    "InfoNCELoss",
    "MultiSimilarityLoss",
    "NTXentLoss",
    "ProxyNCALoss",
    "SupConLoss",
    "TrackRegularizedLoss",
    "TripletMarginLoss",
    "adjacency_dssm_loss",
    "check_class_labels",
    "contrastive_loss",
    "draw_negatives",
    "easy_negative_fraction",
    "info_nce_loss",
    "logits_loss",
    "multi_similarity_loss",
    "normalized_softmax_logits",
    "nt_xent_loss",
    "pairwise_distances",
    "proxy_nca_logits",
    "proxy_nca_loss",
    "supcon_loss",
    "triplet_margin_loss",
]
