"""Losses without labels: the positives come from the data.

* :func:`nt_xent_loss` (SimCLR, Chen et al., 2020): two augmented views of each clip find
  each other among the batch;
* :func:`info_nce_loss`: the same across two modalities, audio clip against its piano roll;
* :func:`adjacency_dssm_loss` (Bretan & Heck, 2019): a clip picks the clip that follows it
  out of a softmax over similarities ``1 / (1 + distance)``; :func:`easy_negative_fraction`
  measures how many of its negatives are already easy; :class:`AdjacencyDiscriminatorLoss`
  asks a small discriminator instead (A-AdjD).

Taught in notebooks/07_cross_modal.ipynb (InfoNCE) and notebooks/08_self_supervised.ipynb
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..distances import _require_embeddings, pairwise_distances
from ..models import AdjacencyDiscriminator
from ._checks import _require_positive

# Without labels, a batch can still say which items belong together: two augmented views of
# one clip (SimCLR), a clip and the clip that follows it in the recording (adjacency), an
# audio clip and its piano roll (cross-modal). In every loss below row i of one tensor is
# matched with row i of the other, and the other rows of the batch serve as the negatives.
#
# * nt_xent_loss (Chen et al., 2020, "SimCLR"): 2B views; each must find its partner among
#   the other 2B - 1.
# * info_nce_loss (van den Oord et al., 2018; symmetric as in CLIP, Radford et al., 2021):
#   two encoders, a (B, B) table of cosines; each query must find its key, and each key its
#   query.
# * adjacency_dssm_loss (Bretan & Heck, 2019): each clip must find the clip adjacent to it
#   among in-batch candidates, scored by the similarity 1 / (1 + distance).


def nt_xent_loss(first, second, temperature=0.1):
    """SimCLR's NT-Xent loss (normalised, temperature-scaled cross-entropy).

    Row i of ``first`` and row i of ``second`` are two views of the same item, e.g. two
    random augmentations of one clip. The 2B views are L2-normalised and compared by cosine,
    and each view must pick its partner out of the other 2B - 1 views of the batch::

        loss(a) = -log( exp(cos(z_a, z_partner) / t) / sum_{k != a} exp(cos(z_a, z_k) / t) )

    averaged over the 2B views ``a``. A view is never a candidate for itself (its cosine with
    itself is always 1: it would win for free); the 2B - 2 views of the other items are its
    negatives. No labels are needed: the batch itself says which views belong together.

    It equals pytorch-metric-learning's ``NTXentLoss(temperature)`` applied to
    ``cat([first, second])`` with labels ``cat([arange(B), arange(B)])``.

    Args:
        first: (B, D) float tensor, B >= 2: one view of each item.
        second: (B, D) float tensor of the same shape, dtype and device: the other view.
        temperature: t > 0. A small temperature sharpens the softmax, so that the negatives
            closest to a view weigh most.

    Returns:
        A scalar tensor, differentiable with respect to both inputs.

    Raises:
        ValueError: If the inputs are not two (B, D) float tensors of the same shape, dtype
            and device with B >= 2, or ``temperature <= 0``.

    Example:
        >>> views = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(float(nt_xent_loss(views, views, temperature=1.0)), 4)
        0.5514

    Here each view's partner has cosine 1 and the two other views cosine 0:
    ``-log(e / (e + 2))``.

    Taught in notebooks/08_self_supervised.ipynb
    """
    _require_positive("temperature", temperature)
    _require_matched_rows(first, second, "first", "second")
    batch_size = len(first)
    views = F.normalize(torch.cat([first, second]), dim=1)
    logits = views @ views.T / temperature
    # -inf on the diagonal: exp(-inf) = 0, so a view is never a candidate for itself.
    self_pairs = torch.eye(2 * batch_size, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    # The partner of view i (from `first`) is view B + i (from `second`), and the other way.
    items = torch.arange(batch_size, device=logits.device)
    partners = torch.cat([items + batch_size, items])
    return F.cross_entropy(logits, partners)


def info_nce_loss(queries, keys, temperature=0.1, symmetric=True):
    """The cross-modal InfoNCE loss, as in CLIP: row i of ``queries`` must find row i of ``keys``.

    The two tensors come from two different encoders, e.g. an audio encoder and a piano-roll
    encoder whose outputs live in one shared space. The logits are the (B, B) cosines over a
    temperature::

        logits[i, j] = cos(q_i, k_j) / t

    and the loss is the cross-entropy of each row with target i: each query must pick its own
    key out of the B keys of the batch (the B - 1 others are its negatives). With
    ``symmetric`` it is averaged with the same over the columns, where each key must pick its
    query out of the B queries, so that search works both ways (audio -> score and
    score -> audio).

    Args:
        queries: (B, D) float tensor, B >= 2, from the first encoder.
        keys: (B, D) float tensor of the same shape, dtype and device, from the second
            encoder; both encoders must project to the same dimension D.
        temperature: t > 0.
        symmetric: Whether to average both directions (True) or use queries -> keys only.

    Returns:
        A scalar tensor, differentiable with respect to both inputs.

    Raises:
        ValueError: If the inputs are not two (B, D) float tensors of the same shape, dtype
            and device with B >= 2, or ``temperature <= 0``.

    Example:
        >>> audio = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(float(info_nce_loss(audio, audio, temperature=1.0)), 4)
        0.3133

    Each query has cosine 1 with its key and 0 with the other: ``-log(e / (e + 1))``.

    Taught in notebooks/07_cross_modal.ipynb
    """
    _require_positive("temperature", temperature)
    _require_matched_rows(queries, keys, "queries", "keys")
    logits = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature
    targets = torch.arange(len(logits), device=logits.device)
    queries_to_keys = F.cross_entropy(logits, targets)
    if not symmetric:
        return queries_to_keys
    # The transposed table: row j holds the cosines of key j with every query.
    keys_to_queries = F.cross_entropy(logits.T, targets)
    return (queries_to_keys + keys_to_queries) / 2


def draw_negatives(batch_size, n_negatives, generator=None, exclude=None):
    """For each query of a batch, ``n_negatives`` distinct random negatives among the others.

    Every allowed candidate of a row (any other row of the batch that ``exclude`` does not
    rule out) gets a uniform random number, and the ``n_negatives`` smallest numbers win: a
    uniform draw without replacement, for all rows at once. The draw is made on the CPU, so
    that a seeded generator gives the same negatives whatever device the embeddings are on.

    Args:
        batch_size: B >= 2.
        n_negatives: n, with 1 <= n <= B - 1, and no more than the allowed candidates of any
            row.
        generator: A CPU ``torch.Generator`` (seed it for a reproducible draw), or None for
            torch's global random state.
        exclude: None, or a (B, B) bool tensor, True where column j must not be a negative of
            row i (e.g. two clips of the same recording). Row i itself is never a negative
            of query i.

    Returns:
        (B, n) int64 tensor on the CPU: row i holds the indices of query i's negatives.

    Raises:
        ValueError: If ``n_negatives`` is not an integer in [1, B - 1], some row has fewer
            than n allowed candidates, ``exclude`` is not a (B, B) bool tensor, or the
            generator is not a CPU generator.

    Example:
        >>> negatives = draw_negatives(5, 2, torch.Generator().manual_seed(0))
        >>> negatives.shape
        torch.Size([5, 2])

    Taught in notebooks/08_self_supervised.ipynb
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(
            f"batch_size must be an integer >= 2, got {batch_size!r}: the negatives are the other rows of the batch."
        )
    _require_negative_count(n_negatives, batch_size)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"the generator must be a CPU torch.Generator, got one on "
            f"{generator.device}: the negatives are drawn on the CPU."
        )
    allowed = _allowed_negatives(batch_size, exclude, "cpu")
    fewest = int(allowed.sum(dim=1).min())
    if fewest < n_negatives:
        raise ValueError(
            f"n_negatives={n_negatives} but exclude leaves some query only "
            f"{fewest} candidate negatives: lower n_negatives or exclude fewer "
            "pairs."
        )
    scores = torch.rand(batch_size, batch_size, generator=generator)
    # Uniform numbers are below 1, so a candidate scored 2 is never among the smallest.
    scores = scores.masked_fill(~allowed, 2.0)
    return scores.topk(n_negatives, dim=1, largest=False).indices


def adjacency_dssm_loss(queries, positives, n_negatives=None, scale=1.0, generator=None, exclude=None):
    """The adjacency DSSM loss (Bretan & Heck, 2019): find the clip that comes next.

    Self-supervision from the order of the music: clip ``i`` of the batch (the query) and the
    clip adjacent to it in the same recording (``positives[i]``) should be similar, more
    similar than the clips adjacent to the other queries, which serve as negatives (in-batch
    negatives). As in the DSSM of Huang et al. (2013), the similarity is turned into a
    probability with a softmax over the candidates. The similarity is::

        sim(x, y) = 1 / (1 + ||x - y||)

    which is 1 for identical embeddings and falls towards 0 with distance, and the probability
    that query i picks its positive out of its candidates is::

        P(p_i | q_i) = exp(scale * sim(q_i, p_i)) / sum_d exp(scale * sim(q_i, d))

    where d runs over the positive p_i and the negatives of query i.

    The paper's loss is ``-log prod_i P(p_i | q_i)``; this function returns its mean over the
    queries, ``-(1/B) sum_i log P(p_i | q_i)``, which is the same divided by B, so that the
    size of the gradient (and a good learning rate) does not depend on the batch size.

    The similarity lies in (0, 1], so with ``scale=1`` (the paper's form) the softmax cannot
    become confident: even a perfect embedding, each positive at distance 0 and every
    negative infinitely far, keeps a loss of ``log(1 + n / e)`` with n negatives per query.
    Most negatives soon become easy (see :func:`easy_negative_fraction`); a larger ``scale``
    (the smoothing factor gamma of Huang et al.'s DSSM) sharpens the softmax, so that the few
    hard ones weigh more.

    Args:
        queries: (B, D) float tensor, B >= 2: one embedding per query clip.
        positives: (B, D) float tensor of the same shape, dtype and device: row i embeds the
            clip adjacent to query i.
        n_negatives: None to use all B - 1 other rows of ``positives`` as negatives (less
            the excluded ones), or n in [1, B - 1] to draw n of them at random per query
            (:func:`draw_negatives`).
        scale: > 0, multiplies the similarities before the softmax.
        generator: A CPU ``torch.Generator`` for the draw of negatives (None: torch's global
            random state); not used when ``n_negatives`` is None.
        exclude: None, or a (B, B) bool tensor, True where ``positives[j]`` must not be a
            negative of query i (e.g. clips of the same recording); its diagonal is ignored,
            since the positive always counts.

    Returns:
        A scalar tensor, differentiable with respect to both inputs.

    Raises:
        ValueError: If the inputs are not two (B, D) float tensors of the same shape, dtype
            and device with B >= 2, ``scale <= 0``, or ``n_negatives`` or ``exclude`` is
            malformed (see :func:`draw_negatives`).

    Example:
        >>> queries = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> round(float(adjacency_dssm_loss(queries, queries)), 4)
        0.3609

    Each query is at distance 0 from its positive (similarity 1) and 5 from the other
    (similarity 1/6): ``-log(e / (e + e^(1/6)))``.

    Taught in notebooks/08_self_supervised.ipynb
    """
    _require_matched_rows(queries, positives, "queries", "positives")
    _require_positive("scale", scale)
    batch_size = len(queries)
    # similarities[i, j] = sim(q_i, p_j): the positive of query i sits on the diagonal.
    similarities = 1.0 / (1.0 + pairwise_distances(queries, positives))
    logits = scale * similarities
    rows = torch.arange(batch_size, device=queries.device)
    if n_negatives is None:
        # Every row of `positives` competes, except the excluded ones (-inf: probability 0);
        # the positive itself always does. The target of row i is column i.
        candidates = _allowed_negatives(batch_size, exclude, queries.device)
        candidates.fill_diagonal_(True)
        return F.cross_entropy(logits.masked_fill(~candidates, float("-inf")), rows)
    negatives = draw_negatives(batch_size, n_negatives, generator, exclude)
    # Each query's candidates: column 0 its positive, columns 1 to n its negatives.
    columns = torch.cat([rows[:, None], negatives.to(queries.device)], dim=1)
    return F.cross_entropy(logits.gather(1, columns), torch.zeros_like(rows))


@torch.no_grad()
def easy_negative_fraction(queries, positives, exclude=None):
    """The fraction of (query, negative) pairs whose negative is already the farther one.

    For query i and negative j (any other row of ``positives`` not excluded), the pair is
    *easy* when ``||q_i - p_j|| > ||q_i - p_i||``: the negative is already farther than the
    positive (equivalently, less similar under :func:`adjacency_dssm_loss`'s similarity).
    Bretan & Heck point out that such easy pairs dominate the batches of in-batch training;
    they teach the model little.

    Args:
        queries: (B, D) float tensor, B >= 2.
        positives: (B, D) float tensor of the same shape, dtype and device.
        exclude: None, or a (B, B) bool tensor of pairs not to count (as in
            :func:`adjacency_dssm_loss`).

    Returns:
        A float in [0, 1] (0 when ``exclude`` leaves no pair).

    Raises:
        ValueError: As :func:`adjacency_dssm_loss`.

    Example:
        >>> queries = torch.tensor([[0.0], [1.0], [10.0]])
        >>> easy_negative_fraction(queries, queries)
        1.0

    Taught in notebooks/08_self_supervised.ipynb
    """
    _require_matched_rows(queries, positives, "queries", "positives")
    distances = pairwise_distances(queries, positives)
    positive_distances = distances.diagonal()[:, None]
    negatives = _allowed_negatives(len(queries), exclude, queries.device)
    easy = (distances > positive_distances) & negatives
    return easy.sum().item() / max(negatives.sum().item(), 1)


class NTXentLoss(torch.nn.Module):
    """:func:`nt_xent_loss` as a module: ``loss_fn(first, second)``.

    Args:
        temperature: As in :func:`nt_xent_loss`, checked here.

    Example:
        >>> loss_fn = NTXentLoss(temperature=0.1)
        >>> loss = loss_fn(torch.randn(8, 4), torch.randn(8, 4))

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, temperature=0.1):
        super().__init__()
        _require_positive("temperature", temperature)
        self.temperature = temperature

    def forward(self, first, second):
        """The loss of a batch of view pairs; see :func:`nt_xent_loss`.

        Args:
            first: (B, D) float tensor, one view of each item.
            second: (B, D) float tensor, the other view.

        Returns:
            A scalar tensor.

        Taught in notebooks/08_self_supervised.ipynb
        """
        return nt_xent_loss(first, second, self.temperature)

    def extra_repr(self):
        return f"temperature={self.temperature}"


class InfoNCELoss(torch.nn.Module):
    """:func:`info_nce_loss` as a module: ``loss_fn(queries, keys)``.

    Args:
        temperature, symmetric: As in :func:`info_nce_loss`, checked here.

    Example:
        >>> loss_fn = InfoNCELoss(temperature=0.07)
        >>> loss = loss_fn(torch.randn(8, 4), torch.randn(8, 4))

    Taught in notebooks/07_cross_modal.ipynb
    """

    def __init__(self, temperature=0.1, symmetric=True):
        super().__init__()
        _require_positive("temperature", temperature)
        self.temperature = temperature
        self.symmetric = bool(symmetric)

    def forward(self, queries, keys):
        """The loss of a batch of matched pairs; see :func:`info_nce_loss`.

        Args:
            queries: (B, D) float tensor from the first encoder.
            keys: (B, D) float tensor from the second encoder; row i matches query i.

        Returns:
            A scalar tensor.

        Taught in notebooks/07_cross_modal.ipynb
        """
        return info_nce_loss(queries, keys, self.temperature, self.symmetric)

    def extra_repr(self):
        return f"temperature={self.temperature}, symmetric={self.symmetric}"


class AdjacencyDSSMLoss(torch.nn.Module):
    """:func:`adjacency_dssm_loss` as a module: ``loss_fn(queries, positives, exclude=None)``.

    The module holds its own CPU random generator for the draw of negatives, so a run is
    reproducible from ``seed`` alone, on any device, whatever else draws random numbers.

    Args:
        n_negatives: None (all other rows of the batch) or the number of negatives drawn per
            query, >= 1 (and at most B - 1, checked on each batch).
        scale: > 0, as in :func:`adjacency_dssm_loss`.
        seed: Seed of the module's generator.

    Attributes:
        generator: The CPU ``torch.Generator`` of the draws.
        last_stats: ``loss`` and ``easy_negative_fraction`` (see
            :func:`easy_negative_fraction`) of the last call. Empty before the first call.

    Raises:
        ValueError: If ``n_negatives`` is neither None nor an integer >= 1, or ``scale <= 0``.

    Example:
        >>> loss_fn = AdjacencyDSSMLoss(n_negatives=4, seed=0)
        >>> loss = loss_fn(torch.randn(8, 4), torch.randn(8, 4))
        >>> sorted(loss_fn.last_stats)
        ['easy_negative_fraction', 'loss']

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, n_negatives=None, scale=1.0, seed=0):
        super().__init__()
        if n_negatives is not None:
            _require_negative_count(n_negatives, None)
        _require_positive("scale", scale)
        self.n_negatives = n_negatives
        self.scale = scale
        self.generator = torch.Generator().manual_seed(seed)
        self.last_stats = {}

    def forward(self, queries, positives, exclude=None):
        """The loss of a batch of (query, adjacent clip) pairs; see :func:`adjacency_dssm_loss`.

        Args:
            queries: (B, D) float tensor.
            positives: (B, D) float tensor; row i embeds the clip adjacent to query i.
            exclude: None, or a (B, B) bool tensor of pairs not to use as negatives.

        Returns:
            A scalar tensor.

        Taught in notebooks/08_self_supervised.ipynb
        """
        loss = adjacency_dssm_loss(queries, positives, self.n_negatives, self.scale, self.generator, exclude)
        self.last_stats = {
            "loss": loss.item(),
            "easy_negative_fraction": easy_negative_fraction(queries, positives, exclude),
        }
        return loss

    def extra_repr(self):
        return f"n_negatives={self.n_negatives}, scale={self.scale}"


def _require_matched_rows(first, second, first_name, second_name):
    """Checks two (B, D) float tensors whose rows i belong together, with B >= 2."""
    _require_embeddings(first, first_name)
    _require_embeddings(second, second_name)
    if first.shape != second.shape or first.dtype != second.dtype or first.device != second.device:
        raise ValueError(
            f"{first_name} and {second_name} must have the same shape, dtype and "
            f"device, row i of one matching row i of the other; got "
            f"{tuple(first.shape)} {first.dtype} {first.device} and "
            f"{tuple(second.shape)} {second.dtype} {second.device}."
        )
    if len(first) < 2:
        raise ValueError(
            f"{first_name} and {second_name} need at least 2 rows, got "
            f"{len(first)}: the other rows of the batch are the negatives, and a "
            "batch of one item has none."
        )


def _require_negative_count(n_negatives, batch_size):
    """Checks ``n_negatives`` is an int in [1, batch_size - 1] (no upper bound if None)."""
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1:
        raise ValueError(f"n_negatives must be None or an integer >= 1, got {n_negatives!r}.")
    if batch_size is not None and n_negatives > batch_size - 1:
        raise ValueError(
            f"n_negatives={n_negatives} but a batch of {batch_size} has only "
            f"{batch_size - 1} other rows to draw negatives from: use "
            "n_negatives < B, or None for all of them."
        )


def _allowed_negatives(batch_size, exclude, device):
    """(B, B) bool on ``device``: True where column j may be a negative of row i.

    That is every j != i, less the pairs marked in ``exclude`` (None, or a (B, B) bool
    tensor).
    """
    allowed = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    if exclude is None:
        return allowed
    exclude = torch.as_tensor(exclude)
    if exclude.dtype != torch.bool or exclude.shape != (batch_size, batch_size):
        raise ValueError(
            f"exclude must be a ({batch_size}, {batch_size}) bool tensor, True "
            f"where column j must not be a negative of row i; got "
            f"{exclude.dtype} of shape {tuple(exclude.shape)}."
        )
    return allowed & ~exclude.to(device)


class AdjacencyDiscriminatorLoss(torch.nn.Module):
    """A-AdjD's adjacency loss: a small discriminator tells adjacent pairs from others.

    Each query is paired with its own positive (label 1) and with the positive of the previous
    query in the batch, the first with the last's (label 0: another recording, when the batch
    was drawn with one query per recording); the loss is the binary cross-entropy of the
    discriminator's logits. The discriminator is a parameter of this loss, so the training loop
    trains it together with the embedding network.

    Args:
        embedding_dim: D, size of the embeddings.
        hidden: Width of the discriminator's hidden layer (keep it small).

    Attributes:
        last_accuracy: Fraction of the last batch's pairs the discriminator got right.

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, embedding_dim, hidden=32):
        super().__init__()
        self.discriminator = AdjacencyDiscriminator(embedding_dim, hidden=hidden)
        self.last_accuracy = float("nan")

    def forward(self, queries, positives):
        if len(queries) < 2:
            raise ValueError("the adjacency discriminator needs at least 2 pairs per batch for negatives")
        negatives = positives.roll(1, dims=0)  # query i against query i-1's positive
        logits = torch.cat([self.discriminator(queries, positives), self.discriminator(queries, negatives)])
        targets = torch.cat([torch.ones(len(queries)), torch.zeros(len(queries))]).to(logits.device)
        self.last_accuracy = ((logits > 0).float() == targets).float().mean().item()
        return F.binary_cross_entropy_with_logits(logits, targets)
