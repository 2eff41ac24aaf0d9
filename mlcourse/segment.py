"""Structural segmentation: find where one tune ends and the next begins.

Folk musicians play *sets*: several tunes one after another, without a pause. Finding the
boundaries between the tunes is a small structural-segmentation task, and a good test of an
embedding: windows of the same tune should be similar to each other and different from the
windows of the next tune. The method is Foote's (2000):

1. :func:`make_tune_sets` builds sets with known boundaries by joining versions of dance
   tunes (reels, jigs, hornpipes, strathspeys) of the dataset end to end.
2. :func:`sliding_windows` cuts a set's log-mel spectrogram into overlapping 3-second windows
   (the size of the clips the networks were trained on), and a network or a baseline
   (:func:`mfcc_windows`, :func:`band_windows`) gives each window a feature vector;
   :func:`set_windows` stacks the windows of many sets to learn features from them without
   labels.
3. :func:`self_similarity` compares every window with every other one: the self-similarity
   matrix (SSM). Each tune is a bright square on its diagonal.
4. :func:`novelty_curve` slides a checkerboard kernel along the diagonal: it is large where
   the windows just before a time are similar to each other, the windows just after are
   similar to each other, and the two groups differ, i.e. at the corners of the squares. It
   skips the few windows that straddle the time, which hold a bit of both tunes.
5. :func:`pick_boundaries` takes the peaks of the novelty curve as boundaries, and
   :func:`score_boundaries` scores them with ``mir_eval.segment.detection``: an estimated
   boundary is a hit if it lies within 0.5 s (strict) or 3 s (lenient) of a reference
   boundary, each boundary matched at most once.

:func:`segment` runs steps 3 to 5 on one set, :func:`evaluate_segmentation` on many sets,
and :func:`plot_segmentation` draws the SSM and the novelty curve of one set.

Time: every clip of the dataset is 3 seconds long and has 130 log-mel frames, so the frames
of a set are taken to be exactly ``3.0 / 130`` s apart (:data:`FRAME_SECONDS`). The true hop
is 512 / 22,050 = 0.02322 s, and a clip's last frame is centred 102 samples before the next
clip's first, so this rounds the time of a frame by at most 0.02 s within a 3-second clip
and never accumulates across clips: far below the 0.5 s tolerance of the evaluation.

Taught in notebooks/09_applications.ipynb
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import mir_eval
import numpy as np
import pandas as pd
from scipy.signal import find_peaks
from scipy.spatial.distance import cdist

from .checks import require_positive_int
from .data.features import CLIP_SECONDS, N_FRAMES, N_MELS, mfcc

__all__ = [
    "DANCE_GENRES",
    "once_per_set",
    "FRAME_SECONDS",
    "TuneSet",
    "band_windows",
    "checkerboard_kernel",
    "evaluate_segmentation",
    "make_tune_sets",
    "mfcc",
    "mfcc_windows",
    "novelty_curve",
    "novelty_times",
    "pick_boundaries",
    "plot_segmentation",
    "score_boundaries",
    "segment",
    "self_similarity",
    "set_windows",
    "sliding_windows",
    "window_starts",
    "window_times",
]

FRAME_SECONDS = CLIP_SECONDS / N_FRAMES
"""Seconds between two log-mel frames of a set: a 3-second clip is 130 frames (see above)."""

DANCE_GENRES = ("reel", "jig", "hornpipe", "strathspey")
"""The genres that folk musicians play in sets."""

WINDOW = N_FRAMES
"""Frames per analysis window: one clip's worth (3 s), what the networks take as input."""

HOP = 22
"""Frames between the starts of two windows: 22 x 3/130 s = 0.51 s."""

# The defaults below were chosen for the MFCC baseline on sets of the workshop validation split
# (tunes of 15 to 18 s); shorter tunes call for a smaller kernel and distance.

KERNEL_SIZE = 40
"""Default width of the checkerboard kernel in windows: 20 windows (about 10 s) on each side."""

GAP = 2
"""Default windows the kernel ignores on each side of a candidate boundary (see :func:`novelty_curve`)."""

THRESHOLD = 0.5
"""Default least height of a novelty peak (the curve's maximum is 1)."""

MIN_DISTANCE_S = 8.0
"""Default least time between two boundaries, in seconds."""

DISTANCES = ("cosine", "euclidean")
"""The distances :func:`self_similarity` accepts."""


# --------------------------------------------------------------------------------------------
# Sets of tunes with known boundaries
# --------------------------------------------------------------------------------------------


@dataclass
class TuneSet:
    """Several tunes played one after another, with the times where each tune starts.

    Attributes:
        logmel: (128, T) float32 log-mel spectrogram in dB of the whole set.
        boundaries_s: (n_tunes + 1,) reference boundary times in seconds, ascending: 0, the
            start of every tune after the first, and the end of the set (its duration).
        version_ids: The version (rendering) of each tune, in the order they are played.
        frame_seconds: Seconds between two frames of ``logmel``.
    """

    logmel: np.ndarray
    boundaries_s: np.ndarray
    version_ids: list[str]
    frame_seconds: float = FRAME_SECONDS

    @property
    def n_frames(self) -> int:
        """Number of log-mel frames, T."""
        return self.logmel.shape[1]

    @property
    def duration(self) -> float:
        """Length of the set in seconds: T frames of ``frame_seconds`` each."""
        return self.n_frames * self.frame_seconds


def make_tune_sets(data, n_sets, tunes_per_set=4, genres=DANCE_GENRES, same_instrument=False, seed=0):
    """Build sets of tunes with known boundaries from the versions of a dataset.

    Each set plays ``tunes_per_set`` versions of distinct pieces, in a random order. A version
    is a whole rendering of a piece: its clips follow each other without gap or overlap
    (clip k starts at 3k s), so joining their log-mel spectrograms along time, in clip order,
    gives the log-mel spectrogram of the version. The versions of a set are then joined end
    to end.

    Every tune but the first loses a random number of frames (0 to 129) from its start.
    Without this, every boundary would fall on a multiple of 3 s, exactly where the
    3-second analysis windows can line up with it, which would make the task easier
    than it is for real recordings.

    Sets are drawn independently, so one version can be played in several sets.

    Args:
        data: A :class:`mlcourse.data.ClipDataset`, usually one split of it, e.g.
            ``load_dataset("workshop", split="test")``.
        n_sets: Number of sets to build.
        tunes_per_set: Tunes in each set, at least 2 (one boundary).
        genres: The genres the tunes are drawn from.
        same_instrument: If True, all the tunes of a set are played by one instrument
            family (the ``instrument`` column), as when one band plays the whole set. The
            family of each set is drawn among those with versions of enough distinct pieces.
        seed: Seed of the random draws; the same seed gives the same sets.

    Returns:
        A list of ``n_sets`` :class:`TuneSet`.

    Raises:
        ValueError: If ``n_sets`` or ``tunes_per_set`` is not valid, a genre is not in the
            data, the data has versions of fewer than ``tunes_per_set`` distinct pieces of
            those genres (or, with ``same_instrument``, no instrument family has), or a
            version's clips are not consecutive.

    Taught in notebooks/09_applications.ipynb
    """
    require_positive_int(n_sets, "n_sets")
    require_positive_int(tunes_per_set, "tunes_per_set")
    if tunes_per_set < 2:
        raise ValueError(f"tunes_per_set must be at least 2 (a set of one tune has no boundary), got {tunes_per_set}")
    meta = data.meta
    missing = [column for column in ("piece_id", "version_id", "genre", "instrument", "clip") if column not in meta]
    if missing:
        raise ValueError(f"the data's metadata lacks the column(s) {', '.join(missing)}")
    genres = [genres] if isinstance(genres, str) else list(genres)
    known = sorted(meta.genre.unique())
    unknown = [genre for genre in genres if genre not in known]
    if not genres or unknown:
        raise ValueError(f"unknown genre(s) {unknown or 'none given'}: the data has {', '.join(known)}")

    # One row per version: its piece, its instrument family, and its clips' rows in clip order.
    clips = meta[meta.genre.isin(genres)].sort_values(["version_id", "clip"])
    versions = clips.groupby("version_id", sort=True).agg(
        piece_id=("piece_id", "first"),
        instrument=("instrument", "first"),
        first_clip=("clip", "min"),
        last_clip=("clip", "max"),
        n_clips=("clip", "size"),
    )
    with_holes = versions[versions.last_clip - versions.first_clip + 1 != versions.n_clips].index
    if len(with_holes):
        raise ValueError(
            f"the clips of version {with_holes[0]!r} are not consecutive (clips "
            f"{sorted(clips[clips.version_id == with_holes[0]]['clip'])}): a set needs whole versions"
        )
    rows_of = {version: rows.index.to_numpy() for version, rows in clips.groupby("version_id", sort=True)}
    positions = pd.Series(np.arange(len(meta)), index=meta.index)  # row label -> position in data.logmel

    # The pool of versions each set is drawn from: all of them, or one pool per instrument family.
    pieces_of = versions.groupby("instrument").piece_id.nunique()
    if same_instrument:
        families = sorted(pieces_of[pieces_of >= tunes_per_set].index)
        if not families:
            raise ValueError(
                f"no instrument family has versions of {tunes_per_set} distinct {'/'.join(genres)} pieces "
                f"(the most is {pieces_of.max()}, by {pieces_of.idxmax()}): ask for fewer tunes_per_set "
                f"or use same_instrument=False"
            )
    elif versions.piece_id.nunique() < tunes_per_set:
        raise ValueError(
            f"the data has versions of only {versions.piece_id.nunique()} distinct "
            f"{'/'.join(genres)} pieces, fewer than tunes_per_set={tunes_per_set}"
        )

    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n_sets):
        pool = versions
        if same_instrument:
            pool = versions[versions.instrument == families[rng.integers(len(families))]]
        # Distinct pieces in a random order, then one random version of each.
        pieces = sorted(pool.piece_id.unique())
        chosen = [pieces[i] for i in rng.permutation(len(pieces))[:tunes_per_set]]
        version_ids = []
        for piece in chosen:
            candidates = sorted(pool.index[pool.piece_id == piece])
            version_ids.append(candidates[rng.integers(len(candidates))])

        tunes = []
        for position, version in enumerate(version_ids):
            # (clips, 128, 130) -> (128, clips * 130): the clips side by side along time.
            clip_logmels = np.asarray(data.logmel[positions[rows_of[version]].to_numpy()], dtype=np.float32)
            tune = np.concatenate(list(clip_logmels), axis=1)
            trim = 0 if position == 0 else int(rng.integers(0, N_FRAMES))
            tunes.append(tune[:, trim:])
        starts = np.cumsum([0] + [tune.shape[1] for tune in tunes])
        sets.append(
            TuneSet(logmel=np.concatenate(tunes, axis=1), boundaries_s=starts * FRAME_SECONDS, version_ids=version_ids)
        )
    return sets


# --------------------------------------------------------------------------------------------
# Windows and features
# --------------------------------------------------------------------------------------------


def window_starts(n_frames, window=WINDOW, hop=HOP):
    """The first frame of every analysis window: 0, hop, 2 hop, ... while the window fits.

    Args:
        n_frames: Frames of the spectrogram.
        window: Frames per window.
        hop: Frames between the starts of two windows.

    Returns:
        (W,) int array of start frames.

    Raises:
        ValueError: If an argument is not a positive integer or the spectrogram is shorter
            than one window.

    Taught in notebooks/09_applications.ipynb
    """
    for value, name in ((n_frames, "n_frames"), (window, "window"), (hop, "hop")):
        require_positive_int(value, name)
    if n_frames < window:
        raise ValueError(f"the spectrogram has {n_frames} frames, fewer than one window of {window}")
    return np.arange(0, n_frames - window + 1, hop)


def window_times(n_frames, window=WINDOW, hop=HOP, frame_seconds=FRAME_SECONDS):
    """The time of the centre of every analysis window, in seconds.

    Frame t covers the time from ``t * frame_seconds`` to ``(t + 1) * frame_seconds``, so a
    window of ``window`` frames starting at frame s is centred at ``(s + window / 2) *
    frame_seconds``: the first window of 130 frames is centred at 1.5 s.

    Args:
        n_frames, window, hop: As in :func:`window_starts`.
        frame_seconds: Seconds between two frames.

    Returns:
        (W,) float array of times.

    Taught in notebooks/09_applications.ipynb
    """
    return (window_starts(n_frames, window, hop) + window / 2) * frame_seconds


def sliding_windows(logmel, window=WINDOW, hop=HOP):
    """Cut a long spectrogram into overlapping windows, each the size of one clip.

    Args:
        logmel: (128, T) log-mel spectrogram, e.g. ``tune_set.logmel``.
        window: Frames per window.
        hop: Frames between the starts of two windows.

    Returns:
        (W, 128, window) float32 array (a copy): window i is ``logmel[:, starts[i]:starts[i] +
        window]`` with ``starts = window_starts(T, window, hop)``.

    Raises:
        ValueError: If ``logmel`` is not 2-D or is shorter than one window.

    Taught in notebooks/09_applications.ipynb
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    if logmel.ndim != 2:
        raise ValueError(f"logmel must be (bands, frames), got shape {logmel.shape}")
    starts = window_starts(logmel.shape[1], window, hop)
    # (bands, T - window + 1, window) view of every possible window, of which we keep every hop-th.
    every_window = np.lib.stride_tricks.sliding_window_view(logmel, window, axis=1)
    return np.ascontiguousarray(every_window[:, starts].transpose(1, 0, 2))


def mfcc_windows(logmel_windows, n_mfcc=20):
    """The MFCC baseline: each window described by the mean and spread of its MFCCs.

    Each window gets the mean and the standard deviation over its frames of each MFCC, then
    each of these 2 x ``n_mfcc`` dimensions is standardised over the windows of the set
    (mean 0, standard deviation 1), so that the loud first coefficient does not decide every
    comparison alone. A dimension that does not vary is set to 0.

    Args:
        logmel_windows: (W, 128, window) log-mel windows, from :func:`sliding_windows`.
        n_mfcc: MFCCs per frame.

    Returns:
        (W, 2 * n_mfcc) float32 array: the means, then the standard deviations.

    Raises:
        ValueError: If ``logmel_windows`` is not 3-D, or ``n_mfcc`` is not valid.

    Taught in notebooks/09_applications.ipynb
    """
    logmel_windows = np.asarray(logmel_windows, dtype=np.float32)
    if logmel_windows.ndim != 3:
        raise ValueError(f"logmel_windows must be (windows, bands, frames), got shape {logmel_windows.shape}")
    return _pooled_over_frames(mfcc(logmel_windows, n_mfcc).astype(np.float64))  # (W, n_mfcc, frames)


def band_windows(logmel_windows):
    """Pooled log-mel: each window described by the mean and spread of each of its mel bands.

    The window-level counterpart of the course's pooled log-mel baseline: per band, the mean
    and the standard deviation over the window's frames, each dimension then standardised
    over the windows of the set, as :func:`mfcc_windows` does. The MFCCs keep the first 20
    coefficients of a DCT over the bands, a smooth outline of the spectrum (the timbre); the
    bands themselves also keep where the partials are, i.e. the pitches, and so the key and
    the register, which change from one tune to the next even on one instrument.

    Args:
        logmel_windows: (W, 128, window) log-mel windows, from :func:`sliding_windows`.

    Returns:
        (W, 256) float32 array: the 128 band means, then the 128 standard deviations.

    Taught in notebooks/09_applications.ipynb
    """
    logmel_windows = np.asarray(logmel_windows, dtype=np.float64)
    if logmel_windows.ndim != 3:
        raise ValueError(f"logmel_windows must be (windows, bands, frames), got shape {logmel_windows.shape}")
    return _pooled_over_frames(logmel_windows)


def _pooled_over_frames(windows):
    """(W, rows, frames) -> (W, 2 rows): each row's mean and spread over the frames.

    Each dimension is then standardised over the windows (mean 0, standard deviation 1; a
    constant one to 0).
    """
    features = np.concatenate([windows.mean(axis=2), windows.std(axis=2)], axis=1)
    spread = features.std(axis=0)
    return ((features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)).astype(np.float32)


def set_windows(sets, describe=band_windows, window=WINDOW, hop=HOP):
    """The windows of many sets, described and stacked, for training on them without labels.

    Args:
        sets: :class:`TuneSet` list.
        describe: Function from a set's (W, 128, window) log-mel windows to (W, D) features,
            e.g. :func:`band_windows`.
        window, hop: See :func:`sliding_windows`.

    Returns:
        ``(features, recordings, positions)``: (N, D) float32 features of all windows of all
        sets; (N,) the set of each window; (N,) its place in its set, 0, 1, 2, ... What
        :class:`mlcourse.data.samplers.NearFarTripletBatches` draws from.

    Taught in notebooks/09_applications.ipynb
    """
    if len(sets) == 0:
        raise ValueError("sets is empty: make some with make_tune_sets")
    described = [
        np.asarray(describe(sliding_windows(tune_set.logmel, window, hop)), dtype=np.float32) for tune_set in sets
    ]
    recordings = np.concatenate([np.full(len(features), index) for index, features in enumerate(described)])
    positions = np.concatenate([np.arange(len(features)) for features in described])
    return np.concatenate(described), recordings, positions


# --------------------------------------------------------------------------------------------
# Self-similarity, novelty and boundaries
# --------------------------------------------------------------------------------------------


def self_similarity(features, distance="cosine"):
    """The self-similarity matrix (SSM): how alike every two windows are.

    * ``"cosine"``: the cosine of the angle between the two feature vectors, from -1
      (opposite) to 1 (same direction); the natural choice for L2-normalised embeddings.
      Centre the features over the set first (subtract their mean window): embeddings of
      one kind of music all point roughly the same way, their cosines are all near 1, and
      the novelty curve's zero padding then outweighs every boundary inside the set.
      :func:`mfcc_windows` standardises its features, so they are centred already.
    * ``"euclidean"``: ``exp(-d / m)``, where d is the Euclidean distance between the two
      vectors and m the median distance between two distinct windows of the set: 1 for
      equal vectors, about 0.37 for a typical pair, towards 0 for far apart ones. Dividing by
      the median makes the scale of the features irrelevant.

    Args:
        features: (W, D) feature vector of each window, in time order.
        distance: ``"cosine"`` or ``"euclidean"``.

    Returns:
        (W, W) symmetric float64 array; its diagonal is 1 (a window is like itself).

    Raises:
        ValueError: If ``features`` is not a 2-D array of finite numbers, or ``distance`` is
            not one of the above.

    Taught in notebooks/09_applications.ipynb
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) == 0 or not np.isfinite(features).all():
        raise ValueError(
            f"features must be a (windows, dimensions) array of finite numbers, got shape {features.shape}"
        )
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(map(repr, DISTANCES))}, got {distance!r}")
    if distance == "cosine":
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        unit = features / np.where(norms > 0, norms, 1.0)  # an all-zero window stays zero
        ssm = unit @ unit.T
        np.fill_diagonal(ssm, 1.0)
        return np.clip(ssm, -1.0, 1.0)
    distances = cdist(features, features)  # (W, W) Euclidean distances
    off_diagonal = distances[~np.eye(len(features), dtype=bool)]
    median = np.median(off_diagonal) if len(off_diagonal) else 0.0
    return np.exp(-distances / (median if median > 0 else 1.0))


def checkerboard_kernel(kernel_size, gap=0):
    """Foote's checkerboard kernel with a Gaussian taper, of size ``kernel_size`` x ``kernel_size``.

    Split in four quarters: +1 on the two quarters that compare the past with the past and
    the future with the future, -1 on the two that compare the past with the future. Each
    entry is then multiplied by a Gaussian of its distance to the centre (standard deviation
    a quarter of the kernel), so that the windows nearest the candidate boundary count most.
    The ``gap`` rows and columns nearest the centre on each side are set to 0.

    Args:
        kernel_size: Even number of windows, at least 2.
        gap: Windows ignored on each side of the centre, fewer than ``kernel_size / 2``.

    Returns:
        (kernel_size, kernel_size) float64 array.

    Raises:
        ValueError: If ``kernel_size`` is not an even positive integer or ``gap`` is not in
            [0, kernel_size / 2).

    Taught in notebooks/09_applications.ipynb
    """
    require_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2:
        raise ValueError(f"kernel_size must be even (as many windows before as after), got {kernel_size}")
    half = kernel_size // 2
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or not 0 <= gap < half:
        raise ValueError(f"gap must be an integer from 0 to kernel_size / 2 - 1 = {half - 1}, got {gap!r}")
    offsets = np.arange(-half, half) + 0.5  # distance of each row from the centre: -half + 0.5 ... half - 0.5
    taper = np.exp(-0.5 * (offsets / (half / 2)) ** 2)
    taper[np.abs(offsets) < gap] = 0.0  # the gap windows nearest the centre on each side
    signed = np.sign(offsets) * taper
    return np.outer(signed, signed)


def novelty_curve(ssm, kernel_size=KERNEL_SIZE, gap=GAP):
    """Foote's novelty: how much each window starts something new.

    ``novelty[n]`` compares the ``kernel_size / 2`` windows before window n with the
    ``kernel_size / 2`` windows from window n on: it is the sum of the SSM's entries around
    the point (n, n) of its diagonal, weighted by :func:`checkerboard_kernel` (past with past
    and future with future count positively, past with future negatively). It is large when
    window n is the first window of a new section. Beyond the edges of the SSM the kernel
    sees zeros (zero padding). The curve is divided by its maximum, so that its highest peak
    is 1 and a threshold means the same for every set.

    Why a gap: a 3-second window that straddles a boundary holds the end of one tune and the
    start of the next. Its features match neither tune (the spread of its MFCCs, for one, is
    larger than within either), so the straddling windows form a short "section" of their
    own, and Foote's kernel (``gap=0``) peaks at *its* two edges, about 1 s before or after
    the boundary: outside the strict 0.5 s tolerance. Ignoring the ``gap`` windows nearest
    the candidate boundary on each side compares the tunes themselves. The default, 2
    windows on each side (about 2 s in all), was chosen on the validation split, where it
    raises the F-measure at 0.5 s of the MFCC baseline from about 0.3 to about 0.7.

    The value of window n describes the change *between* windows n - 1 and n: give it the
    time of :func:`novelty_times`, halfway between their centres.

    Args:
        ssm: (W, W) self-similarity matrix.
        kernel_size: Width of the kernel in windows, even; larger kernels look at longer
            stretches, so they miss short sections but are less fooled by changes within one.
        gap: Windows ignored on each side of the candidate boundary; 0 gives Foote's kernel.

    Returns:
        (W,) float64 array, at most 1 (zeros if no window is novel).

    Raises:
        ValueError: If ``ssm`` is not a square 2-D array of finite numbers, or ``kernel_size``
            or ``gap`` is not valid (see :func:`checkerboard_kernel`).

    Taught in notebooks/09_applications.ipynb
    """
    ssm = np.asarray(ssm, dtype=np.float64)
    if ssm.ndim != 2 or ssm.shape[0] != ssm.shape[1] or not np.isfinite(ssm).all():
        raise ValueError(f"ssm must be a square matrix of finite numbers, got shape {ssm.shape}")
    kernel = checkerboard_kernel(kernel_size, gap)
    half = kernel_size // 2
    padded = np.pad(ssm, half)  # zeros around the matrix
    # Window n of the SSM is row n + half of the padded matrix: the kernel's block starts half before it.
    novelty = np.array([np.sum(kernel * padded[n : n + kernel_size, n : n + kernel_size]) for n in range(len(ssm))])
    peak = novelty.max()
    return novelty / peak if peak > 0 else np.zeros_like(novelty)


def novelty_times(times):
    """The time of each novelty value: halfway between the centres of windows n - 1 and n.

    Args:
        times: (W,) centre of each window, from :func:`window_times`, evenly spaced.

    Returns:
        (W,) float array: ``times`` moved half a hop earlier.

    Raises:
        ValueError: If ``times`` is not a non-empty 1-D array.

    Taught in notebooks/09_applications.ipynb
    """
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(times) == 0:
        raise ValueError(f"times must be a non-empty 1-D array, got shape {times.shape}")
    hop_s = times[1] - times[0] if len(times) > 1 else 0.0
    return times - hop_s / 2


def pick_boundaries(
    novelty, times, threshold=THRESHOLD, min_distance_s=MIN_DISTANCE_S, n_boundaries=None, duration=None
):
    """The peaks of a novelty curve, as boundary times.

    A peak is a value higher than both its neighbours (``scipy.signal.find_peaks``); it
    becomes a boundary if it is at least ``threshold`` high. Of two peaks closer than
    ``min_distance_s``, only the higher one is kept: two tunes never follow each other
    within a few seconds. Given the ``duration``, the start (0 s) and the end of the
    recording count as boundaries too, and a peak closer than ``min_distance_s`` to either
    is dropped: near the ends, the kernel reaches into the zero padding of the SSM, which
    can raise small peaks that are not boundaries.

    With ``n_boundaries``, the threshold is ignored and the ``n_boundaries`` highest peaks
    are kept instead. This *oracle* setting needs the number of boundaries, which a real
    recording does not tell us; it separates two questions a learner should keep apart:
    does the novelty curve peak at the right places, and is the threshold well chosen?

    Args:
        novelty: (W,) novelty curve, from :func:`novelty_curve`.
        times: (W,) time of each novelty value in seconds (:func:`novelty_times`), evenly
            spaced.
        threshold: Least height of a boundary's peak.
        min_distance_s: Least time between two boundaries, in seconds.
        n_boundaries: If given, the number of boundaries to return (fewer if the curve has
            fewer peaks).
        duration: If given, the length of the recording in seconds (see above).

    Returns:
        Sorted float array of boundary times in seconds (0 and the end are not included).

    Raises:
        ValueError: If ``novelty`` and ``times`` differ in length, or ``min_distance_s`` or
            ``n_boundaries`` is not valid.

    Taught in notebooks/09_applications.ipynb
    """
    novelty, times = np.asarray(novelty, dtype=np.float64), np.asarray(times, dtype=np.float64)
    if novelty.ndim != 1 or novelty.shape != times.shape:
        raise ValueError(
            f"novelty and times must be 1-D arrays of the same length, got shapes {novelty.shape} and {times.shape}"
        )
    if min_distance_s < 0:
        raise ValueError(f"min_distance_s must be at least 0, got {min_distance_s}")
    if n_boundaries is not None:
        require_positive_int(n_boundaries, "n_boundaries")
    if len(times) < 3:
        return np.array([])  # no value has two neighbours
    hop_s = (times[-1] - times[0]) / (len(times) - 1)
    distance = max(1, int(np.ceil(min_distance_s / hop_s - 1e-9)))  # in samples of the curve
    height = None if n_boundaries is not None else threshold
    peaks, _ = find_peaks(novelty, height=height, distance=distance)
    if duration is not None:
        peaks = peaks[(times[peaks] >= min_distance_s) & (times[peaks] <= duration - min_distance_s)]
    if n_boundaries is not None:
        strongest = np.argsort(novelty[peaks], kind="stable")[::-1][:n_boundaries]
        peaks = np.sort(peaks[strongest])
    return times[peaks]


def segment(
    features,
    times,
    kernel_size=KERNEL_SIZE,
    gap=GAP,
    distance="cosine",
    threshold=THRESHOLD,
    min_distance_s=MIN_DISTANCE_S,
    n_boundaries=None,
    duration=None,
):
    """Segment one set: self-similarity, then novelty, then boundaries.

    Args:
        features: (W, D) feature vector of each window, in time order.
        times: (W,) centre of each window in seconds, from :func:`window_times`.
        kernel_size, gap: See :func:`novelty_curve`.
        distance: See :func:`self_similarity`.
        threshold, min_distance_s, n_boundaries, duration: See :func:`pick_boundaries`; pass
            ``duration=tune_set.duration``.

    Returns:
        ``(boundaries, novelty, ssm)``: boundary times in seconds, the (W,) novelty curve
        (whose values lie at :func:`novelty_times`) and the (W, W) SSM.

    Taught in notebooks/09_applications.ipynb
    """
    if len(features) != len(times):
        raise ValueError(f"features and times must have one row per window, got {len(features)} and {len(times)}")
    ssm = self_similarity(features, distance)
    novelty = novelty_curve(ssm, kernel_size, gap)
    boundaries = pick_boundaries(novelty, novelty_times(times), threshold, min_distance_s, n_boundaries, duration)
    return boundaries, novelty, ssm


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _intervals(boundaries_s, duration, name):
    """Segment intervals (n, 2) from boundary times, with 0 and the duration added."""
    boundaries_s = np.asarray(boundaries_s, dtype=np.float64).ravel()
    if not np.isfinite(boundaries_s).all() or (boundaries_s < 0).any() or (boundaries_s > duration).any():
        raise ValueError(f"{name} must be finite times between 0 and the duration {duration}, got {boundaries_s}")
    edges = np.unique(np.concatenate([[0.0], boundaries_s, [duration]]))
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _window_name(window):
    """0.5 -> '0.5', 3.0 -> '3'."""
    return f"{window:g}"


def score_boundaries(reference_s, estimated_s, duration, windows=(0.5, 3.0), trim=True):
    """Precision, recall and F-measure of estimated boundaries, as in MIREX.

    An estimated boundary is a hit if it lies within ``window`` seconds of a reference
    boundary, each boundary being matched at most once (``mir_eval.segment.detection``).
    Precision is the fraction of estimated boundaries that are hits, recall the fraction of
    reference boundaries that are found, F their harmonic mean. 0.5 s is the strict window,
    3 s the lenient one.

    ``mir_eval`` takes segments, not boundaries: both lists are turned into consecutive
    intervals from 0 to ``duration`` (0 and ``duration`` are added if missing).

    Args:
        reference_s: Reference boundary times in seconds (e.g. ``tune_set.boundaries_s``).
        estimated_s: Estimated boundary times in seconds.
        duration: Length of the recording in seconds.
        windows: The tolerances, in seconds.
        trim: If True, the first and last boundaries (0 and ``duration``) are not scored:
            they are known in advance, and counting them would flatter every method.

    Returns:
        A dict with ``"F@w"``, ``"P@w"`` and ``"R@w"`` for each window w, e.g. ``"F@0.5"``,
        ``"P@0.5"``, ``"R@0.5"``, ``"F@3"``, ... All are 0 when either list has no boundary
        to score.

    Raises:
        ValueError: If ``duration`` is not positive, a time is outside [0, duration], or a
            window is not positive.

    Taught in notebooks/09_applications.ipynb
    """
    if not np.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration}")
    if len(windows) == 0 or min(windows) <= 0:
        raise ValueError(f"windows must be positive tolerances in seconds, got {windows}")
    reference = _intervals(reference_s, duration, "reference_s")
    estimated = _intervals(estimated_s, duration, "estimated_s")
    scores = {}
    for window in windows:
        with warnings.catch_warnings():
            # mir_eval warns when a list has no boundary to score; the score of 0 says it already.
            warnings.filterwarnings("ignore", message=".*intervals are empty")
            precision, recall, f_measure = mir_eval.segment.detection(reference, estimated, window=window, trim=trim)
        name = _window_name(window)
        scores[f"F@{name}"], scores[f"P@{name}"], scores[f"R@{name}"] = f_measure, precision, recall
    return scores


def evaluate_segmentation(
    sets,
    embed_windows,
    kernel_size=KERNEL_SIZE,
    gap=GAP,
    distance="cosine",
    threshold=THRESHOLD,
    min_distance_s=MIN_DISTANCE_S,
    oracle_count=False,
    window=WINDOW,
    hop=HOP,
    windows=(0.5, 3.0),
):
    """Segment every set with one kind of feature and score it.

    Args:
        sets: :class:`TuneSet` list, from :func:`make_tune_sets`.
        embed_windows: Function from (W, 128, window) log-mel windows to (W, D) features
            (array or tensor), e.g. :func:`mfcc_windows` or, for a trained network,
            the embeddings of :func:`mlcourse.train.embed` minus their mean window (centred
            over the set: see :func:`self_similarity`).
        kernel_size, gap: See :func:`novelty_curve`.
        distance: See :func:`self_similarity`.
        threshold, min_distance_s: See :func:`pick_boundaries`.
        oracle_count: If True, each set gets as many boundaries as it really has (the oracle
            setting of :func:`pick_boundaries`) and the threshold is ignored.
        window, hop: See :func:`sliding_windows`.
        windows: Tolerances of :func:`score_boundaries`.

    Returns:
        A pandas DataFrame with one row per set: ``set``, ``n_tunes``, ``duration``,
        ``n_estimated`` (boundaries found) and the scores of :func:`score_boundaries`. Its
        ``.mean()`` gives the mean scores.

    Raises:
        ValueError: If ``sets`` is empty or ``embed_windows`` does not return one row per
            window.

    Taught in notebooks/09_applications.ipynb
    """
    if len(sets) == 0:
        raise ValueError("sets is empty: make some with make_tune_sets")
    rows = []
    for index, tune_set in enumerate(sets):
        windows_logmel = sliding_windows(tune_set.logmel, window, hop)
        features = np.asarray(embed_windows(windows_logmel))
        if features.ndim != 2 or len(features) != len(windows_logmel):
            raise ValueError(
                f"embed_windows must map ({len(windows_logmel)}, {N_MELS}, {window}) windows to "
                f"({len(windows_logmel)}, D) features, got shape {features.shape}"
            )
        times = window_times(tune_set.n_frames, window, hop, tune_set.frame_seconds)
        n_reference = len(tune_set.boundaries_s) - 2  # without 0 and the end
        boundaries, _, _ = segment(
            features,
            times,
            kernel_size,
            gap,
            distance,
            threshold,
            min_distance_s,
            n_boundaries=n_reference if oracle_count else None,
            duration=tune_set.duration,
        )
        scores = score_boundaries(tune_set.boundaries_s, boundaries, tune_set.duration, windows)
        rows.append(
            {
                "set": index,
                "n_tunes": len(tune_set.version_ids),
                "duration": tune_set.duration,
                "n_estimated": len(boundaries),
                **scores,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


def plot_segmentation(tune_set, ssm, novelty, times, estimated_s, title="", threshold=None):
    """Draw a set's self-similarity matrix and its novelty curve, with the boundaries.

    Top: the SSM, time on both axes, with the reference boundaries as lines: each tune
    should be a bright square (the grey margins are the first and last 1.5 s, where no
    window is centred). Bottom: the novelty curve on the same time axis, with the
    reference boundaries (solid) and the estimated ones (dashed).

    Args:
        tune_set: The :class:`TuneSet`.
        ssm: (W, W) self-similarity matrix of its windows.
        novelty: (W,) novelty curve.
        times: (W,) centre of each window in seconds (:func:`window_times`).
        estimated_s: Estimated boundary times in seconds.
        title: Title above the figure.
        threshold: If given, drawn as a dotted horizontal line on the novelty curve.

    Returns:
        The matplotlib Figure.

    Taught in notebooks/09_applications.ipynb
    """
    times = np.asarray(times, dtype=np.float64)
    boundaries = np.asarray(tune_set.boundaries_s)
    reference = boundaries[1:-1]
    hop_s = times[1] - times[0] if len(times) > 1 else tune_set.frame_seconds
    # Each SSM pixel covers one hop around its window's centre.
    first, last = times[0] - hop_s / 2, times[-1] + hop_s / 2

    # Two rows (SSM, novelty) and a narrow column for the colour bar, so both plots have the same width.
    figure = plt.figure(figsize=(7.5, 9.5), layout="constrained")
    grid = figure.add_gridspec(2, 2, height_ratios=(3, 1), width_ratios=(1, 0.03))
    top, bottom = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[1, 0])
    bottom.sharex(top)

    image = top.imshow(
        ssm, origin="lower", cmap="magma", interpolation="nearest", aspect="auto", extent=(first, last, first, last)
    )
    for boundary in reference:
        top.axvline(boundary, color="white", linewidth=1, alpha=0.8)
        top.axhline(boundary, color="white", linewidth=1, alpha=0.8)
    for k, (start, end) in enumerate(zip(boundaries[:-1], boundaries[1:])):
        top.text(
            (start + end) / 2,
            (start + end) / 2,
            f"tune {k + 1}",
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="round", facecolor="white", alpha=0.8, linewidth=0),
        )
    top.set(
        ylabel="time (s)",
        ylim=(0, tune_set.duration),
        facecolor="0.85",
        title=title or "Self-similarity of the windows, with the reference boundaries",
    )
    top.tick_params(labelbottom=False)
    figure.colorbar(image, cax=figure.add_subplot(grid[0, 1]), label="similarity")

    bottom.plot(novelty_times(times), novelty, color="tab:blue", linewidth=1.5, label="novelty")
    for i, boundary in enumerate(reference):
        bottom.axvline(boundary, color="black", linewidth=1.5, label="reference" if i == 0 else None)
    for i, boundary in enumerate(np.asarray(estimated_s)):
        bottom.axvline(boundary, color="tab:red", linestyle="--", linewidth=1.5, label="estimated" if i == 0 else None)
    if threshold is not None:
        bottom.axhline(threshold, color="grey", linestyle=":", linewidth=1.2, label="threshold")
    bottom.set(
        xlabel="time (s)",
        ylabel="novelty",
        xlim=(0, tune_set.duration),
        ylim=(min(0.0, float(np.min(novelty))) - 0.05, 1.35),
    )
    bottom.legend(loc="upper center", ncols=4, fontsize="small", facecolor="white", framealpha=0.95, edgecolor="none")
    bottom.grid(alpha=0.3)
    return figure


def once_per_set(features_of):
    """Wrap ``features_of(windows)`` so that each set's windows are described only once.

    :func:`evaluate_segmentation` describes a set's windows every time it segments the set;
    with a network as the description (and several kernels or thresholds to compare), the
    same embedding would be computed again and again.

    Args:
        features_of: ``features_of(windows) -> (W, F)`` array, e.g. an embedding.

    Returns:
        A function with the same call that remembers its results, keyed by the windows' shape
        and bytes.

    Taught in notebooks/09_applications.ipynb
    """
    cache = {}

    def cached(windows):
        key = (windows.shape, hash(windows.tobytes()))
        if key not in cache:
            cache[key] = np.asarray(features_of(windows))
        return cache[key]

    return cached
