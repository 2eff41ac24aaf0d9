"""Hashing: embeddings as short bit codes, compared by the Hamming distance.

Raffel & Ellis (ISMIR 2015) matched MIDI files to recordings among hundreds of thousands by
turning each frame into a few dozen bits and comparing codes with XOR and a bit count, far
cheaper than float distances or dynamic time warping. The package's part of that:

* :func:`binarize` keeps the sign of each dimension of each embedding, one bit per dimension.
* :func:`pack_bits` packs eight bits into a byte: a 128-dimensional code takes 16 bytes
  instead of the 512 of its float32 embedding.
* :func:`hamming_distances` counts the bits in which two codes differ, for every query and
  gallery code, and :func:`hamming_nearest_neighbors` keeps the k nearest.

Why the signs keep the geometry (Charikar, 2002, "SimHash"): a hyperplane through the origin,
drawn at random, separates two vectors at an angle ``theta`` with probability
``theta / pi``. Each dimension's sign tells on which side of one hyperplane (a coordinate
plane) a vector lies, so for embeddings in random orientations the fraction of differing bits
estimates ``theta / pi``: the Hamming distance ranks like the cosine distance, roughly, with
an error that shrinks as the number of bits grows.

How the bits are counted: torch has XOR (``torch.bitwise_xor``) but no popcount, so the bits
of each XORed byte are summed by three shift-and-mask steps (the "SWAR" bit count: pairs of
bits, then nibbles, then the byte), all in uint8 and on any device. The codes are read one
byte column at a time, so each step works on a whole (queries, gallery) block of bytes; on a
CPU this is over ten times faster than looking the XORed bytes up in a 256-entry table of bit
counts, which needs (queries, gallery, bytes) index tensors. As for float embeddings
(:mod:`mlcourse.metrics.neighbors`), the queries go in blocks whose temporaries fit in
:data:`~mlcourse.checks.BLOCK_BYTES`.

Every function takes numpy arrays or torch tensors and returns numpy arrays.

Taught in notebooks/07_cross_modal.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from ..checks import require_positive_int
from .neighbors import _as_embeddings, _as_numpy, _checked_block_size, _resolve_device, _top_k_ties_by_index

__all__ = ["binarize", "hamming_distances", "hamming_nearest_neighbors", "pack_bits"]

_BYTES_PER_PAIR = 12
"""Memory of one (query, gallery) pair in a block: its int32 distance, the distance negated
for the search, and the uint8 temporaries of the bit count."""


def binarize(embeddings):
    """The sign of each dimension of each embedding, as bits: 1 where it is >= 0, else 0.

    Zero (and -0.0) counts as positive and becomes 1, so an all-zero embedding has the
    all-ones code.

    Args:
        embeddings: (N, D) float array or tensor of finite numbers, on any device.

    Returns:
        (N, D) uint8 numpy array of 0s and 1s; :func:`pack_bits` packs it.

    Raises:
        ValueError: If ``embeddings`` is not a non-empty 2-D array of finite numbers.

    Example:
        >>> binarize(np.array([[0.5, -1.0, 0.0], [-0.2, 0.3, -0.0]]))
        array([[1, 0, 1],
               [0, 1, 1]], dtype=uint8)

    Taught in notebooks/07_cross_modal.ipynb
    """
    device = embeddings.device if isinstance(embeddings, torch.Tensor) else torch.device("cpu")
    embeddings = _as_embeddings(embeddings, "embeddings", device)
    return (embeddings >= 0).to(torch.uint8).cpu().numpy()


def pack_bits(bits):
    """Pack (N, D) bits into (N, ceil(D / 8)) bytes, eight bits to a byte.

    The first bit of a row is the highest bit of its first byte, as ``np.packbits`` does; when
    D is not a multiple of 8 the last byte is padded with zeros, which two codes share, so the
    padding never adds to a Hamming distance. ``np.unpackbits(codes, axis=1, count=D)`` gives
    the bits back.

    Args:
        bits: (N, D) array or tensor of bools, or of integers that are all 0 or 1 (the output
            of :func:`binarize`).

    Returns:
        (N, ceil(D / 8)) uint8 numpy array of packed codes.

    Raises:
        ValueError: If ``bits`` is not a non-empty 2-D array of bools or integers, or holds a
            value other than 0 and 1.

    Example:
        >>> pack_bits(np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1, 1]]))
        array([[176, 128],
               [  1, 128]], dtype=uint8)

    Taught in notebooks/07_cross_modal.ipynb
    """
    array = _as_numpy(bits)
    if array.dtype.kind not in "biu":
        raise ValueError(
            f"bits must be bools or integers 0 and 1, got dtype {array.dtype}: turn embeddings "
            "into bits with binarize(embeddings) first."
        )
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"bits must be a 2-D array of shape (n_items, n_bits) with at least one of each, got shape {array.shape}."
        )
    if array.dtype.kind != "b" and ((array != 0) & (array != 1)).any():
        raise ValueError(f"bits must all be 0 or 1, got values from {array.min()} to {array.max()}.")
    return np.packbits(array.astype(bool), axis=1)


@torch.no_grad()
def hamming_distances(query_codes, gallery_codes, block_size=None, device=None):
    """The Hamming distance of every query code to every gallery code: how many bits differ.

    Args:
        query_codes: (Q, W) uint8 array or tensor of packed codes (:func:`pack_bits`).
        gallery_codes: (N, W) uint8 array or tensor, packed the same way.
        block_size: Queries per block; ``None`` picks the most whose temporaries fit in
            :data:`~mlcourse.checks.BLOCK_BYTES`. It changes the memory used, never the result.
        device: Where to compute, as in :func:`~mlcourse.metrics.nearest_neighbors`.

    Returns:
        (Q, N) int32 numpy array of distances in [0, 8 W]. Divided by the number of bits D, it
        estimates ``angle / pi`` (see the module's docstring).

    Raises:
        ValueError: If the codes are not non-empty 2-D uint8 arrays of the same width W, or
            block_size or device is not valid.

    Example:
        >>> codes = pack_bits(binarize(np.array([[1.0, 1, 1, 1], [1, -1, 1, -1], [-1, -1, -1, -1]])))
        >>> hamming_distances(codes, codes)
        array([[0, 2, 4],
               [2, 0, 2],
               [4, 2, 0]], dtype=int32)

    Taught in notebooks/07_cross_modal.ipynb
    """
    query_bytes, gallery_bytes = _code_pair(query_codes, gallery_codes, device)
    distances = torch.empty((query_bytes.shape[1], gallery_bytes.shape[1]), dtype=torch.int32)
    for rows, block in _distance_blocks(query_bytes, gallery_bytes, block_size):
        distances[rows] = block.cpu()
    return distances.numpy()


@torch.no_grad()
def hamming_nearest_neighbors(query_codes, gallery_codes, k=8, block_size=None, device=None):
    """The k gallery codes nearest to every query code in Hamming distance, nearest first.

    Hamming distances are small integers, so ties are common: equal distances are ordered by
    gallery index, smallest first, as in :func:`~mlcourse.metrics.nearest_neighbors`.

    Args:
        query_codes: (Q, W) uint8 array or tensor of packed codes (:func:`pack_bits`).
        gallery_codes: (N, W) uint8 array or tensor, packed the same way.
        k: Neighbours per query, in [1, N].
        block_size: Queries per block; ``None`` picks the most whose temporaries fit in
            :data:`~mlcourse.checks.BLOCK_BYTES`. It changes the memory used, never the result.
        device: Where to compute, as in :func:`~mlcourse.metrics.nearest_neighbors`.

    Returns:
        ``(distances, indices)``: two (Q, k) numpy arrays, int32 Hamming distances and int64
        gallery indices, nearest first.

    Raises:
        ValueError: If the codes are not non-empty 2-D uint8 arrays of the same width, k is
            not in [1, N], or block_size or device is not valid.

    Example:
        >>> gallery = pack_bits(np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]))
        >>> distances, indices = hamming_nearest_neighbors(gallery[:1], gallery, k=3)
        >>> distances, indices
        (array([[0, 1, 2]], dtype=int32), array([[0, 3, 1]]))

        Gallery items 1 and 2 are both 2 bits away; the tie goes to the smaller index.

    No notebook calls it: notebook 07 ranks the whole gallery from :func:`hamming_distances`.
    """
    query_bytes, gallery_bytes = _code_pair(query_codes, gallery_codes, device)
    require_positive_int(k, "k")
    n_gallery = gallery_bytes.shape[1]
    if k > n_gallery:
        raise ValueError(f"k={k} is more than the {n_gallery} gallery codes: use k <= {n_gallery}.")
    blocks = [
        _top_k_ties_by_index(distances.neg_(), k)  # the nearest have the largest negated distances
        for _, distances in _distance_blocks(query_bytes, gallery_bytes, block_size)
    ]
    distances = -torch.cat([values for values, _ in blocks])
    indices = torch.cat([columns for _, columns in blocks])
    return distances.cpu().numpy(), indices.cpu().numpy()


def _code_pair(query_codes, gallery_codes, device):
    """The codes as (W, Q) and (W, N) uint8 tensors on one device: byte j of every code in row j.

    Byte-major, so that each step of :func:`_hamming_into` reads one contiguous row per side.
    """
    device = _resolve_device(device, query_codes)
    queries = _as_codes(query_codes, "query_codes", device)
    gallery = _as_codes(gallery_codes, "gallery_codes", device)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query_codes and gallery_codes must have the same width (bytes per code), got "
            f"{queries.shape[1]} and {gallery.shape[1]}: binarize embeddings of the same "
            "dimension and pack both with pack_bits."
        )
    return queries.T.contiguous(), gallery.T.contiguous()


def _as_codes(codes, name, device):
    """``codes`` as a 2-D uint8 tensor on ``device``, checked."""
    tensor = codes.detach() if isinstance(codes, torch.Tensor) else torch.as_tensor(np.asarray(codes))
    if tensor.dtype != torch.uint8:
        raise ValueError(
            f"{name} must be packed codes of dtype uint8, got {tensor.dtype}: pack bits with "
            "pack_bits(binarize(embeddings))."
        )
    if tensor.ndim != 2 or 0 in tensor.shape:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_items, n_bytes) with at least one of each, "
            f"got shape {tuple(tensor.shape)}. A single code c is c.reshape(1, -1)."
        )
    return tensor.to(device)


def _distance_blocks(query_bytes, gallery_bytes, block_size):
    """Yield ``(rows, distances)``: a slice of queries and their (B, N) int32 Hamming distances.

    Every block is written into the same buffer, so a block's distances only last until the
    next block (as in :meth:`mlcourse.metrics.neighbors._Search.score_blocks`).

    Args:
        query_bytes, gallery_bytes: (W, Q) and (W, N) uint8 tensors from :func:`_code_pair`.
        block_size: as in :func:`hamming_distances`.
    """
    n_queries, n_gallery = query_bytes.shape[1], gallery_bytes.shape[1]
    block_size = _checked_block_size(block_size, n_gallery, _BYTES_PER_PAIR)
    buffer = torch.empty((min(block_size, n_queries), n_gallery), dtype=torch.int32, device=query_bytes.device)
    for start in range(0, n_queries, block_size):
        rows = slice(start, min(start + block_size, n_queries))
        distances = buffer[: rows.stop - rows.start]
        _hamming_into(distances, query_bytes[:, rows], gallery_bytes)
        yield rows, distances


def _hamming_into(out, query_bytes, gallery_bytes):
    """Write the (B, N) Hamming distances of (W, B) query and (W, N) gallery bytes into ``out``."""
    out.zero_()
    for query_column, gallery_column in zip(query_bytes, gallery_bytes):
        out += _bit_counts(torch.bitwise_xor(query_column[:, None], gallery_column))


def _bit_counts(x):
    """The number of 1 bits of each byte of the uint8 tensor ``x`` (SWAR: within the byte)."""
    x = x - ((x >> 1) & 0x55)  # each pair of bits: its count, 0 to 2
    x = (x & 0x33) + ((x >> 2) & 0x33)  # each nibble: its count, 0 to 4
    return (x + (x >> 4)) & 0x0F  # the byte: its count, 0 to 8
