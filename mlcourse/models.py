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

For version identification, :class:`ChromaNet` embeds a chroma sequence with convolutions
that wrap around the 12 pitch classes, and pools over them at the end, so that transposing the
music (rolling its pitch classes) cannot change the embedding; :class:`RecordingNet` embeds a
whole recording, given as a set of clips, as the mean of its clips' embeddings.

For audio-to-score retrieval, :class:`CrossModalNet` holds two encoders, one per modality,
that embed into one shared space.

Taught in notebooks/03_siamese_contrastive.ipynb (the network),
notebooks/06_disentangled.ipynb (the masks), notebooks/07_cross_modal.ipynb (the two
encoders), notebooks/08_self_supervised.ipynb (the discriminators) and
notebooks/09_applications.ipynb (the chroma and recording networks)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .checks import seeded_generator
from .data.features import N_CHROMA, N_FRAMES, N_MELS

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
        # "Channels last" (each pixel's channels side by side in memory) is the layout the CPU's
        # convolution library works in; keeping weights and inputs so saves it converting both
        # at every call: training steps about 1.5 times as fast on a CPU. Same numbers.
        self.blocks = nn.Sequential(*blocks).to(memory_format=torch.channels_last)
        self.widths = tuple(int(w) for w in widths)
        self.output_size = self.widths[-1]

    def forward(self, logmel):
        """Args: logmel: (B, 128, 130) tensor, any float dtype. Returns: (B, output_size)."""
        if logmel.dim() != 3:
            raise ValueError(
                f"expected log-mel spectrograms of shape (batch, {N_MELS}, {N_FRAMES}), got "
                f"{tuple(logmel.shape)}: index a batch of clips, e.g. dataset.logmel[rows]"
            )
        # Features are stored in float16; the first layer needs the network's own dtype.
        x = logmel.unsqueeze(1).to(self.input_norm.weight.dtype)
        x = self.input_norm(x).contiguous(memory_format=torch.channels_last)
        x = self.blocks(x)
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


CHROMA_WIDTHS = (16, 32, 64)


class ChromaNet(nn.Module):
    """An embedding of chroma sequences, invariant to transposition or not: (B, 12, T) -> (B, D).

    Each block is a convolution, batch normalisation, ReLU and a max pooling that halves time
    (never pitch). The convolutions wrap around the pitch axis (circular padding: B is next
    to C), and the first one spans the whole octave, so a block's output at pitch class k
    sees the music relative to k. Rolling the input's pitch classes by s semitones rolls
    every block's output by s (the blocks are *equivariant* to transposition). At the end,
    the 12 pitch positions are pooled over time (a mean, or a maximum, which also ignores
    *where* in the clip a pattern occurs), then

    * ``invariant=True``: a maximum over the 12 positions removes the roll: the embedding of
      a transposed clip is exactly that of the clip, so no training step is spent learning key
      invariance, as in MOVE (Yesiler et al., 2020). For version identification.
    * ``invariant=False``: the 12 positions are kept side by side, so the key matters. For
      matching audio to its own score, where a transposed score is a wrong answer.

    Args:
        embedding_dim: Size of the embedding.
        widths: Channels of the convolution blocks.
        normalize: Divide each embedding by its L2 norm.
        invariant: Pool over the pitch positions (transposition-invariant) or keep them.
        time_pooling: ``"mean"`` or ``"max"`` over time.

    Example:
        >>> net = ChromaNet(embedding_dim=8).eval()
        >>> chroma = torch.rand(2, 12, 130)
        >>> torch.allclose(net(chroma), net(torch.roll(chroma, 5, dims=1)), atol=1e-6)
        True

    Taught in notebooks/09_applications.ipynb
    """

    def __init__(self, embedding_dim=128, widths=CHROMA_WIDTHS, normalize=True, *, invariant=True, time_pooling="mean"):
        super().__init__()
        if int(embedding_dim) < 1 or len(widths) == 0 or any(int(w) < 1 for w in widths):
            raise ValueError(f"need embedding_dim >= 1 and positive widths, got {embedding_dim!r}, {widths!r}")
        if time_pooling not in ("mean", "max"):
            raise ValueError(f"time_pooling must be 'mean' or 'max', got {time_pooling!r}")
        self.invariant, self.time_pooling = bool(invariant), time_pooling
        self.kernel_heights = [N_CHROMA] + [3] * (len(widths) - 1)
        channels = [1, *map(int, widths)]
        self.convolutions = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], (height, 3), padding=(0, 1), bias=False)
            for i, height in enumerate(self.kernel_heights)
        )
        self.convolutions.to(memory_format=torch.channels_last)  # as in ConvBackbone: faster on a CPU
        self.norms = nn.ModuleList(nn.BatchNorm2d(width) for width in channels[1:])
        self.head = nn.Linear(channels[-1] * (1 if self.invariant else N_CHROMA), int(embedding_dim))
        self.normalize = bool(normalize)

    def forward(self, chroma):
        """Args: chroma: (B, 12, T) tensor, any float dtype. Returns: (B, embedding_dim)."""
        if chroma.dim() != 3 or chroma.shape[1] != N_CHROMA:
            raise ValueError(
                f"expected chroma of shape (batch, {N_CHROMA}, frames), got {tuple(chroma.shape)}: "
                "index a batch of clips, e.g. dataset.chroma[rows]"
            )
        x = chroma.unsqueeze(1).to(self.head.weight.dtype)  # (B, 1, 12, T)
        for convolution, norm, height in zip(self.convolutions, self.norms, self.kernel_heights):
            # Wrap the pitch axis, so that the output keeps 12 pitch positions (time: zero padding).
            x = F.pad(x, (0, 0, height // 2, (height - 1) // 2), mode="circular")
            x = x.contiguous(memory_format=torch.channels_last)
            x = F.max_pool2d(F.relu(norm(convolution(x))), (1, 2))
        x = x.mean(dim=3) if self.time_pooling == "mean" else x.amax(dim=3)  # (B, C, 12)
        embeddings = self.head(x.amax(dim=2) if self.invariant else x.flatten(1))
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


class RecordingNet(nn.Module):
    """Embeds a recording given as a set of clips: the mean of its clips' embeddings.

    A recording is compared with another as a whole, as version identification systems do,
    so it is also trained as a whole: the loss sees the (normalised) mean of the clips'
    embeddings, exactly what retrieval will compare.

    Args:
        clip_net: The network that embeds one clip, e.g. :class:`ChromaNet`.

    Example:
        >>> net = RecordingNet(ChromaNet(embedding_dim=8)).eval()
        >>> net(torch.rand(3, 4, 12, 130)).shape      # 3 recordings of 4 clips each
        torch.Size([3, 8])

    Taught in notebooks/09_applications.ipynb
    """

    def __init__(self, clip_net):
        super().__init__()
        self.clip_net = clip_net

    def forward(self, clips):
        """Args: clips: (B, C, ...) tensor, C clips per recording. Returns: (B, D), unit length."""
        if clips.dim() < 3:
            raise ValueError(f"expected recordings of shape (batch, clips, ...), got {tuple(clips.shape)}")
        batch, n_clips = clips.shape[:2]
        embeddings = self.clip_net(clips.reshape(batch * n_clips, *clips.shape[2:]))
        return F.normalize(embeddings.reshape(batch, n_clips, -1).mean(dim=1), dim=1)


class ResidualMLP(nn.Module):
    """A feature vector plus a learned correction: ``x + W2 relu(W1 x + b1) + b2``.

    The correction's last layer starts at zero, so the network starts as the identity: an
    embedding learned on top of a good hand-made feature starts from that feature, and
    training only has to find what to change.

    Args:
        features: Length of the input vectors (and of the embeddings).
        hidden: Width of the hidden layer.

    Example:
        >>> net = ResidualMLP(6)
        >>> x = torch.randn(2, 6)
        >>> torch.equal(net(x), x)
        True

    Taught in notebooks/09_applications.ipynb
    """

    def __init__(self, features, hidden=128):
        super().__init__()
        if int(features) < 1 or int(hidden) < 1:
            raise ValueError(f"features and hidden must be positive ints, got {features!r}, {hidden!r}")
        self.expand = nn.Linear(int(features), int(hidden))
        self.correct = nn.Linear(int(hidden), int(features))
        nn.init.zeros_(self.correct.weight)
        nn.init.zeros_(self.correct.bias)

    def forward(self, vectors):
        """Args: vectors: (B, features) tensor. Returns: (B, features)."""
        vectors = vectors.to(self.expand.weight.dtype)
        return vectors + self.correct(F.relu(self.expand(vectors)))


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
            raise ValueError(
                f"need in_features >= 1, hidden >= 1 and n_hidden >= 0, got {in_features!r}, {hidden!r}, {n_hidden!r}"
            )
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
    * Learned masks (``learned=True``) are parameters trained with the network, as in CSN.
      With ``start="blocks"`` the stored weights start at the fixed blocks plus Gaussian noise
      of standard deviation ``noise``; with ``start="random"`` every weight starts uniform in
      [0, 1), so no concept owns a dimension at first. The mask is their ReLU, so a mask is
      never negative (a negative weight would flip a dimension, not down-weight it). Weights
      that fall below zero stop getting gradients, which is how the masks can become sparse.

    Args:
        concepts: Names of the concepts, in the order of their blocks, e.g.
            ``mlcourse.data.CONCEPTS``.
        embedding_dim: D, size of the complete embedding; for fixed masks a multiple of the
            number of concepts.
        learned: Train the masks rather than fixing them.
        start: Where learned masks start: ``"blocks"`` (the fixed blocks plus noise) or
            ``"random"`` (uniform in [0, 1)).
        noise: Standard deviation of the initial noise of learned masks started at the blocks
            (>= 0).
        seed: Seeds that noise or draw; None draws from torch's global generator.

    Raises:
        ValueError: If ``concepts`` is empty or repeats a name, ``embedding_dim`` is not
            positive, (fixed masks) it is not divisible by the number of concepts, or ``start``
            is unknown, or "random" for fixed masks.

    Example:
        >>> masks = ConceptMasks(["genre", "mood"], embedding_dim=4)
        >>> masks.mask("mood")
        tensor([0., 0., 1., 1.])

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(self, concepts, embedding_dim, learned=False, *, start="blocks", noise=0.1, seed=None):
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
        if start not in ("blocks", "random") or start == "random" and not self.learned:
            raise ValueError(f'start must be "blocks", or "random" for learned masks; got {start!r}')
        # Learned masks with a D that is not a multiple of S start from blocks of D // S.
        self.block_size = self.embedding_dim // n_concepts
        owner = torch.arange(self.embedding_dim) // max(self.block_size, 1)
        blocks = (owner[None, :] == torch.arange(n_concepts)[:, None]).float()
        if self.learned and start == "random":
            self.weights = nn.Parameter(torch.rand(blocks.shape, generator=seeded_generator(seed)))
        elif self.learned:
            self.weights = nn.Parameter(blocks + noise * torch.randn(blocks.shape, generator=seeded_generator(seed)))
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
            raise ValueError(
                "learned masks weight every dimension and have no block: "
                "use forward(embeddings, concept) or mask(concept)"
            )
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
            raise ValueError(
                f"expected embeddings of shape (batch, {self.embedding_dim}), got {tuple(embeddings.shape)}"
            )
        return embeddings * self.mask(concept).to(embeddings.dtype)

    def extra_repr(self):
        return f"concepts={self.concepts}, embedding_dim={self.embedding_dim}, learned={self.learned}"


def _checked_concepts(concepts):
    """The concept names as a list of distinct strings (ValueError otherwise)."""
    if isinstance(concepts, str):
        raise ValueError(f"concepts must be a sequence of names, got the string {concepts!r}: wrap it in a list")
    concepts = list(concepts)
    if not concepts or len(set(concepts)) != len(concepts):
        raise ValueError(f"concepts must be distinct names, at least one, got {concepts!r}")
    return concepts


class CrossModalNet(nn.Module):
    """Two encoders, one for audio and one for scores, that embed into one shared space.

    Each encoder has weights of its own, and the embeddings are L2-normalised, so audio and
    score are compared by cosine similarity. Two kinds of input:

    * ``inputs="logmel"``: a piano roll (128 pitches x 130 frames) has the shape of a log-mel
      spectrogram (128 bands x 130 frames), so both encoders are an
      :class:`~mlcourse.models.EmbeddingNet`. What a pattern means differs between the two (a
      harmonic series in the spectrogram is a single row in the piano roll): the network has
      to learn how pitches sound.
    * ``inputs="chroma"``: both encoders read chroma, the audio's (``data.chroma``) and the
      folded piano roll (:func:`mlcourse.crossmodal.roll_chroma`), through a
      :class:`~mlcourse.models.ChromaNet` that keeps the key (``invariant=False``) and takes
      the maximum over time, so that where in the clip a pattern occurs matters little. The
      common ground is given; the network learns to compare.

    Args:
        embedding_dim: Size of the shared embedding.
        widths: Channels of each encoder's convolution blocks (None: the encoders' defaults).
        inputs: ``"logmel"`` (log-mels and piano rolls) or ``"chroma"`` (audio and score chroma).

    Attributes:
        audio: The audio encoder, (B, 128, 130) log-mels or (B, 12, 130) chroma ->
            (B, embedding_dim).
        score: The score encoder, (B, 128, 130) piano rolls (bool, uint8 or float) or
            (B, 12, 130) score chroma -> (B, embedding_dim).

    Example:
        >>> net = CrossModalNet(embedding_dim=16)
        >>> audio, score = net(torch.zeros(2, 128, 130), torch.zeros(2, 128, 130, dtype=torch.bool))
        >>> audio.shape, score.shape
        (torch.Size([2, 16]), torch.Size([2, 16]))

    Taught in notebooks/07_cross_modal.ipynb
    """

    def __init__(self, embedding_dim=64, widths=None, inputs="logmel"):
        super().__init__()
        if inputs == "logmel":
            self.audio, self.score = (
                EmbeddingNet(embedding_dim, normalize=True, widths=widths or DEFAULT_WIDTHS) for _ in range(2)
            )
        elif inputs == "chroma":
            self.audio, self.score = (
                ChromaNet(embedding_dim, widths or CHROMA_WIDTHS, invariant=False, time_pooling="max") for _ in range(2)
            )
        else:
            raise ValueError(f"inputs must be 'logmel' or 'chroma', got {inputs!r}")

    def embed_audio(self, audio):
        """Args: audio: (B, 128, 130) log-mels or (B, 12, 130) chroma. Returns: (B, embedding_dim) unit vectors."""
        return self.audio(audio)

    def embed_score(self, scores):
        """Args: scores: (B, 128, 130) piano rolls or (B, 12, 130) chroma. Returns: (B, embedding_dim) unit vectors."""
        # The encoders turn bool and uint8 rolls into the network's float dtype themselves.
        return self.score(scores)

    def forward(self, audio, scores):
        """Embed a batch of clips in both modalities: returns ``(audio, score)`` embeddings."""
        return self.embed_audio(audio), self.embed_score(scores)
