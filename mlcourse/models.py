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

Taught in notebooks/03_siamese_contrastive.ipynb
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
