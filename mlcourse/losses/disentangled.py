"""Disentangled losses: each concept's loss on its own sub-space of one embedding.

* :class:`DisentangledLoss` (Lee et al., ICASSP 2020; the ISMIR 2020 comparison): the mean over
  concepts of each concept's loss on its sub-space, picked by a
  :class:`mlcourse.models.ConceptMasks`;
* :class:`TrackRegularizedLoss`: the same plus a loss that pulls the clips of one recording
  together.

Taught in notebooks/06_disentangled.ipynb
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class DisentangledLoss(nn.Module):
    """The mean over concepts of each concept's loss on its own sub-space.

    For concepts ``c = 1 .. S`` with losses ``L_c`` and masks ``m_c``::

        L = (1 / S) * sum_c L_c(normalize(sub_c(f(x))), y_c)

    where ``sub_c`` is, for fixed masks, the concept's block of dimensions itself (a (B, D / S)
    tensor, so a classifier or proxy loss for concept ``c`` is built for D / S inputs); for
    learned masks, the masked embedding ``f(x) * m_c`` (B, D); and without masks, the complete
    embedding (B, D): the plain, entangled multi-concept model. ``normalize`` divides each row
    by its L2 norm, which puts every sub-space on its own unit sphere, so a margin means the
    same in each (and a block of a unit-norm embedding is not itself of unit norm).

    Args:
        concept_losses: Dict concept name -> loss module called as ``loss(embeddings, labels)``
            with (B,) labels, e.g. :class:`mlcourse.losses.TripletMarginLoss`. Its order is the
            order of the label columns. Held in an ``nn.ModuleDict``, so their parameters
            (proxies, class weights) are trained too.
        masks: A :class:`mlcourse.models.ConceptMasks` over the same concepts (its learned
            masks are then trained too), or None for the plain multi-concept model.
        normalize_subspaces: L2-normalise each concept's (sub-)embedding before its loss.

    Attributes:
        last_stats: Dict concept -> dict about the last call: the concept loss's own
            ``last_stats`` (if it keeps any) and ``loss``, that concept's loss value.

    Raises:
        ValueError: If ``concept_losses`` is empty or not a dict of modules, or the masks'
            concepts are not those of ``concept_losses``.

    Example:
        >>> from mlcourse.losses import TripletMarginLoss
        >>> from mlcourse.models import ConceptMasks
        >>> masks = ConceptMasks(["genre", "mood"], embedding_dim=8)
        >>> loss_fn = DisentangledLoss({"genre": TripletMarginLoss(), "mood": TripletMarginLoss()},
        ...                            masks)
        >>> loss = loss_fn(torch.randn(4, 8), torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]))
        >>> sorted(loss_fn.last_stats)
        ['genre', 'mood']

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(self, concept_losses, masks=None, normalize_subspaces=True):
        super().__init__()
        if not isinstance(concept_losses, dict) or not concept_losses:
            raise ValueError(
                f"concept_losses must be a non-empty dict concept -> loss module, got {type(concept_losses).__name__}"
            )
        not_modules = [c for c, loss in concept_losses.items() if not isinstance(loss, nn.Module)]
        if not_modules:
            raise ValueError(
                f"the losses of {not_modules} are not nn.Module: wrap them, e.g. mlcourse.losses.TripletMarginLoss()"
            )
        if masks is not None and list(masks.concepts) != list(concept_losses):
            raise ValueError(
                f"the masks' concepts {list(masks.concepts)} differ from those of "
                f"concept_losses {list(concept_losses)}: give them in one order"
            )
        self.concept_losses = nn.ModuleDict(concept_losses)
        self.masks = masks
        self.normalize_subspaces = bool(normalize_subspaces)
        self.last_stats = {}

    @property
    def concepts(self):
        """The concept names, in the order of the label columns.

        Taught in notebooks/06_disentangled.ipynb
        """
        return list(self.concept_losses)

    def subspace(self, embeddings, concept):
        """The (sub-)embedding that ``concept``'s loss sees, normalised if asked.

        Args:
            embeddings: (B, D) float tensor, the complete embeddings.
            concept: One of :attr:`concepts`.

        Returns:
            (B, D / S) tensor for fixed masks, (B, D) otherwise.

        Raises:
            ValueError: If the concept is unknown (with masks), or the embeddings are not
                (B, D).

        Taught in notebooks/06_disentangled.ipynb
        """
        if self.masks is None:
            sub = embeddings
        elif embeddings.dim() != 2 or embeddings.shape[1] != self.masks.embedding_dim:
            raise ValueError(
                f"expected embeddings of shape (batch, {self.masks.embedding_dim}) "
                f"to match the masks, got {tuple(embeddings.shape)}"
            )
        elif self.masks.learned:
            sub = self.masks(embeddings, concept)
        else:
            # The block itself, not the zero-padded product: a per-concept classifier or set
            # of proxies then has D / S inputs, and no dimension is wasted on zeros.
            sub = embeddings[:, self.masks.block(concept)]
        return F.normalize(sub, dim=1) if self.normalize_subspaces else sub

    def forward(self, embeddings, labels):
        """The mean of the concepts' losses on their sub-spaces.

        Args:
            embeddings: (B, D) float tensor.
            labels: (B, S) integer tensor, column ``i`` the codes of ``concepts[i]``; (B,) is
                accepted when there is one concept.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If ``labels`` is not (B, S) or ``embeddings`` not (B, D).

        Taught in notebooks/06_disentangled.ipynb
        """
        labels = _label_columns(labels, embeddings, len(self.concept_losses))
        losses, self.last_stats = [], {}
        for column, (concept, loss_fn) in enumerate(self.concept_losses.items()):
            loss = loss_fn(self.subspace(embeddings, concept), labels[:, column])
            self.last_stats[concept] = {**getattr(loss_fn, "last_stats", {}), "loss": loss.item()}
            losses.append(loss)
        return torch.stack(losses).mean()


class TrackRegularizedLoss(nn.Module):
    """A concept loss regularised by a track loss: ``L = L_concept + weight * L_track``.

    ``L_track`` treats clips of the same track (one rendering of a piece) as positives and
    clips of other tracks as negatives, on the complete embedding: whatever the concepts
    leave out, two segments of one recording should still be close (Lee et al., ICASSP 2020,
    found it helps every concept). Batches need several clips of each track, that do not
    overlap: see :class:`mlcourse.data.samplers.TrackBatches`.

    Args:
        concept_loss: Loss module called with the concept columns of the labels, e.g. a
            :class:`DisentangledLoss`; when there is one concept column it gets a (B,) vector,
            so a single-concept loss such as :class:`mlcourse.losses.TripletMarginLoss` fits.
        track_loss: Loss module called as ``track_loss(embeddings, track_ids)``, e.g. a
            ``TripletMarginLoss`` on the complete embedding.
        weight: lambda, the weight of the track loss, finite and >= 0.

    Attributes:
        last_stats: ``{"loss", "concept_loss", "track_loss"}`` of the last call, as floats.

    Raises:
        ValueError: If a loss is not an ``nn.Module``, or ``weight`` is negative or not finite.

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(self, concept_loss, track_loss, weight):
        super().__init__()
        if not (isinstance(concept_loss, nn.Module) and isinstance(track_loss, nn.Module)):
            raise ValueError(
                "concept_loss and track_loss must be nn.Module losses, e.g. "
                "DisentangledLoss(...) and TripletMarginLoss()"
            )
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
        self.concept_loss, self.track_loss = concept_loss, track_loss
        self.weight = float(weight)
        self.last_stats = {}

    def forward(self, embeddings, labels):
        """The concept loss plus ``weight`` times the track loss.

        That is ``concept_loss(embeddings, labels[:, :-1]) + weight * track_loss(embeddings,
        labels[:, -1])``.

        Args:
            embeddings: (B, D) float tensor.
            labels: (B, S + 1) integer tensor: the S concept columns, then the track ids.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If ``labels`` is not a (B, S + 1) matrix with S >= 1.

        Taught in notebooks/06_disentangled.ipynb
        """
        if labels.dim() != 2 or labels.shape[1] < 2 or labels.shape[0] != len(embeddings):
            raise ValueError(
                f"labels must be (batch, concepts + 1) with the track ids last, at least two "
                f"columns and one row per embedding, got {tuple(labels.shape)} for "
                f"{len(embeddings)} embeddings: see mlcourse.disentangled.label_matrix"
            )
        concept_labels = labels[:, :-1]
        if concept_labels.shape[1] == 1:
            concept_labels = concept_labels[:, 0]
        concept_loss = self.concept_loss(embeddings, concept_labels)
        track_loss = self.track_loss(embeddings, labels[:, -1])
        loss = concept_loss + self.weight * track_loss
        self.last_stats = {"loss": loss.item(), "concept_loss": concept_loss.item(), "track_loss": track_loss.item()}
        return loss

    def extra_repr(self):
        return f"weight={self.weight}"


def _label_columns(labels, embeddings, n_concepts):
    """``labels`` as a (B, S) matrix, checked against the batch and the concepts."""
    if labels.dim() == 1 and n_concepts == 1:
        labels = labels[:, None]
    if labels.dim() != 2 or labels.shape != (len(embeddings), n_concepts):
        raise ValueError(
            f"labels must be (batch, concepts) = ({len(embeddings)}, {n_concepts}), one column "
            f"per concept in the order of concept_losses, got {tuple(labels.shape)}"
        )
    return labels
