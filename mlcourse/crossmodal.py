"""Cross-modal retrieval: find a clip's score from its audio, and its audio from its score.

Matching a recording to its score (the MIDI-to-audio matching of Raffel & Ellis, 2016) is a
retrieval task with exactly one right answer per query. Every clip of the dataset has both:
its audio log-mel ``data.logmel[i]`` and the piano roll of what is played,
``data.pianoroll[i]``; query ``i``'s partner is gallery item ``i``, and the metrics of
:mod:`mlcourse.metrics` (:func:`~mlcourse.metrics.match_ranks`, R@k, MRR) score a ranking.

Two ways to compare the modalities:

* **Without learning**, bring both to a common representation, the chroma: the energy of each
  pitch class over time. Audio has it (``data.chroma``, from the spectrogram) and a piano roll
  folds its 128 pitches into 12 classes (:func:`mlcourse.crossmodal.roll_chroma`). Then compare whole sequences
  frame by frame (:func:`chroma_cosine_distances`), or align them first with dynamic time
  warping (:func:`dtw_distances`, :func:`chroma_dtw_distances`), which forgives differences of
  tempo at a much higher cost.
* **With learning**, give each modality its own encoder, both ending in one shared embedding
  space (:class:`CrossModalNet`), and train them so that a clip's audio and its score embed
  near each other and far from the other clips' (an InfoNCE loss across modalities, one
  training step of which is :class:`CrossModalStep`). Retrieval is then a nearest-neighbour
  search, a few microseconds per query.

:func:`retrieval_table` puts the methods side by side, with their cost per query measured by
:func:`time_per_query`.

Taught in notebooks/07_cross_modal.ipynb
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from .data.features import N_CHROMA, N_FRAMES, N_PITCHES
from .metrics import retrieval_table
from .models import CrossModalNet
from .train import EMBED_BATCH, embed, to_device

__all__ = [
    "CrossModalNet",
    "CrossModalStep",
    "chroma_cosine_distances",
    "chroma_dtw_distances",
    "dtw_distance",
    "dtw_distances",
    "embed_pairs",
    "encoder_distances",
    "retrieval_table",
    "roll_chroma",
    "time_per_query",
]

DTW_BLOCK_BYTES = 16 * 2**20
"""Memory budget of the (items, T, U) frame costs of one block of gallery items in DTW."""


class CrossModalStep:
    """One training step across modalities, for ``mlcourse.train.train(..., step=...)``.

    :func:`~mlcourse.train.train` moves one array of features, the audio's, to the device;
    this step holds the second modality, the scores, moves them there once (on the first
    step) and compares each batch's audio with its scores::

        loss_fn(audio_embeddings, score_embeddings)

    An optional ``augment`` changes each batch's audio first (e.g.
    :class:`mlcourse.augment.RandomDelay`), to train the invariances that search needs.

    Row ``i`` of both is clip ``i``, so a cross-modal InfoNCE loss takes the diagonal pairs as
    positives and every other pair of the batch as a negative. Batches come from a sampler of
    distinct random clips, e.g. ``mlcourse.data.samplers.RandomBatches``, and ``labels`` is
    None. As in :func:`~mlcourse.train.default_step`, the network may run in reduced precision
    (autocast); the loss gets float32 embeddings and runs without autocast.

    Args:
        rolls: (N, 128, 130) piano rolls (bool or uint8, array or tensor), or their (N, 12, 130)
            chroma (:func:`mlcourse.crossmodal.roll_chroma`), of the same N clips, in the same order, as the
            features given to ``train``.
        augment: None, or a function of a (B, F, T) batch of audio features that returns one
            of the same shape.

    Example:
        >>> history = train(CrossModalNet(), info_nce, features=train_data.logmel,
        ...                 labels=None, sampler=RandomBatches(len(train_data), 64),
        ...                 step=CrossModalStep(train_data.pianoroll))  # doctest: +SKIP

    Taught in notebooks/07_cross_modal.ipynb
    """

    def __init__(self, rolls, augment=None):
        rolls = rolls if isinstance(rolls, torch.Tensor) else np.asarray(rolls)
        if rolls.ndim != 3 or rolls.shape[1:] not in ((N_PITCHES, N_FRAMES), (N_CHROMA, N_FRAMES)) or len(rolls) == 0:
            raise ValueError(
                f"rolls must be (N, {N_PITCHES}, {N_FRAMES}) piano rolls, one per clip "
                f"(e.g. data.pianoroll), or their (N, {N_CHROMA}, {N_FRAMES}) chroma, got shape {tuple(rolls.shape)}"
            )
        self.rolls = rolls
        self.augment = augment
        self._rolls_on_device = None

    def rolls_on(self, device):
        """The piano rolls as a tensor on ``device``, copied there only the first time."""
        if self._rolls_on_device is None or self._rolls_on_device.device != device:
            self._rolls_on_device = to_device(self.rolls, device)
        return self._rolls_on_device

    def __call__(self, model, loss_fn, features, labels, batch):
        """The loss of one batch; the arguments are those of :func:`~mlcourse.train.default_step`."""
        if len(features) != len(self.rolls):
            raise ValueError(
                f"the features ({len(features)} clips) and the step's piano rolls "
                f"({len(self.rolls)}) must be the same clips in the same order"
            )
        audio = features[batch] if self.augment is None else self.augment(features[batch])
        audio, score = model(audio, self.rolls_on(features.device)[batch])
        with torch.autocast(features.device.type, enabled=False):
            return loss_fn(audio.float(), score.float())


@torch.no_grad()
def embed_pairs(model, logmel, rolls, batch_size=EMBED_BATCH):
    """Embed clips in both modalities, in eval mode on the model's device.

    Args:
        model: A :class:`CrossModalNet`.
        logmel: (N, 128, 130) log-mels. rolls: (M, 128, 130) piano rolls (M may differ from N).
        batch_size: Clips per forward pass.

    Returns:
        ``(audio, score)``: (N, D) and (M, D) float32 numpy arrays.

    Taught in notebooks/07_cross_modal.ipynb
    """
    model.eval()
    audio = embed(model.audio, logmel, batch_size=batch_size)
    score = embed(model.score, rolls, batch_size=batch_size)
    return audio.numpy(), score.numpy()


# --------------------------------------------------------------------------------------------
# The baseline without learning: chroma sequences
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def encoder_distances(encoder, queries, gallery_embeddings):
    """Search a gallery as a deployed system does: embed the queries, then one matrix product.

    The gallery's embeddings are computed once, beforehand (an index); each query costs one
    pass through its encoder and a dot product with every gallery item.

    Args:
        encoder: One encoder of a :class:`CrossModalNet` (``model.audio`` or ``model.score``),
            on the CPU, with unit-length outputs.
        queries: (Q, ...) inputs of that encoder.
        gallery_embeddings: (N, D) unit-length embeddings of the other modality.

    Returns:
        (Q, N) numpy array of cosine distances, query ``i``'s partner in column ``i`` when the
        gallery holds the queries' partners in order (ready for :func:`retrieval_table`).

    Taught in notebooks/07_cross_modal.ipynb
    """
    return 1 - encoder(torch.as_tensor(queries)).numpy() @ np.asarray(gallery_embeddings).T


def roll_chroma(rolls):
    """Fold piano rolls into chroma: how many notes of each pitch class sound in each frame.

    MIDI pitch ``p`` has pitch class ``p % 12``, with 0 for C (MIDI 60 is middle C): the order
    of the audio chroma's rows (C, C#, ..., B). Each frame is then scaled so that its largest
    value is 1, as the audio chroma is; a frame where nothing sounds stays all zeros.

    Args:
        rolls: (N, 128, T) piano rolls (bool, int or float), or one (128, T) roll.

    Returns:
        (N, 12, T) float32 array, or (12, T) for a single roll.

    Raises:
        ValueError: If the rolls do not have 128 pitch rows.

    Taught in notebooks/07_cross_modal.ipynb
    """
    rolls = np.asarray(rolls)
    if rolls.ndim not in (2, 3) or rolls.shape[-2] != N_PITCHES:
        raise ValueError(f"rolls must be (N, 128, frames) or (128, frames), got shape {rolls.shape}")
    single = rolls.ndim == 2
    rolls = rolls[None] if single else rolls
    chroma = np.zeros((len(rolls), N_CHROMA, rolls.shape[-1]), dtype=np.float32)
    for pitch_class in range(N_CHROMA):
        # Every 12th pitch from pitch_class on: the same class in each octave.
        chroma[:, pitch_class] = rolls[:, pitch_class::N_CHROMA].sum(axis=1)
    peak = chroma.max(axis=1, keepdims=True)
    chroma = chroma / np.where(peak > 0, peak, 1)
    return chroma[0] if single else chroma


def _chroma_sequences(chroma, name):
    """``chroma`` as a float64 (N, 12, T) array, checked."""
    chroma = np.asarray(chroma, dtype=np.float64)
    if chroma.ndim != 3 or chroma.shape[1] != N_CHROMA or 0 in chroma.shape:
        raise ValueError(f"{name} must be (N, 12, frames) chroma sequences, got shape {chroma.shape}")
    if not np.isfinite(chroma).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return chroma


def _unit(vectors, axis):
    """``vectors`` scaled to unit length along ``axis``; all-zero vectors stay zero."""
    norms = np.linalg.norm(vectors, axis=axis, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def chroma_cosine_distances(audio_chroma, roll_chroma):
    """Cosine distances between whole chroma sequences, frame against frame: the cheap baseline.

    Each (12, T) sequence is flattened into one vector of 12 T numbers and scaled to unit
    length, so the distance compares the pitch classes of frame t of one with frame t of the
    other, and only those: it assumes the two are aligned in time, as the dataset's audio and
    piano rolls are. A sequence that is all zeros (no note at all) is at distance 1 from
    everything.

    Args:
        audio_chroma: (N, 12, T) chroma sequences, e.g. ``data.chroma``.
        roll_chroma: (M, 12, T) chroma sequences, e.g. ``roll_chroma(data.pianoroll)``.

    Returns:
        (N, M) float64 array of ``1 - cos`` in [0, 2] (in [0, 1] for chroma, never negative).

    Raises:
        ValueError: If the inputs are not (N, 12, T) and (M, 12, T) finite arrays.

    Taught in notebooks/07_cross_modal.ipynb
    """
    audio = _chroma_sequences(audio_chroma, "audio_chroma")
    rolls = _chroma_sequences(roll_chroma, "roll_chroma")
    if audio.shape[2] != rolls.shape[2]:
        raise ValueError(
            f"the sequences must have the same number of frames to be compared frame by frame, "
            f"got {audio.shape[2]} and {rolls.shape[2]}: use chroma_dtw_distances for unequal lengths"
        )
    audio = _unit(audio.reshape(len(audio), -1), axis=1)
    rolls = _unit(rolls.reshape(len(rolls), -1), axis=1)
    return np.clip(1.0 - audio @ rolls.T, 0.0, 2.0)  # rounding may leave a twin at -1e-16


# --------------------------------------------------------------------------------------------
# Dynamic time warping
# --------------------------------------------------------------------------------------------


def dtw_distances(query, gallery, band=None):
    """Dynamic time warping (DTW) distance between one chroma sequence and each of a gallery.

    DTW aligns two sequences before comparing them: it finds the monotonic path through the
    (T, U) matrix of frame costs, from the first frames of both to the last frames of both, in
    steps right, down or diagonal, whose costs add up to the least. A frame's cost is the
    cosine distance ``1 - cos`` between the two frames' chroma vectors (an all-zero frame, a
    rest in a piano roll, costs 1 against anything).

    The accumulated cost ``D[i, j]`` of the best path to cell (i, j) is computed row after row,
    for all gallery items at once:

        D[i, j] = C[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])

    The last term makes a row depend on itself, left to right. Arriving from the row above
    costs ``A[j] = C[i, j] + min(D[i-1, j-1], D[i-1, j])``; a path that arrives at column k
    and then walks right to column j costs ``A[k] + C[i, k+1] + ... + C[i, j]``. With ``S[j]``
    the running sum of the row's costs, that is ``S[j] + (A[k] - S[k])``, and the best k is
    found by a running minimum: ``D[i, j] = S[j] + min over k <= j of (A[k] - S[k])``. So each
    row takes a handful of array operations instead of a loop over its columns.

    With a Sakoe-Chiba ``band``, only cells within ``band`` frames of the diagonal are allowed
    (the band widened by the difference of the lengths, so that the last cell stays
    reachable): the path may not drift far in time, which is faster and keeps it plausible.

    Args:
        query: (12, T) chroma sequence.
        gallery: (M, 12, U) chroma sequences; U may differ from T.
        band: Largest allowed ``|j - i|`` in frames (beyond the length difference), an int
            >= 0, or None for no limit. For example ``round(0.1 * T)``.

    Returns:
        (M,) float64 array: each item's least accumulated cost, divided by ``T + U`` so that it
        does not grow with the length of the clips. The distance is symmetric:
        ``dtw_distances(x, y[None]) == dtw_distances(y, x[None])``. Multiply by ``T + U`` for
        the accumulated cost ``D[-1, -1]`` of ``librosa.sequence.dtw``.

    Raises:
        ValueError: If the inputs are not a (12, T) sequence and (M, 12, U) sequences of finite
            numbers, or ``band`` is not None or an int >= 0.

    Taught in notebooks/07_cross_modal.ipynb
    """
    query = _chroma_sequences(np.asarray(query)[None], "query")[0]
    gallery = _chroma_sequences(gallery, "gallery")
    if band is not None and (isinstance(band, bool) or not isinstance(band, (int, np.integer)) or band < 0):
        raise ValueError(f"band must be None or an int >= 0 (frames), got {band!r}")
    n_query, n_gallery = query.shape[1], gallery.shape[2]
    # Unit-length frames: one matrix product gives every frame's cosine with every frame.
    query_frames = _unit(query, axis=0).T  # (T, 12)
    gallery_frames = _unit(gallery, axis=1)  # (M, 12, U)
    items_per_block = max(1, DTW_BLOCK_BYTES // (8 * n_query * n_gallery))
    distances = []
    for start in range(0, len(gallery), items_per_block):
        block = gallery_frames[start : start + items_per_block]
        costs = 1.0 - np.matmul(query_frames, block)  # (items, T, U)
        np.clip(costs, 0.0, 2.0, out=costs)  # rounding may leave identical frames at -1e-16
        distances.append(_accumulated_cost(costs, band))
    return np.concatenate(distances) / (n_query + n_gallery)


def _accumulated_cost(costs, band):
    """The DTW cost of the best full path, for an (M, T, U) block of frame costs: (M,)."""
    n_items, n_query, n_gallery = costs.shape
    length_gap = n_gallery - n_query
    # previous[:, j + 1] is D[i-1, j]; previous[:, 0] is the corner before the start.
    previous = np.full((n_items, n_gallery + 1), np.inf)
    previous[:, 0] = 0.0
    for i in range(n_query):
        if band is None:
            first, last = 0, n_gallery - 1
        else:
            first = max(0, i + min(0, length_gap) - band)
            last = min(n_gallery - 1, i + max(0, length_gap) + band)
        row = costs[:, i, first : last + 1]
        from_above = np.minimum(previous[:, first : last + 1], previous[:, first + 1 : last + 2])
        arrive = row + from_above
        running_sum = np.cumsum(row, axis=1)
        current = np.full_like(previous, np.inf)
        current[:, first + 1 : last + 2] = running_sum + np.minimum.accumulate(arrive - running_sum, axis=1)
        previous = current
    return previous[:, -1]


def dtw_distance(x, y, band=None):
    """The DTW distance between two chroma sequences, as :func:`dtw_distances`.

    Args:
        x: (12, T) chroma sequence. y: (12, U) chroma sequence. band: as in :func:`dtw_distances`.

    Returns:
        A float: the least accumulated cosine cost of an alignment, divided by ``T + U``.

    Taught in notebooks/07_cross_modal.ipynb
    """
    return float(dtw_distances(x, np.asarray(y)[None], band=band)[0])


def chroma_dtw_distances(audio_chroma, roll_chroma, band=None, progress=False):
    """DTW distances between every audio chroma sequence and every piano-roll chroma sequence.

    One :func:`dtw_distances` per audio query, each against the whole gallery at once. DTW is
    symmetric, so ``distances.T`` serves the other direction (score to audio) as it is.

    Args:
        audio_chroma: (N, 12, T) chroma sequences, e.g. ``data.chroma``.
        roll_chroma: (M, 12, U) chroma sequences, e.g. ``roll_chroma(data.pianoroll)``.
        band: Sakoe-Chiba band in frames, or None (see :func:`dtw_distances`).
        progress: Show a progress bar over the queries.

    Returns:
        (N, M) float64 array of DTW distances.

    Raises:
        ValueError: As :func:`dtw_distances`.

    Taught in notebooks/07_cross_modal.ipynb
    """
    audio = _chroma_sequences(audio_chroma, "audio_chroma")
    rolls = _chroma_sequences(roll_chroma, "roll_chroma")
    rows = [
        dtw_distances(query, rolls, band=band) for query in tqdm(audio, desc="DTW", unit="query", disable=not progress)
    ]
    return np.stack(rows)


# --------------------------------------------------------------------------------------------
# Comparing methods
# --------------------------------------------------------------------------------------------


def time_per_query(fn, n_queries):
    """Run ``fn()`` once and share its wall time among the queries it answers.

    Args:
        fn: A function of no arguments, e.g. ``lambda: chroma_cosine_distances(a, b)``.
        n_queries: How many queries that call answers, a positive int.

    Returns:
        ``(result, seconds_per_query)``: what ``fn`` returned, and a float.

    Taught in notebooks/07_cross_modal.ipynb
    """
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or n_queries < 1:
        raise ValueError(f"n_queries must be a positive int, got {n_queries!r}")
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) / n_queries
