"""Networks that map a clip's log-mel spectrogram to an embedding.

A deep metric is a network ``f`` whose outputs are compared with a plain distance:
``d(x, x') = ||f(x) - f(x')||``. The network has two parts:

- a **backbone**, a small convolutional network that turns a (128 mel bands x 130 frames)
  log-mel spectrogram into a feature vector: four blocks of 3x3 convolution, batch
  normalisation, ReLU and 2x2 max pooling, then an average over what is left of time and
  frequency, so that where a sound happens in the clip matters less than what it is. The
  first convolution steps by 2 in both directions, which quarters the work of every later
  layer;
- an **embedding head**, one linear layer to the embedding's size, optionally followed by
  L2 normalisation, which puts every embedding on the unit sphere: distances then only
  depend on directions, and a margin means the same thing everywhere.

The default widths keep a training epoch of the workshop dataset to tens of seconds on a
laptop CPU.

For disentangled embeddings, :class:`ConceptMasks` holds one mask per concept (genre, mood,
...), as in Conditional Similarity Networks (Veit et al., 2017): a concept compares clips
only on the dimensions its mask selects, either a fixed block of its own or a learned,
non-negative weighting of all dimensions.

Self-supervised training (Bretan & Heck, 2019) adds two small judges that look at embeddings:
:class:`Discriminator`, a multi-layer perceptron that scores one vector (real Gaussian sample
or an embedding?), and :class:`AdjacencyDiscriminator`, which scores a pair (adjacent clips or
not?).

Taught in notebooks/03_siamese_contrastive.ipynb (the network),
notebooks/06_disentangled.ipynb (the masks) and notebooks/08_self_supervised.ipynb (the
discriminators)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .data.features import N_FRAMES, N_MELS

DEFAULT_WIDTHS = (16, 32, 64, 128)


class ConvBackbone(nn.Module):
    """Convolution blocks and global average pooling: (B, 128, 130) -> (B, widths[-1]).

    The input is first standardised by a batch-normalisation layer with one channel, so the
    network learns the level and spread of the decibel values itself.

    Args:
        widths: Output channels of the convolution blocks; each block halves time and
            frequency with 2x2 max pooling, and the first one halves them once more with its
            stride, so four blocks leave 4 x 4 of the 128 x 130 input.

    Attributes:
        output_size: Length of the feature vector, ``widths[-1]``.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """

    def __init__(self, widths=DEFAULT_WIDTHS):
        super().__init__()
        if len(widths) == 0 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty sequence of positive ints, got {widths!r}")
        self.input_norm = nn.BatchNorm2d(1)
        blocks, in_channels, stride = [], 1, 2
        for width in widths:
            blocks += [
                nn.Conv2d(in_channels, width, kernel_size=3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_channels, stride = width, 1
        self.blocks = nn.Sequential(*blocks)
        self.output_size = int(widths[-1])

    def forward(self, logmel):
        """Args: logmel: (B, 128, 130) tensor, any float dtype. Returns: (B, output_size)."""
        if logmel.dim() != 3:
            raise ValueError(
                f"expected log-mel spectrograms of shape (batch, {N_MELS}, {N_FRAMES}), got "
                f"{tuple(logmel.shape)}: index a batch of clips, e.g. dataset.logmel[rows]"
            )
        # Features are stored in float16; the first layer needs the network's own dtype.
        x = logmel.unsqueeze(1).to(self.input_norm.weight.dtype)
        x = self.blocks(self.input_norm(x))
        return x.mean(dim=(2, 3))


class EmbeddingNet(nn.Module):
    """Backbone + linear embedding head (+ optional L2 normalisation).

    Args:
        embedding_dim: Size of the embedding.
        normalize: Divide each embedding by its L2 norm (embeddings on the unit sphere).
        widths: Channels of the backbone's convolution blocks.

    Example:
        >>> net = EmbeddingNet(embedding_dim=32)
        >>> net(torch.zeros(2, 128, 130)).shape
        torch.Size([2, 32])

    Taught in notebooks/03_siamese_contrastive.ipynb
    """

    def __init__(self, embedding_dim=128, normalize=True, widths=DEFAULT_WIDTHS):
        super().__init__()
        if int(embedding_dim) < 1:
            raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
        self.backbone = ConvBackbone(widths)
        self.head = nn.Linear(self.backbone.output_size, int(embedding_dim))
        self.normalize = bool(normalize)

    def forward(self, logmel):
        """Args: logmel: (B, 128, 130) tensor. Returns: (B, embedding_dim) embeddings."""
        embeddings = self.head(self.backbone(logmel))
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


def count_parameters(model):
    """Number of trainable parameters of a model.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Discriminator(nn.Module):
    """A small multi-layer perceptron that scores vectors: (B, in_features) -> (B,) logits.

    Args:
        in_features: Length of the vectors it scores.
        hidden: Width of each hidden layer.
        n_hidden: Number of hidden layers (Linear + LeakyReLU each).

    Example:
        >>> Discriminator(8)(torch.zeros(3, 8)).shape
        torch.Size([3])

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, in_features, hidden=64, n_hidden=2):
        super().__init__()
        if int(in_features) < 1 or int(hidden) < 1 or int(n_hidden) < 0:
            raise ValueError(f"need in_features >= 1, hidden >= 1 and n_hidden >= 0, got "
                             f"{in_features!r}, {hidden!r}, {n_hidden!r}")
        layers, width = [], int(in_features)
        for _ in range(int(n_hidden)):
            layers += [nn.Linear(width, int(hidden)), nn.LeakyReLU(0.2)]
            width = int(hidden)
        self.layers = nn.Sequential(*layers, nn.Linear(width, 1))
        self.in_features = int(in_features)

    def forward(self, vectors):
        """Args: vectors: (B, in_features). Returns: (B,) logits (> 0 means "real" / "yes")."""
        if vectors.dim() != 2 or vectors.shape[1] != self.in_features:
            raise ValueError(f"expected vectors of shape (batch, {self.in_features}), got {tuple(vectors.shape)}")
        return self.layers(vectors).squeeze(1)


class AdjacencyDiscriminator(nn.Module):
    """Says whether two clips are adjacent from their embeddings: (B, D), (B, D) -> (B,) logits.

    It sees the pair as ``[a * b, |a - b|]``, which does not depend on the order of the two
    clips, through a *small* :class:`Discriminator`: Bretan & Heck keep this judge weak on
    purpose, so that the embedding network has to do the work of telling related clips from
    unrelated ones.

    Args:
        embedding_dim: D, size of the embeddings.
        hidden: Width of the discriminator's one hidden layer.

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, embedding_dim, hidden=32):
        super().__init__()
        self.judge = Discriminator(2 * int(embedding_dim), hidden=hidden, n_hidden=1)

    def forward(self, first, second):
        """Args: first, second: (B, D) embeddings. Returns: (B,) logits of "adjacent"."""
        if first.shape != second.shape:
            raise ValueError(f"the two embeddings differ in shape: {tuple(first.shape)} vs {tuple(second.shape)}")
        return self.judge(torch.cat([first * second, (first - second).abs()], dim=1))


class ConceptMasks(nn.Module):
    """One mask per concept over the embedding's dimensions (Conditional Similarity Networks).

    A concept ``s`` compares two clips by the masked embeddings ``f(x) * m_s``, so each concept
    has a sub-space of its own: the embedding is *disentangled*.

    * Fixed masks (``learned=False``) are disjoint blocks of equal size, as 0/1 vectors: with
      4 concepts and 256 dimensions, concept ``i`` owns dimensions ``[64 i, 64 (i + 1))``.
    * Learned masks (``learned=True``) are parameters trained with the network, as in CSN:
      the stored weights start at the fixed blocks plus Gaussian noise of standard deviation
      ``noise``, and the mask is their ReLU, so a mask is never negative (a negative weight
      would flip a dimension, not down-weight it). Weights that fall below zero stop getting
      gradients, which is how the masks can become sparse.

    Args:
        concepts: Names of the concepts, in the order of their blocks, e.g.
            ``mlcourse.data.CONCEPTS``.
        embedding_dim: D, size of the complete embedding; for fixed masks a multiple of the
            number of concepts.
        learned: Train the masks rather than fixing them.
        noise: Standard deviation of the initial noise of learned masks (>= 0).

    Raises:
        ValueError: If ``concepts`` is empty or repeats a name, ``embedding_dim`` is not
            positive, or (fixed masks) it is not divisible by the number of concepts.

    Example:
        >>> masks = ConceptMasks(["genre", "mood"], embedding_dim=4)
        >>> masks.mask("mood")
        tensor([0., 0., 1., 1.])

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(self, concepts, embedding_dim, learned=False, *, noise=0.1):
        super().__init__()
        self.concepts = _checked_concepts(concepts)
        self.embedding_dim, self.learned = int(embedding_dim), bool(learned)
        n_concepts = len(self.concepts)
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
        if self.embedding_dim % n_concepts and not self.learned:
            raise ValueError(
                f"fixed masks split embedding_dim={self.embedding_dim} into {n_concepts} equal "
                f"blocks: choose a multiple of {n_concepts}, or use learned=True"
            )
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        # Learned masks with a D that is not a multiple of S start from blocks of D // S.
        self.block_size = self.embedding_dim // n_concepts
        owner = torch.arange(self.embedding_dim) // max(self.block_size, 1)
        blocks = (owner[None, :] == torch.arange(n_concepts)[:, None]).float()
        if self.learned:
            self.weights = nn.Parameter(blocks + noise * torch.randn_like(blocks))
        else:
            self.register_buffer("fixed_masks", blocks)

    def masks(self):
        """All masks: (S, D) tensor, row ``i`` for ``concepts[i]``, entries >= 0.

        Taught in notebooks/06_disentangled.ipynb
        """
        return F.relu(self.weights) if self.learned else self.fixed_masks

    def mask(self, concept):
        """The mask of one concept: (D,) tensor (differentiable for learned masks).

        Raises:
            ValueError: If the concept is unknown.

        Taught in notebooks/06_disentangled.ipynb
        """
        return self.masks()[self.index(concept)]

    def index(self, concept):
        """Position of ``concept`` in :attr:`concepts` (its row of :meth:`masks`).

        Raises:
            ValueError: If the concept is unknown; the message lists the known ones.

        Taught in notebooks/06_disentangled.ipynb
        """
        if concept not in self.concepts:
            raise ValueError(f"unknown concept {concept!r}: the masks know {self.concepts}")
        return self.concepts.index(concept)

    def block(self, concept):
        """The dimensions a fixed mask selects, as a slice: ``embeddings[:, masks.block(c)]``.

        Raises:
            ValueError: If the masks are learned (they have no block), or the concept is
                unknown.

        Taught in notebooks/06_disentangled.ipynb
        """
        if self.learned:
            raise ValueError("learned masks weight every dimension and have no block: "
                             "use forward(embeddings, concept) or mask(concept)")
        start = self.index(concept) * self.block_size
        return slice(start, start + self.block_size)

    def forward(self, embeddings, concept):
        """The embeddings seen by one concept: ``embeddings * mask(concept)``.

        Args:
            embeddings: (B, D) float tensor.
            concept: One of :attr:`concepts`.

        Returns:
            (B, D) tensor in the dtype of ``embeddings``, zero (fixed masks) or down-weighted
            (learned masks) outside the concept's dimensions.

        Raises:
            ValueError: If ``embeddings`` is not (B, D), or the concept is unknown.

        Taught in notebooks/06_disentangled.ipynb
        """
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(f"expected embeddings of shape (batch, {self.embedding_dim}), got "
                             f"{tuple(embeddings.shape)}")
        return embeddings * self.mask(concept).to(embeddings.dtype)

    def extra_repr(self):
        return (f"concepts={self.concepts}, embedding_dim={self.embedding_dim}, "
                f"learned={self.learned}")


def _checked_concepts(concepts):
    """The concept names as a list of distinct strings (ValueError otherwise)."""
    if isinstance(concepts, str):
        raise ValueError(f"concepts must be a sequence of names, got the string {concepts!r}: "
                         f"wrap it in a list")
    concepts = list(concepts)
    if not concepts or len(set(concepts)) != len(concepts):
        raise ValueError(f"concepts must be distinct names, at least one, got {concepts!r}")
    return concepts
