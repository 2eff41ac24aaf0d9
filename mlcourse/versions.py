"""Version (cover) identification: which recordings are versions of the same composition?

Each piece of the dataset is rendered several times (another instrument family, tempo and
key): its *versions*. A version is a recording of several consecutive clips, and versions are
compared as wholes, as version identification systems compare whole tracks:

* :func:`stack_versions` gathers each version's clips into one array, e.g. (V, C, 12, T)
  chroma, with the piece of each version as its class;
* :class:`ClipSubsetStep` trains a :class:`mlcourse.models.RecordingNet` on batches of
  versions (P pieces x K versions), each seen through a random subset of its clips, so that
  every step shows other passages of the same recordings;
* :func:`version_means` and :func:`key_invariant_similarity` are the baselines' side: the mean
  of a version's clip vectors, and the cosine of two pitch-class profiles under the best of
  the 12 transpositions (the optimal transposition index of Serrà et al., 2008);
* :func:`version_map` scores an embedding network on a split: version-level mean average
  precision, each version a query and the other versions of its piece the relevant items;
  :func:`version_pair_distances` lists the distances between all pairs of versions, to see
  what brings two versions close;
* :func:`known_versions`, :func:`piece_prototypes` and :func:`prototype_search` search by
  piece: a piece's *prototype*, the mean of the versions already known, looks for its new
  versions and their clips, as a catalogue that holds a few recordings of each work looks for
  new covers.

Taught in notebooks/09_applications.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .checks import require_positive_int
from .data.features import N_CHROMA
from .metrics import mean_average_precision, recall_at_k
from .models import RecordingNet
from .train import embed

__all__ = [
    "ClipSubsetStep",
    "Versions",
    "describe_version",
    "known_versions",
    "piece_prototypes",
    "prototype_search",
    "key_invariant_similarity",
    "nearest_versions",
    "stack_versions",
    "version_map",
    "version_means",
    "version_pair_distances",
]


@dataclass
class Versions:
    """The versions of a split, each as the stack of its clips.

    Attributes:
        clips: (V, C, ...) the features of the first C clips of each version, in time order,
            e.g. (V, C, 12, T) chroma.
        version_ids: (V,) the versions' ids, sorted.
        pieces: (V,) the piece of each version (its class).
        clip_version: (N,) the row of ``version_ids`` of each clip of the split.
    """

    clips: np.ndarray
    version_ids: np.ndarray
    pieces: np.ndarray
    clip_version: np.ndarray

    def piece_codes(self) -> np.ndarray:
        """(V,) int: the piece of each version as a class code, for the samplers."""
        return np.unique(self.pieces, return_inverse=True)[1]


def stack_versions(data, features="chroma") -> Versions:
    """Gather each version's clips of a :class:`~mlcourse.data.ClipDataset` into one array.

    Versions of one size have as many clips each; where they differ, every version keeps as
    many clips as the shortest one has (its first ones), so that they stack.

    Args:
        data: The dataset, usually one split.
        features: The clip features to stack: ``"chroma"`` or ``"logmel"``.

    Raises:
        ValueError: If the dataset has no versions (an imported audio folder has none).

    Taught in notebooks/09_applications.ipynb
    """
    meta = data.meta
    if features not in ("chroma", "logmel"):
        raise ValueError(f"features must be 'chroma' or 'logmel', got {features!r}")
    if "version_id" not in meta.columns or len(meta) == 0:
        raise ValueError("the dataset has no versions: version identification needs the rendered dataset")
    version_ids, clip_version = np.unique(meta.version_id.to_numpy(), return_inverse=True)
    order = np.lexsort((meta["clip"].to_numpy(), clip_version))  # by version, then time
    n_clips = int(np.bincount(clip_version).min())
    first = np.searchsorted(clip_version[order], np.arange(len(version_ids)))
    rows = order[first[:, None] + np.arange(n_clips)[None, :]]  # (V, C)
    pieces = meta.groupby("version_id").piece_id.first().loc[version_ids].to_numpy()
    return Versions(
        clips=np.asarray(getattr(data, features))[rows],
        version_ids=version_ids,
        pieces=pieces,
        clip_version=clip_version,
    )


class ClipSubsetStep:
    """A training step on batches of versions, each seen through a random subset of its clips.

    For each version of the batch it draws ``clips`` of its C clips at random (without
    replacement), embeds the (B, clips, ...) stack with the model (a
    :class:`~mlcourse.models.RecordingNet`) and calls ``loss_fn(embeddings, labels[batch])``.
    Fewer clips than C make every step see other passages of the same recordings: an
    augmentation that the mean over clips makes natural.

    Args:
        clips: Clips drawn per version, at least 1.
        seed: Seed of the draws.

    Taught in notebooks/09_applications.ipynb
    """

    def __init__(self, clips, seed=0):
        require_positive_int(clips, "clips")
        self.clips = clips
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, model, loss_fn, features, labels, batch):
        stacks = features[batch]  # (B, C, ...)
        if self.clips > stacks.shape[1]:
            raise ValueError(f"clips={self.clips} but the versions have only {stacks.shape[1]} clips each")
        draws = torch.rand(stacks.shape[:2], generator=self.generator).argsort(dim=1)[:, : self.clips]
        index = draws.to(stacks.device).reshape(*draws.shape, *[1] * (stacks.dim() - 2))
        chosen = stacks.gather(1, index.expand(-1, -1, *stacks.shape[2:]))
        embeddings = model(chosen)
        with torch.autocast(stacks.device.type, enabled=False):
            return loss_fn(embeddings.float(), labels[batch])


def version_means(clip_vectors, clip_version) -> np.ndarray:
    """(N, D) clip vectors -> (V, D): the mean over the clips of each version.

    Args:
        clip_vectors: (N, D) array or tensor.
        clip_version: (N,) int, each clip's version (0 .. V-1), e.g. ``Versions.clip_version``.

    Taught in notebooks/09_applications.ipynb
    """
    clip_vectors = np.asarray(clip_vectors, dtype=np.float64)
    clip_version = np.asarray(clip_version)
    if len(clip_vectors) != len(clip_version):
        raise ValueError(f"{len(clip_vectors)} clip vectors but {len(clip_version)} clip versions")
    sums = np.zeros((clip_version.max() + 1, clip_vectors.shape[1]))
    np.add.at(sums, clip_version, clip_vectors)
    return sums / np.bincount(clip_version)[:, None]


def key_invariant_similarity(first, second) -> np.ndarray:
    """(Q, 12) and (N, 12) pitch-class profiles -> (Q, N): the best cosine over the 12 rotations.

    ``s(a, b) = max_k cos(a, roll(b, k))``: the optimal transposition index (Serrà, Gómez and
    Herrera, 2008) makes the comparison blind to the key.

    Taught in notebooks/09_applications.ipynb
    """
    first, second = (np.asarray(x, dtype=np.float64) for x in (first, second))
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != N_CHROMA or second.shape[1] != N_CHROMA:
        raise ValueError(f"expected (Q, 12) and (N, 12) pitch-class profiles, got {first.shape} and {second.shape}")
    first, second = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in (first, second))
    return np.max([first @ np.roll(second, k, axis=1).T for k in range(N_CHROMA)], axis=0)


def version_map(model, versions: Versions) -> float:
    """Version-level mean average precision of a recording network on stacked versions.

    Each version is a query; the relevant items are the other versions of its piece, ranked by
    the cosine of the network's recording embeddings.

    Taught in notebooks/09_applications.ipynb
    """
    embeddings = embed(model, versions.clips, batch_size=32)
    return mean_average_precision(embeddings, versions.pieces, distance="cosine")


def version_pair_distances(clip_net, versions: Versions, data) -> pd.DataFrame:
    """The cosine distance between every two versions, and what the two have in common.

    Args:
        clip_net: The network that embeds one clip; a version is the mean of its clips
            (:class:`~mlcourse.models.RecordingNet`).
        versions: The stacked versions of a split, in the features ``clip_net`` reads.
        data: The same split as a :class:`~mlcourse.data.ClipDataset`, for the instruments.

    Returns:
        A DataFrame with one row per pair of distinct versions: ``distance``, ``same piece``
        and ``same instrument`` (the same instrument family).

    Taught in notebooks/09_applications.ipynb
    """
    embeddings = embed(RecordingNet(clip_net), versions.clips, batch_size=32).numpy()
    instrument = data.meta.groupby("version_id").instrument.first().loc[versions.version_ids].to_numpy()
    first, second = np.triu_indices(len(embeddings), k=1)
    return pd.DataFrame(
        {
            "distance": 1 - np.sum(embeddings[first] * embeddings[second], axis=1),
            "same piece": versions.pieces[first] == versions.pieces[second],
            "same instrument": instrument[first] == instrument[second],
        }
    )


def nearest_versions(similarity, query, k=5):
    """The ``k`` versions most similar to version ``query``, the query itself left out.

    Args:
        similarity: (V, V) version-by-version similarity, larger = more alike.
        query: Row of the query version.
        k: How many to return.

    Returns:
        (k,) int array of rows, most similar first (equal similarities in row order).

    Taught in notebooks/09_applications.ipynb
    """
    scores = np.array(similarity[query], dtype=np.float64)
    scores[query] = -np.inf
    return np.argsort(-scores, kind="stable")[:k]


def describe_version(meta, version_id):
    """A version in a few words: its piece, its instrument family and its transposition.

    Args:
        meta: Clip metadata (``ClipDataset.meta``) with ``version_id``, ``piece_id``,
            ``instrument`` and ``transpose`` columns.
        version_id: The version to describe.

    Returns:
        A string such as ``"reel_012 (strings, +2)"``.

    Taught in notebooks/09_applications.ipynb
    """
    row = meta[meta.version_id == version_id].iloc[0]
    return f"{row.piece_id} ({row.instrument}, {row['transpose']:+d})"


def known_versions(version_pieces):
    """Which versions are already known: every version of a piece but its last one.

    Args:
        version_pieces: (V,) the piece of each version, in the order of the versions.

    Returns:
        (V,) bool array, True for a known version. A piece's last version (in the given order)
        is its *new* version, the one to find; a piece with a single version has no known one.

    Example:
        >>> known_versions(np.array(["a", "a", "b", "a", "b", "c"])).tolist()
        [True, True, True, False, False, False]

    Taught in notebooks/09_applications.ipynb
    """
    version_pieces = np.asarray(version_pieces)
    last = {piece: row for row, piece in enumerate(version_pieces)}
    return np.array([last[piece] != row for row, piece in enumerate(version_pieces)], dtype=bool)


def piece_prototypes(version_vectors, version_pieces):
    """Each piece's prototype: the mean direction of its versions' vectors.

    Each version vector is scaled to unit length first, so that every version counts the same
    in the cosine search that follows, whatever its length.

    Args:
        version_vectors: (V, D) array, one vector per version (e.g. :func:`version_means`).
        version_pieces: (V,) the piece of each version.

    Returns:
        ``(pieces, prototypes)``: the P pieces (sorted) and a (P, D) float64 array of unit
        vectors, row ``p`` the normalised mean of the unit vectors of piece ``p``'s versions.

    Raises:
        ValueError: If the lengths differ, or a version vector is all zeros (no direction).

    Example:
        >>> pieces, prototypes = piece_prototypes(np.array([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), ["a", "a", "b"])
        >>> pieces.tolist(), np.round(prototypes, 3).tolist()
        (['a', 'b'], [[0.707, 0.707], [0.707, 0.707]])

    Taught in notebooks/09_applications.ipynb
    """
    vectors = np.asarray(version_vectors, dtype=np.float64)
    version_pieces = np.asarray(version_pieces)
    if vectors.ndim != 2 or len(vectors) != len(version_pieces):
        raise ValueError(f"expected (V, D) vectors and V pieces, got {vectors.shape} and {len(version_pieces)} pieces")
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (lengths == 0).any():
        raise ValueError("a version vector is all zeros: it has no direction to average")
    pieces, piece_of = np.unique(version_pieces, return_inverse=True)
    sums = np.zeros((len(pieces), vectors.shape[1]))
    np.add.at(sums, piece_of, vectors / lengths)
    return pieces, sums / np.linalg.norm(sums, axis=1, keepdims=True)


def prototype_search(clip_vectors, version_of_clip, version_pieces, known):
    """Search the new versions, and their clips, by piece: prototypes against single known versions.

    A version's vector is the mean of its clips' vectors (:func:`version_means`). Two kinds of
    query look for the new versions (``~known``) of the pieces that have known versions:

    * ``one known version``: every known version on its own;
    * ``piece prototype``: each piece's :func:`piece_prototypes` of its known versions.

    Each is scored by cosine against two galleries: the new versions (one relevant per piece:
    mAP equals the mean reciprocal rank) and the clips of the new versions (the relevant clips
    are those of the piece's new version).

    Args:
        clip_vectors: (N, D) array of clip vectors.
        version_of_clip: (N,) int, each clip's version (0 .. V-1).
        version_pieces: (V,) the piece of each version.
        known: (V,) bool, the known versions (:func:`known_versions`).

    Returns:
        A DataFrame with the rows ``one known version`` and ``piece prototype`` and the columns
        ``version mAP``, ``version R@1`` and ``clip mAP``.

    Raises:
        ValueError: If the shapes disagree, or no piece has both a known and a new version.

    Taught in notebooks/09_applications.ipynb
    """
    version_vectors = version_means(clip_vectors, version_of_clip)
    version_pieces, known = np.asarray(version_pieces), np.asarray(known, dtype=bool)
    if len(version_pieces) != len(version_vectors) or known.shape != version_pieces.shape:
        raise ValueError(
            f"{len(version_vectors)} versions, but {len(version_pieces)} pieces and {known.shape} known flags"
        )
    if not set(version_pieces[known]) & set(version_pieces[~known]):
        raise ValueError("no piece has both a known and a new version: nothing to search for")
    new_clips = ~known[np.asarray(version_of_clip)]
    galleries = {
        "version": (version_vectors[~known], version_pieces[~known]),
        "clip": (np.asarray(clip_vectors)[new_clips], version_pieces[np.asarray(version_of_clip)][new_clips]),
    }
    pieces, prototypes = piece_prototypes(version_vectors[known], version_pieces[known])
    queries = {
        "one known version": (version_vectors[known], version_pieces[known]),
        "piece prototype": (prototypes, pieces),
    }
    rows = {}
    for name, (vectors, pieces) in queries.items():
        row = {}
        for level, (gallery, gallery_pieces) in galleries.items():
            search = dict(gallery=gallery, gallery_labels=gallery_pieces, distance="cosine")
            row[f"{level} mAP"] = mean_average_precision(vectors, pieces, **search)
            if level == "version":
                row["version R@1"] = recall_at_k(vectors, pieces, ks=(1,), **search)[1]
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")[["version mAP", "version R@1", "clip mAP"]]
