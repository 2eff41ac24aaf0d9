"""Classification as metric learning: logits from one learned vector per class (a proxy).

* :func:`normalized_softmax_logits` (cosine to each class vector over a temperature) and
  :func:`proxy_nca_logits` (minus the scaled squared distance to each proxy);
* :func:`logits_loss`: cross-entropy of class codes, or per-tag binary cross-entropy of
  multi-hot tags; :func:`check_class_labels` checks either form;
* :func:`proxy_nca_loss` (Movshovitz-Attias et al., 2017), with a multi-label form;
* :class:`ClassificationLoss` and :class:`ProxyNCALoss`, which own their class vectors, and
  :class:`AttributeClassificationLoss`, which makes them from descriptions of the classes
  (zero-shot tagging).

Taught in notebooks/05_classification_and_proxies.ipynb
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import require_positive_int, seeded_generator
from ..distances import _require_embeddings, pairwise_distances
from ..miners import _as_labels
from ._checks import _require_positive


def normalized_softmax_logits(embeddings, weights, temperature=0.05):
    """Cosine similarities between embeddings and class vectors, divided by a temperature.

    ``logits[i, c] = cos(e_i, w_c) / temperature``. With both sides L2-normalised, a softmax
    classifier scores a class by the angle to its vector alone, so its class vectors are points
    of the same sphere as the embeddings: classification becomes metric learning against one
    learned point per class. The cosine lies in [-1, 1]; a small temperature spreads it out
    enough for the softmax to become confident.

    Args:
        embeddings: (B, D) float tensor.
        weights: (C, D) float tensor, one vector per class (any length; it is normalised).
        temperature: > 0.

    Returns:
        (B, C) tensor of logits in ``[-1/temperature, 1/temperature]``, differentiable with
        respect to both arguments.

    Raises:
        ValueError: If the tensors are not 2-D float tensors of the same D, dtype and device,
            or ``temperature <= 0``.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    _require_positive("temperature", temperature)
    _require_class_vectors(embeddings, weights)
    return F.normalize(embeddings, dim=1) @ F.normalize(weights, dim=1).T / temperature


def proxy_nca_logits(embeddings, proxies, softmax_scale=1.0):
    """Minus the scaled squared distances between normalised embeddings and proxies.

    ``logits[i, c] = -softmax_scale * ||e_i/|e_i| - p_c/|p_c|| ^ 2``. For unit vectors
    ``||e - p||^2 = 2 - 2 cos(e, p)``, so up to a constant per row (which a softmax ignores)
    these are :func:`normalized_softmax_logits` with ``temperature = 1 / (2 softmax_scale)``:
    Proxy-NCA and the normalised softmax classifier are the same model.

    Args:
        embeddings: (B, D) float tensor.
        proxies: (C, D) float tensor, one proxy per class (any length; it is normalised).
        softmax_scale: > 0; how sharply the softmax prefers the nearest proxy.

    Returns:
        (B, C) tensor of logits in ``[-4 softmax_scale, 0]``, differentiable.

    Raises:
        ValueError: As :func:`normalized_softmax_logits`, or if ``softmax_scale <= 0``.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    _require_positive("softmax_scale", softmax_scale)
    _require_class_vectors(embeddings, proxies)
    squared = pairwise_distances(F.normalize(embeddings, dim=1), F.normalize(proxies, dim=1), distance="squared")
    return -softmax_scale * squared


def logits_loss(logits, labels, multi_label=False):
    """The classification loss of a batch of logits: softmax or per-tag sigmoid.

    * single-label, ``labels`` (B,) class codes: cross-entropy, averaged over the batch;
    * multi-label, ``labels`` (B, C) multi-hot: binary cross-entropy of each logit against its
      tag, averaged over tags and clips. Each tag is a separate yes/no question, so a clip can
      score high on several tags at once.

    Args:
        logits: (B, C) float tensor.
        labels: (B,) integer tensor in ``[0, C)``, or (B, C) tensor of 0s and 1s.
        multi_label: Which of the two forms ``labels`` has.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: If ``labels`` does not fit ``logits`` (see :func:`check_class_labels`).

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    labels = check_class_labels(labels, logits.shape[0], logits.shape[1], multi_label, logits.device)
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)


def proxy_nca_loss(embeddings, labels, proxies, softmax_scale=1.0, multi_label=False):
    """Proxy-NCA (Movshovitz-Attias et al., 2017): pull each clip towards its class's proxy.

    With ``d(e, p)`` the squared distance between the normalised vectors (see
    :func:`proxy_nca_logits`), a clip of class ``y`` costs the NCA term

        -log( exp(-s d(e, p_y)) / sum_c exp(-s d(e, p_c)) ),

    the cross-entropy of :func:`proxy_nca_logits`, averaged over the batch. A single learned
    proxy stands for all of its class, so each clip is compared with C proxies rather than
    with the B - 1 other clips of the batch, and no triplets need to be mined.

    Multi-label (tags): a clip has several positive tags, which should not compete with one
    another. For each positive tag ``t`` of a clip the denominator holds ``t`` itself and the
    clip's *negative* tags only,

        -log( exp(-s d(e, p_t)) / (exp(-s d(e, p_t)) + sum_{u negative} exp(-s d(e, p_u))) ),

    averaged over the clip's positive tags, then over the clips that have at least one. (A clip
    with every tag positive has nothing to push away: its terms are 0.)

    Args:
        embeddings: (B, D) float tensor.
        labels: (B,) integer class codes in ``[0, C)``, or (B, C) multi-hot 0/1 when
            ``multi_label``.
        proxies: (C, D) float tensor.
        softmax_scale: s > 0.
        multi_label: Which of the two forms ``labels`` has.

    Returns:
        A scalar tensor (0, still differentiable, when no clip has a positive tag).

    Raises:
        ValueError: As :func:`proxy_nca_logits` and :func:`check_class_labels`.

    Notebook 05 trains with the module, :class:`ProxyNCALoss`, which computes this loss.
    """
    logits = proxy_nca_logits(embeddings, proxies, softmax_scale)
    return _proxy_nca_loss_of_logits(logits, labels, multi_label)


def _proxy_nca_loss_of_logits(logits, labels, multi_label):
    """:func:`proxy_nca_loss` from its (B, C) logits, so a caller can reuse them."""
    if not multi_label:
        return logits_loss(logits, labels)
    positive = check_class_labels(labels, *logits.shape, True, logits.device).bool()
    return _mean_over_positive_tags(_positive_tag_nca_terms(logits, positive), positive)


def _positive_tag_nca_terms(logits, positive):
    """(B, C) NCA terms of each positive tag against the clip's negative tags (0 elsewhere).

    The negatives' log-sum-exp is taken with the positives filled with the lowest finite
    float, not -inf: a clip with no negative tag then gets a finite value that drops out of
    ``logaddexp``, where -inf would make the backward pass produce NaN.
    """
    lowest = torch.finfo(logits.dtype).min
    negatives = torch.logsumexp(logits.masked_fill(positive, lowest), dim=1, keepdim=True)
    terms = torch.logaddexp(logits, negatives) - logits
    return terms.masked_fill(~positive, 0.0)


def _mean_over_positive_tags(terms, positive):
    """Mean over each clip's positive tags, then over the clips that have any."""
    tags_per_clip = positive.sum(dim=1)
    per_clip = terms.sum(dim=1) / tags_per_clip.clamp_min(1)
    return per_clip.sum() / torch.count_nonzero(tags_per_clip).clamp_min(1)


def check_class_labels(labels, n_samples, n_classes, multi_label, device=None):
    """``labels`` as a tensor on ``device``, checked against a batch and a number of classes.

    Args:
        labels: (B,) class codes in ``[0, n_classes)`` (any integer type), or, when
            ``multi_label``, a (B, n_classes) multi-hot array of 0s and 1s (integer, bool or
            float).
        n_samples: B.
        n_classes: C.
        multi_label: Which form to expect.
        device: Where to put the result (None: where it is).

    Returns:
        A (B,) int64 tensor, or a (B, C) tensor of the input's dtype.

    Raises:
        ValueError: If the shape, the type or a value is wrong.

    Taught in notebooks/05_classification_and_proxies.ipynb
    """
    if labels is None:
        raise ValueError("labels are required: pass (B,) class codes, or (B, C) multi-hot tags with multi_label=True.")
    labels = torch.as_tensor(labels, device=device)
    if multi_label:
        return _checked_multi_hot(labels, n_samples, n_classes)
    labels = _as_labels(labels, n_samples, device)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must hold integer class codes, got {labels.dtype}; convert "
            "with labels.long(), or pass multi_label=True for multi-hot tags."
        )
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < n_classes:
        raise ValueError(
            f"labels must lie in [0, {n_classes}), got values from "
            f"{int(labels.min())} to {int(labels.max())}: the loss has "
            f"{n_classes} classes; build it with n_classes = labels.max() + 1."
        )
    return labels.long()


def _checked_multi_hot(labels, n_samples, n_classes):
    if labels.shape != (n_samples, n_classes):
        raise ValueError(
            f"multi-hot labels must have shape (B, C) = ({n_samples}, "
            f"{n_classes}), got {tuple(labels.shape)}: one row per clip, one "
            "column per tag, as dataset.tags."
        )
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError(
            "multi-hot labels must hold only 0s and 1s; threshold or binarise them first, e.g. (labels > 0)."
        )
    return labels


# --------------------------------------------------------------------------------------------
# Modules that own their class vectors
# --------------------------------------------------------------------------------------------


class ClassificationLoss(torch.nn.Module):
    """A softmax (or per-tag sigmoid) classifier on top of the embeddings, as a loss.

    The module holds one weight vector per class, W of shape (C, D), learned together with the
    network (:func:`mlcourse.train.train` optimises the parameters of a module loss). Logits:

    * ``normalize=True``: ``cos(e, w_c) / temperature`` (:func:`normalized_softmax_logits`), the
      normalised softmax of Zhai & Wu (2019); the class vectors then live on the embedding
      sphere and act as proxies, so tags can be scored by cosine to :meth:`class_vectors`;
    * ``normalize=False``: ``e @ W.T + b``, an ordinary linear classifier (the paper's
      "classification without normalization"); ``temperature`` is not used.

    Single-label the loss is the cross-entropy of integer labels (B,); with ``multi_label``
    (tags) it is the binary cross-entropy of (B, C) multi-hot labels, averaged over tags and
    clips (:func:`logits_loss`). Normalised and single-label, it gives the same values and
    gradients as pytorch-metric-learning's ``NormalizedSoftmaxLoss`` with the same weights
    (which it stores transposed, as (D, C)).

    Args:
        n_classes: C >= 1.
        embedding_dim: D >= 1.
        normalize: Whether to normalise embeddings and weights (and have no bias).
        temperature: > 0.
        multi_label: Whether labels are (B, C) multi-hot tags instead of (B,) class codes.
        seed: Seeds the draw of the class vectors; None draws from torch's global generator.

    Attributes:
        weight: (C, D) parameter, drawn from a standard normal when normalised (the length
            does not matter), else with standard deviation ``1/sqrt(D)`` so that the first
            logits are of the size of one embedding coordinate.
        bias: (C,) parameter starting at 0, or None when normalised (a constant per class
            would let a class win without being near its vector).
        last_stats: ``loss`` and, single-label, ``accuracy`` (fraction of the batch whose
            highest logit is its class) or, multi-label, ``top_tag_hit`` (fraction of clips
            with a tag whose highest-scored tag is one of theirs). Empty before the first call.

    Raises:
        ValueError: If ``n_classes`` or ``embedding_dim`` < 1 or ``temperature <= 0``.

    Example:
        >>> loss_fn = ClassificationLoss(n_classes=3, embedding_dim=4)
        >>> loss = loss_fn(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> loss_fn.class_vectors().shape
        torch.Size([3, 4])

    Taught in notebooks/05_classification_and_proxies.ipynb
    """

    def __init__(self, n_classes, embedding_dim, normalize=True, temperature=0.05, multi_label=False, *, seed=None):
        super().__init__()
        _require_sizes(n_classes, embedding_dim)
        _require_positive("temperature", temperature)
        self.normalize = bool(normalize)
        self.temperature = temperature
        self.multi_label = bool(multi_label)
        scale = 1.0 if self.normalize else embedding_dim**-0.5
        weight = torch.randn(n_classes, embedding_dim, generator=seeded_generator(seed))
        self.weight = torch.nn.Parameter(weight * scale)
        self.bias = None if self.normalize else torch.nn.Parameter(torch.zeros(n_classes))
        self.last_stats = {}

    def logits(self, embeddings):
        """The (B, C) class scores of a batch, differentiable.

        Args:
            embeddings: (B, D) float tensor, on any device; the weights are cast to its dtype
                and device inside the graph, so their gradients still reach the parameters.

        Returns:
            (B, C) tensor of logits.

        Raises:
            ValueError: If ``embeddings`` is not a (B, D) float tensor with this module's D.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        _require_embeddings(embeddings, "embeddings")
        weight = self.weight.to(embeddings)
        if self.normalize:
            return normalized_softmax_logits(embeddings, weight, self.temperature)
        _require_class_vectors(embeddings, weight)
        return F.linear(embeddings, weight, self.bias.to(embeddings))

    def forward(self, embeddings, labels):
        """The loss of a batch (see the class docstring).

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer class codes, or (B, C) multi-hot tags when ``multi_label``.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If the embeddings or the labels do not fit (see
                :func:`check_class_labels`).

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        logits = self.logits(embeddings)
        loss = logits_loss(logits, labels, self.multi_label)
        self.last_stats = _class_vector_stats(loss, logits, labels, self.multi_label)
        return loss

    def class_vectors(self):
        """The (C, D) L2-normalised class weight vectors, detached: one point per class.

        Returns:
            (C, D) tensor; score tags of clips by ``F.normalize(e) @ class_vectors().T``.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        return F.normalize(self.weight.detach(), dim=1)

    def extra_repr(self):
        n_classes, embedding_dim = self.weight.shape
        return (
            f"n_classes={n_classes}, embedding_dim={embedding_dim}, "
            f"normalize={self.normalize}, temperature={self.temperature}, "
            f"multi_label={self.multi_label}"
        )


class ProxyNCALoss(torch.nn.Module):
    """:func:`proxy_nca_loss` with its proxies as learned parameters.

    One proxy per class, compared with the normalised embeddings by squared Euclidean
    distance of the normalised vectors. Single-label it gives the same values and gradients as
    pytorch-metric-learning's ``ProxyNCALoss`` with the same proxies; the multi-label form
    (each positive tag against the clip's negative tags) is defined in :func:`proxy_nca_loss`.

    Args:
        n_classes: C >= 1.
        embedding_dim: D >= 1.
        softmax_scale: s > 0.
        multi_label: Whether labels are (B, C) multi-hot tags instead of (B,) class codes.
        seed: Seeds the draw of the class vectors; None draws from torch's global generator.

    Attributes:
        proxies: (C, D) parameter, drawn from a standard normal (its length does not matter).
        last_stats: As in :class:`ClassificationLoss`.

    Raises:
        ValueError: If ``n_classes`` or ``embedding_dim`` < 1 or ``softmax_scale <= 0``.

    Example:
        >>> loss_fn = ProxyNCALoss(n_classes=3, embedding_dim=4, softmax_scale=8.0)
        >>> loss = loss_fn(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> round(float(loss_fn.class_vectors().norm(dim=1).min()), 4)
        1.0

    Taught in notebooks/05_classification_and_proxies.ipynb
    """

    def __init__(self, n_classes, embedding_dim, softmax_scale=1.0, multi_label=False, *, seed=None):
        super().__init__()
        _require_sizes(n_classes, embedding_dim)
        _require_positive("softmax_scale", softmax_scale)
        self.softmax_scale = softmax_scale
        self.multi_label = bool(multi_label)
        self.proxies = torch.nn.Parameter(torch.randn(n_classes, embedding_dim, generator=seeded_generator(seed)))
        self.last_stats = {}

    def logits(self, embeddings):
        """The (B, C) logits ``-s d(e, p_c)`` of a batch (:func:`proxy_nca_logits`).

        Args:
            embeddings: (B, D) float tensor, on any device (the proxies are cast to it).

        Returns:
            (B, C) tensor.

        Raises:
            ValueError: If ``embeddings`` is not a (B, D) float tensor with this module's D.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        _require_embeddings(embeddings, "embeddings")
        return proxy_nca_logits(embeddings, self.proxies.to(embeddings), self.softmax_scale)

    def forward(self, embeddings, labels):
        """The loss of a batch (see :func:`proxy_nca_loss`).

        Args:
            embeddings: (B, D) float tensor.
            labels: (B,) integer class codes, or (B, C) multi-hot tags when ``multi_label``.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: If the embeddings or the labels do not fit.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        logits = self.logits(embeddings)
        loss = _proxy_nca_loss_of_logits(logits, labels, self.multi_label)
        self.last_stats = _class_vector_stats(loss, logits, labels, self.multi_label)
        return loss

    def class_vectors(self):
        """The (C, D) L2-normalised proxies, detached.

        Returns:
            (C, D) tensor.

        Taught in notebooks/05_classification_and_proxies.ipynb
        """
        return F.normalize(self.proxies.detach(), dim=1)

    def extra_repr(self):
        n_classes, embedding_dim = self.proxies.shape
        return (
            f"n_classes={n_classes}, embedding_dim={embedding_dim}, "
            f"softmax_scale={self.softmax_scale}, multi_label={self.multi_label}"
        )


class AttributeClassificationLoss(torch.nn.Module):
    """A normalised softmax (or per-tag sigmoid) whose class vectors are made from descriptions.

    :class:`ClassificationLoss` learns one free vector per class, so a class without training
    clips has no vector. Here each class is described by a row of attributes (side
    information: for a genre its era, texture, metre and accompaniment; for an instrument
    family how it makes its sound), and one learned linear map, the *attribute encoder*, turns
    a description into a class vector: ``w_c = a_c @ V``, ``V`` holding one learned vector per
    attribute. The logits are ``cos(e, w_c) / temperature`` (:func:`normalized_softmax_logits`).
    After training, :meth:`class_vectors` encodes the description of any class, one that no
    training clip had included: zero-shot tagging (Lampert et al., 2009; Frome et al., 2013;
    Choi et al., ISMIR 2019).

    With one-hot descriptions (the identity as ``attributes``), ``w_c`` is row ``c`` of ``V``
    and the loss is :class:`ClassificationLoss` with ``weight = V``.

    Args:
        attributes: (C, A) float tensor or array, one description per training class.
        embedding_dim: D >= 1.
        temperature: > 0.
        multi_label: Whether labels are (B, C) multi-hot tags instead of (B,) class codes.
        seed: Seeds the draw of the attribute vectors; None draws from torch's global generator.

    Attributes:
        attribute_vectors: (A, D) parameter ``V``, one vector per attribute, drawn from a
            standard normal.
        attributes: (C, A) buffer, the training classes' descriptions.
        last_stats: As in :class:`ClassificationLoss`.

    Raises:
        ValueError: If ``attributes`` is not a finite (C, A) array, a description is all zeros
            (its class vector would have no direction), ``embedding_dim < 1`` or
            ``temperature <= 0``.

    Example:
        >>> loss_fn = AttributeClassificationLoss(torch.eye(3), embedding_dim=4)
        >>> loss = loss_fn(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> loss_fn.class_vectors(torch.tensor([[0.5, 0.5, 0.0]])).shape
        torch.Size([1, 4])

    Taught in notebooks/07_cross_modal.ipynb
    """

    def __init__(self, attributes, embedding_dim, temperature=0.1, multi_label=False, *, seed=None):
        super().__init__()
        attributes = _checked_attributes(attributes)
        require_positive_int(embedding_dim, "embedding_dim")
        _require_positive("temperature", temperature)
        self.temperature = temperature
        self.multi_label = bool(multi_label)
        self.register_buffer("attributes", attributes.float())
        vectors = torch.randn(attributes.shape[1], embedding_dim, generator=seeded_generator(seed))
        self.attribute_vectors = torch.nn.Parameter(vectors)
        self.last_stats = {}

    def encode(self, attributes):
        """The (C, D) class vectors ``attributes @ V`` of (C, A) descriptions: not normalised, differentiable."""
        attributes = _checked_attributes(attributes, self.attribute_vectors.shape[0])
        return attributes.to(self.attribute_vectors) @ self.attribute_vectors

    def logits(self, embeddings):
        """The (B, C) logits ``cos(e, a_c V) / temperature`` of the training classes.

        Args:
            embeddings: (B, D) float tensor, on any device (the class vectors are cast to it
                inside the graph, so their gradients still reach ``V``).

        Returns:
            (B, C) tensor of logits.

        Raises:
            ValueError: If ``embeddings`` is not a (B, D) float tensor with this module's D.

        Taught in notebooks/07_cross_modal.ipynb
        """
        _require_embeddings(embeddings, "embeddings")
        weight = self.encode(self.attributes).to(embeddings)
        return normalized_softmax_logits(embeddings, weight, self.temperature)

    def forward(self, embeddings, labels):
        """The loss of a batch, as :meth:`ClassificationLoss.forward`.

        Taught in notebooks/07_cross_modal.ipynb
        """
        logits = self.logits(embeddings)
        loss = logits_loss(logits, labels, self.multi_label)
        self.last_stats = _class_vector_stats(loss, logits, labels, self.multi_label)
        return loss

    def class_vectors(self, attributes=None):
        """The L2-normalised class vectors of descriptions, detached.

        Args:
            attributes: (C', A) descriptions of any classes, classes no training clip had
                included; None gives the training classes' vectors.

        Returns:
            (C', D) tensor; score tags of clips by ``F.normalize(e) @ class_vectors(...).T``.

        Raises:
            ValueError: If ``attributes`` is not a finite (C', A) array with this module's A,
                or a description is all zeros.

        Taught in notebooks/07_cross_modal.ipynb
        """
        attributes = self.attributes if attributes is None else attributes
        with torch.no_grad():
            return F.normalize(self.encode(attributes), dim=1)

    def extra_repr(self):
        n_classes, n_attributes = self.attributes.shape
        return (
            f"n_classes={n_classes}, n_attributes={n_attributes}, "
            f"embedding_dim={self.attribute_vectors.shape[1]}, temperature={self.temperature}, "
            f"multi_label={self.multi_label}"
        )


@torch.no_grad()
def _class_vector_stats(loss, logits, labels, multi_label):
    """``last_stats`` of the class-vector losses: the loss and how often the top class is right.

    The labels have been checked by the loss already.
    """
    labels = torch.as_tensor(labels, device=logits.device)
    top = logits.argmax(dim=1)
    if not multi_label:
        return {"loss": loss.item(), "accuracy": (top == labels).double().mean().item()}
    has_tag = labels.bool().any(dim=1)
    hits = labels.bool().gather(1, top[:, None]).squeeze(1) & has_tag
    return {"loss": loss.item(), "top_tag_hit": hits.sum().item() / max(int(has_tag.sum()), 1)}


def _require_sizes(n_classes, embedding_dim):
    for name, value in (("n_classes", n_classes), ("embedding_dim", embedding_dim)):
        require_positive_int(value, name)


def _require_class_vectors(embeddings, vectors):
    """Checks (B, D) embeddings against (C, D) class vectors of the same dtype and device."""
    _require_embeddings(embeddings, "embeddings")
    _require_embeddings(vectors, "class vectors")
    if vectors.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"the embeddings have dimension {embeddings.shape[1]} but the class "
            f"vectors {vectors.shape[1]}: build the loss with embedding_dim="
            f"{embeddings.shape[1]}, the model's output size."
        )
    if vectors.dtype != embeddings.dtype or vectors.device != embeddings.device:
        raise ValueError(
            f"embeddings ({embeddings.dtype}, {embeddings.device}) and class "
            f"vectors ({vectors.dtype}, {vectors.device}) differ: move one with "
            ".to(the other)."
        )


def _checked_attributes(attributes, n_attributes=None):
    """(C, A) finite float descriptions as a tensor, each with some non-zero attribute."""
    attributes = attributes if isinstance(attributes, torch.Tensor) else torch.tensor(np.asarray(attributes))
    if not attributes.is_floating_point():
        attributes = attributes.double()
    if attributes.ndim != 2 or attributes.shape[0] < 1 or attributes.shape[1] < 1:
        raise ValueError(
            f"attributes must be a (C, A) array, one description per class, got shape {tuple(attributes.shape)}"
        )
    if n_attributes is not None and attributes.shape[1] != n_attributes:
        raise ValueError(
            f"attributes must have the {n_attributes} columns the loss was trained with, got "
            f"{attributes.shape[1]}: describe new classes with the same attributes, in the same order."
        )
    if not torch.isfinite(attributes).all():
        raise ValueError("attributes must be finite: fill missing values (e.g. with 0) first.")
    empty = torch.nonzero((attributes == 0).all(dim=1)).flatten()
    if len(empty):
        raise ValueError(
            f"the descriptions in rows {empty.tolist()} are all zeros: a class needs an attribute to have a direction."
        )
    return attributes
