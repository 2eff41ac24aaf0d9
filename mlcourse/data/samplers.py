"""Batch samplers: which clips go into each training batch.

A metric-learning loss compares items *inside* a batch, so a batch must hold items that
belong together: a random batch of 64 clips from 10 genres has few pairs of the same genre
and many of different ones. The samplers here build batches on purpose:

- :class:`ClassBalancedBatches` draws P classes and K clips of each ("P x K" batches), so every
  clip has K - 1 positives and (P - 1) K negatives in its batch: what online mining needs;
- :class:`PairBatches` draws pairs, half of them of the same class (for a Siamese net);
- :class:`TripletBatches` draws (anchor, positive, negative) triplets at random (the offline
  alternative to mining);
- :class:`ConceptBalancedBatches` draws P x K batches of one concept after the other (genre,
  mood, ...), for a loss per concept (disentangled models);
- :class:`TrackBatches` draws P tracks x K clips of each, clips of one track far enough apart
  not to overlap, for track regularization (same-track clips as positives);
- :class:`RandomBatches` draws clips at random, no labels needed (self-supervised methods that
  make their own positives, e.g. two augmented views of each clip);
- :class:`AdjacentPairBatches` draws clips and the clip that follows each in its recording:
  adjacency as the only supervision;
- :class:`ConcatBatches` joins the batches of several samplers into one (e.g. P x K concept
  batches plus a few track pairs, for track regularization);
- :class:`NearFarTripletBatches` draws triplets of windows of one recording: a window, one
  near it (positive) and one far from it (negative), as McCallum (2019) learns features for
  segmentation without labels.

Each is an iterable of index arrays, one per batch, and draws an epoch from a generator
seeded by ``(seed, epoch)``: call ``set_epoch(epoch)`` before iterating (the training loop
does) to get a new, reproducible epoch each time.

Taught in notebooks/03_siamese_contrastive.ipynb, notebooks/04_triplet_mining.ipynb,
notebooks/06_disentangled.ipynb, notebooks/08_self_supervised.ipynb and
notebooks/09_applications.ipynb
"""

from __future__ import annotations

import numpy as np


class _EpochSampler:
    """Shared machinery: labels as class codes, members of each class, per-epoch seeding."""

    def __init__(self, labels, batches_per_epoch, seed):
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError(f"labels must be a non-empty 1-D array (one label per clip), got shape {labels.shape}")
        self.classes, self.codes = np.unique(labels, return_inverse=True)
        self.members = [np.flatnonzero(self.codes == c) for c in range(len(self.classes))]
        class_sizes = np.bincount(self.codes)
        self.has_partner = np.flatnonzero(class_sizes[self.codes] > 1)
        # Clips sorted by class, and where each clip and each class start in that order.
        self.by_class = np.argsort(self.codes, kind="stable")
        self.position = np.empty_like(self.by_class)
        self.position[self.by_class] = np.arange(len(self.codes))
        self.class_start = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
        self.class_sizes = class_sizes
        if batches_per_epoch is not None and int(batches_per_epoch) < 1:
            raise ValueError(f"batches_per_epoch must be a positive int, got {batches_per_epoch!r}")
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        """Choose which epoch the next iteration draws (each epoch has its own batches)."""
        self.epoch = int(epoch)

    def _generator(self):
        return np.random.default_rng([self.seed, self.epoch])

    def __iter__(self):
        rng = self._generator()
        for _ in range(len(self)):
            yield self._draw_batch(rng)

    def _require_pairs(self):
        if len(self.classes) < 2:
            raise ValueError("pairs and triplets need at least two classes in labels")
        if len(self.has_partner) == 0:
            raise ValueError("pairs and triplets need a class with at least two clips")

    def _draw_positives(self, rng, anchors):
        """For each anchor, another clip of its class (anchors must have one)."""
        codes = self.codes[anchors]
        sizes, starts = self.class_sizes[codes], self.class_start[codes]
        # Step 1 .. size - 1 places along the anchor's class: never back to the anchor.
        steps = 1 + (rng.random(len(anchors)) * (sizes - 1)).astype(np.int64)
        return self.by_class[starts + (self.position[anchors] - starts + steps) % sizes]

    def _draw_negatives(self, rng, anchors):
        """For each anchor, a random clip of another class (redrawn until it is one)."""
        negatives = rng.integers(len(self.codes), size=len(anchors))
        clash = self.codes[negatives] == self.codes[anchors]
        while clash.any():
            negatives[clash] = rng.integers(len(self.codes), size=int(clash.sum()))
            clash = self.codes[negatives] == self.codes[anchors]
        return negatives


class ClassBalancedBatches(_EpochSampler):
    """Batches of ``classes_per_batch`` classes x ``samples_per_class`` clips each.

    Args:
        labels: (N,) class label of every clip of the training set.
        classes_per_batch: P, classes in a batch (at most the number of classes).
        samples_per_class: K, clips per class in a batch; a class with fewer clips than K gives
            some of them twice.
        batches_per_epoch: Batches in an epoch; ``None`` gives about one pass over the data,
            ``N // (P K)`` batches.
        seed: Seed of the draws (with the epoch, see :meth:`set_epoch`).

    Example:
        >>> sampler = ClassBalancedBatches(["a", "a", "b", "b", "c", "c"], 2, 2, seed=0)
        >>> [len(batch) for batch in sampler]
        [4]

    Taught in notebooks/04_triplet_mining.ipynb
    """

    def __init__(self, labels, classes_per_batch, samples_per_class, batches_per_epoch=None, seed=0):
        super().__init__(labels, batches_per_epoch, seed)
        if not 1 <= int(classes_per_batch) <= len(self.classes):
            raise ValueError(
                f"classes_per_batch must be between 1 and the number of classes "
                f"({len(self.classes)}), got {classes_per_batch!r}"
            )
        if int(samples_per_class) < 2:
            raise ValueError(
                f"samples_per_class must be at least 2 (a clip needs a positive in its batch), "
                f"got {samples_per_class!r}"
            )
        self.classes_per_batch, self.samples_per_class = int(classes_per_batch), int(samples_per_class)

    @property
    def batch_size(self):
        return self.classes_per_batch * self.samples_per_class

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.codes) // self.batch_size)

    def _draw_batch(self, rng):
        classes = rng.choice(len(self.classes), self.classes_per_batch, replace=False)
        return np.concatenate(
            [
                rng.choice(
                    self.members[c], self.samples_per_class, replace=len(self.members[c]) < self.samples_per_class
                )
                for c in classes
            ]
        )


class PairBatches(_EpochSampler):
    """Batches of pairs: ``[first_0 .. first_{M-1}, second_0 .. second_{M-1}]``.

    Clip ``first_i`` is paired with ``second_i``; a fraction ``positive_fraction`` of the pairs
    share a class, the others do not. Use :func:`pair_halves` to split a batch.

    Args:
        labels: (N,) class label of every clip. Needs two classes, and a class with two clips.
        pairs_per_batch: M, pairs in a batch (the batch holds 2 M indices).
        positive_fraction: Share of same-class pairs.
        batches_per_epoch: ``None`` gives ``N // (2 M)`` batches.
        seed: Seed of the draws.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """

    def __init__(self, labels, pairs_per_batch, positive_fraction=0.5, batches_per_epoch=None, seed=0):
        super().__init__(labels, batches_per_epoch, seed)
        self._require_pairs()
        if not 0 <= positive_fraction <= 1:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
        self.pairs_per_batch = int(pairs_per_batch)
        self.positive_fraction = float(positive_fraction)

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.codes) // (2 * self.pairs_per_batch))

    def _draw_batch(self, rng):
        n_positive = int(round(self.positive_fraction * self.pairs_per_batch))
        positive_firsts = rng.choice(self.has_partner, n_positive)
        negative_firsts = rng.integers(len(self.codes), size=self.pairs_per_batch - n_positive)
        return np.concatenate(
            [
                positive_firsts,
                negative_firsts,
                self._draw_positives(rng, positive_firsts),
                self._draw_negatives(rng, negative_firsts),
            ]
        )


class TripletBatches(_EpochSampler):
    """Batches of random triplets: ``[anchors, positives, negatives]``, M of each.

    The positive shares the anchor's class, the negative does not; both are drawn at random,
    so many triplets are already satisfied (easy): the contrast with online mining.
    Use :func:`triplet_thirds` to split a batch.

    Args:
        labels: (N,) class label of every clip. Needs two classes, and a class with two clips.
        triplets_per_batch: M, triplets in a batch (the batch holds 3 M indices).
        batches_per_epoch: ``None`` gives ``N // (3 M)`` batches.
        seed: Seed of the draws.

    Taught in notebooks/04_triplet_mining.ipynb
    """

    def __init__(self, labels, triplets_per_batch, batches_per_epoch=None, seed=0):
        super().__init__(labels, batches_per_epoch, seed)
        self._require_pairs()
        self.triplets_per_batch = int(triplets_per_batch)

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.codes) // (3 * self.triplets_per_batch))

    def _draw_batch(self, rng):
        anchors = rng.choice(self.has_partner, self.triplets_per_batch)
        return np.concatenate(
            [
                anchors,
                self._draw_positives(rng, anchors),
                self._draw_negatives(rng, anchors),
            ]
        )


def pair_halves(batch):
    """Split a :class:`PairBatches` batch (or its embeddings) into ``(first, second)``."""
    half = len(batch) // 2
    return batch[:half], batch[half:]


def triplet_thirds(batch):
    """Split a :class:`TripletBatches` batch (or its embeddings) into anchors, positives, negatives."""
    third = len(batch) // 3
    return batch[:third], batch[third : 2 * third], batch[2 * third :]


class ConceptBalancedBatches(_EpochSampler):
    """P x K batches of one concept after the other: batch ``i`` balances concept ``i mod S``.

    Batch ``i`` of an epoch draws ``classes_per_batch`` classes of concept ``i mod S`` and
    ``samples_per_class`` clips of each, as :class:`ClassBalancedBatches` does for that
    concept's column. So the chosen concept surely has positives (K - 1 per clip) and
    negatives in the batch; the other concepts have them only by chance (often, with few
    classes; a concept loss with no positives in a batch adds nothing). Over S batches in a
    row every concept gets its balanced batch once.

    Args:
        labels: (N, S) class codes (or labels) of every clip, one column per concept.
        classes_per_batch: P, at most the number of classes of every concept.
        samples_per_class: K, at least 2.
        batches_per_epoch: ``None`` gives ``N // (P K)`` batches (at least S, one per concept).
        seed: Seed of the draws (with the epoch, see :meth:`set_epoch`).

    Raises:
        ValueError: If ``labels`` is not a non-empty (N, S) array, or P or K does not fit
            a concept (the message names its column).

    Example:
        >>> labels = [[0, 0], [0, 1], [1, 0], [1, 1]]
        >>> sampler = ConceptBalancedBatches(labels, 2, 2, seed=0)
        >>> [sampler.concept_of_batch(i) for i in range(len(sampler))]
        [0, 1]

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(self, labels, classes_per_batch, samples_per_class, batches_per_epoch=None, seed=0):
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.shape[0] == 0 or labels.shape[1] == 0:
            raise ValueError(
                f"labels must be a non-empty (clips, concepts) array, one column per concept, got shape {labels.shape}"
            )
        # The base class checks batches_per_epoch and keeps the seed; the draws themselves
        # are those of one ClassBalancedBatches per concept.
        super().__init__(labels[:, 0], batches_per_epoch, seed)
        self.per_concept = [
            self._concept_sampler(labels, column, classes_per_batch, samples_per_class)
            for column in range(labels.shape[1])
        ]
        self.batch_size = self.per_concept[0].batch_size

    @staticmethod
    def _concept_sampler(labels, column, classes_per_batch, samples_per_class):
        try:
            return ClassBalancedBatches(labels[:, column], classes_per_batch, samples_per_class)
        except ValueError as error:
            raise ValueError(f"concept column {column}: {error}") from error

    def __len__(self):
        return self.batches_per_epoch or max(len(self.per_concept), len(self.codes) // self.batch_size)

    def concept_of_batch(self, index):
        """The concept column that batch ``index`` of an epoch balances: ``index mod S``.

        Taught in notebooks/06_disentangled.ipynb
        """
        return index % len(self.per_concept)

    def __iter__(self):
        rng = self._generator()
        for index in range(len(self)):
            yield self.per_concept[self.concept_of_batch(index)]._draw_batch(rng)


class TrackBatches(_EpochSampler):
    """Batches of ``tracks_per_batch`` tracks x ``clips_per_track`` clips that do not overlap.

    For track regularization: the clips of one track are positives of each other, clips of
    other tracks negatives. The course's clips never overlap (clip ``i`` of a recording starts
    at ``3 i`` seconds), but two adjacent clips are near-trivial positives: the same phrase, often
    the same bar, the same room. So the clips drawn from one track are at least ``min_gap``
    clip positions apart (``min_gap=2`` skips a clip's neighbours). Lee et al. (ICASSP 2020)
    allowed segments of one track to overlap by up to half their length.

    Tracks that do not hold ``clips_per_track`` clips that far apart (e.g. tracks of 3 clips,
    ``clips_per_track=3`` and ``min_gap=2``) are skipped; :attr:`usable_tracks` lists those
    kept. A track's clips are drawn one after the other, in order of position, each uniformly
    among those far enough from the previous one that leave room for the rest: every draw
    succeeds, though not every spaced set is equally likely.

    Args:
        track_ids: (N,) track (version) id of every clip.
        clip_positions: (N,) integer position of every clip in its track (``meta.clip``).
        tracks_per_batch: P, tracks in a batch, at least 2 (a clip needs negatives).
        clips_per_track: K, clips of each track in a batch, at least 2.
        min_gap: Smallest difference of positions between two clips of a track, >= 1.
        batches_per_epoch: ``None`` gives ``N // (P K)`` batches.
        seed: Seed of the draws.

    Raises:
        ValueError: If the arrays differ in length or positions are not integers, a number is
            out of range, or fewer than P tracks are usable.

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(
        self, track_ids, clip_positions, tracks_per_batch, clips_per_track=2, min_gap=2, batches_per_epoch=None, seed=0
    ):
        super().__init__(track_ids, batches_per_epoch, seed)
        positions = np.asarray(clip_positions)
        if positions.shape != self.codes.shape or not np.issubdtype(positions.dtype, np.integer):
            raise ValueError(
                f"clip_positions must be (N,) integers like track_ids "
                f"{self.codes.shape}, got {positions.dtype} {positions.shape}"
            )
        self.tracks_per_batch, self.clips_per_track = int(tracks_per_batch), int(clips_per_track)
        self.min_gap = int(min_gap)
        if self.tracks_per_batch < 2 or self.clips_per_track < 2 or self.min_gap < 1:
            raise ValueError(
                f"need tracks_per_batch >= 2, clips_per_track >= 2 and min_gap >= 1, "
                f"got {tracks_per_batch!r}, {clips_per_track!r}, {min_gap!r}"
            )
        # Each track's clips sorted by position, and how many spaced clips fit from each on.
        self.sorted_members = [m[np.argsort(positions[m], kind="stable")] for m in self.members]
        self.positions = positions
        self.room = [self._spaced_counts(positions[m]) for m in self.sorted_members]
        self.usable_tracks = np.flatnonzero([r.max() >= self.clips_per_track for r in self.room])
        if len(self.usable_tracks) < self.tracks_per_batch:
            raise ValueError(
                f"only {len(self.usable_tracks)} tracks hold {self.clips_per_track} clips at least "
                f"{self.min_gap} positions apart, fewer than tracks_per_batch="
                f"{self.tracks_per_batch}: lower clips_per_track, min_gap or tracks_per_batch"
            )

    def _spaced_counts(self, sorted_positions):
        """For each clip, the most clips ``min_gap`` apart that start with it (greedily)."""
        counts = np.zeros(len(sorted_positions), dtype=np.int64)
        for j in range(len(sorted_positions) - 1, -1, -1):
            following = np.searchsorted(sorted_positions, sorted_positions[j] + self.min_gap)
            counts[j] = 1 + (counts[following] if following < len(counts) else 0)
        return counts

    @property
    def batch_size(self):
        return self.tracks_per_batch * self.clips_per_track

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.codes) // self.batch_size)

    def _draw_batch(self, rng):
        tracks = rng.choice(self.usable_tracks, self.tracks_per_batch, replace=False)
        return np.concatenate([self._draw_spaced_clips(rng, track) for track in tracks])

    def _draw_spaced_clips(self, rng, track):
        """``clips_per_track`` clips of ``track``, in order, each ``min_gap`` after the last."""
        members, room = self.sorted_members[track], self.room[track]
        positions = self.positions[members]
        chosen, earliest = [], positions[0]
        for still_needed in range(self.clips_per_track, 0, -1):
            candidates = np.flatnonzero((positions >= earliest) & (room >= still_needed))
            pick = candidates[rng.integers(len(candidates))]
            chosen.append(members[pick])
            earliest = positions[pick] + self.min_gap
        return np.asarray(chosen)


class ConcatBatches:
    """Batches made of one batch of each sampler, concatenated.

    ``ConcatBatches(concept_batches, track_batches)`` gives batches whose first rows come from
    the first sampler and the rest from the second: a loss that needs two kinds of positives
    in one batch (concepts and tracks, for track regularization) gets both.

    Args:
        *samplers: Samplers as in this module; ``set_epoch`` is passed on to each, and an epoch
            has as many batches as the shortest of them.

    Taught in notebooks/06_disentangled.ipynb
    """

    def __init__(self, *samplers):
        if not samplers:
            raise ValueError("ConcatBatches needs at least one sampler")
        self.samplers = samplers

    def set_epoch(self, epoch):
        """Choose the epoch of every sampler."""
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def __len__(self):
        return min(len(sampler) for sampler in self.samplers)

    def __iter__(self):
        for batches in zip(*self.samplers):
            yield np.concatenate(batches)


class RandomBatches(_EpochSampler):
    """Batches of ``batch_size`` distinct clips drawn at random, without labels.

    Args:
        n_items: Number of clips to draw from (indices 0 .. n_items - 1).
        batch_size: Clips per batch, at most ``n_items``.
        batches_per_epoch: ``None`` gives about one pass over the data, ``n_items // batch_size``.
        seed: Seed of the draws.

    Taught in notebooks/07_cross_modal.ipynb and notebooks/08_self_supervised.ipynb
    """

    def __init__(self, n_items, batch_size, batches_per_epoch=None, seed=0):
        n_items, batch_size = int(n_items), int(batch_size)
        if not 1 <= batch_size <= n_items:
            raise ValueError(f"batch_size must be between 1 and n_items={n_items}, got {batch_size}")
        super().__init__(np.zeros(n_items, dtype=np.int64), batches_per_epoch, seed)
        self.batch_size = batch_size

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.codes) // self.batch_size)

    def _draw_batch(self, rng):
        return rng.choice(len(self.codes), self.batch_size, replace=False)


class AdjacentPairBatches(_EpochSampler):
    """Batches of clips and their successors: ``[a_1 .. a_B, next(a_1) .. next(a_B)]``.

    Adjacency is the supervision of Bretan & Heck (2019): a clip and the one that follows it in
    the same recording are taken as similar, with no label at all. Split a batch with
    :func:`pair_halves` into the queries and their adjacent positives; the other queries'
    positives serve as negatives. With ``groups`` (the recording of each clip), the queries of
    a batch come from different recordings, so no negative is a clip of the query's own
    recording.

    Args:
        next_index: (N,) index of the clip that follows each clip, -1 for the last of its
            recording (``ClipDataset.next_index``).
        pairs_per_batch: B, pairs per batch.
        groups: Optional (N,) recording id of every clip; if given, the B queries of a batch
            come from B different recordings.
        batches_per_epoch: ``None`` gives ``(clips with a successor) // B`` batches.
        seed: Seed of the draws.

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(self, next_index, pairs_per_batch, groups=None, batches_per_epoch=None, seed=0):
        next_index = np.asarray(next_index)
        if next_index.ndim != 1 or not np.issubdtype(next_index.dtype, np.integer):
            raise ValueError(f"next_index must be a 1-D integer array, got {next_index.dtype} {next_index.shape}")
        if next_index.max(initial=-1) >= len(next_index) or next_index.min(initial=-1) < -1:
            raise ValueError("next_index holds indices outside 0 .. N - 1 (and -1 for 'none')")
        groups = np.zeros(len(next_index), dtype=np.int64) if groups is None else np.asarray(groups)
        if groups.shape != next_index.shape:
            raise ValueError(f"groups must have one entry per clip {next_index.shape}, got {groups.shape}")
        self.next_index = next_index
        self.anchors = np.flatnonzero(next_index >= 0)
        super().__init__(groups[self.anchors], batches_per_epoch, seed)
        self.pairs_per_batch = int(pairs_per_batch)
        self.one_per_group = len(self.classes) > 1
        available = len(self.classes) if self.one_per_group else len(self.anchors)
        if not 2 <= self.pairs_per_batch <= available:
            what = "recordings" if self.one_per_group else "clips with a successor"
            raise ValueError(f"pairs_per_batch must be between 2 and the {available} {what}, got {pairs_per_batch!r}")

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.anchors) // self.pairs_per_batch)

    def _draw_batch(self, rng):
        if self.one_per_group:  # one query from each of B different recordings
            groups = rng.choice(len(self.classes), self.pairs_per_batch, replace=False)
            queries = np.array([self.members[g][rng.integers(len(self.members[g]))] for g in groups])
        else:
            queries = rng.choice(len(self.anchors), self.pairs_per_batch, replace=False)
        queries = self.anchors[queries]
        return np.concatenate([queries, self.next_index[queries]])


class NearFarTripletBatches(_EpochSampler):
    """Triplets of windows of one recording: ``[anchors, positives, negatives]``, M of each.

    The positive is at most ``near`` windows from its anchor (and not the anchor), the
    negative at least ``far`` windows from it, both in the anchor's recording, drawn
    uniformly among the windows that qualify. Music changes slowly within a section and
    more between sections, so near windows are usually alike and far ones usually not:
    a supervisory signal without any labels (McCallum, 2019). Use :func:`triplet_thirds` to
    split a batch.

    Args:
        recordings: (N,) the recording of every window.
        positions: (N,) the place of every window in its recording, 0, 1, 2, ... (windows of
            one recording equally spaced).
        triplets_per_batch: M, triplets in a batch (the batch holds 3 M indices).
        near: Largest distance of a positive from its anchor, in windows, at least 1.
        far: Least distance of a negative from its anchor, in windows, more than ``near``.
        batches_per_epoch: ``None`` gives ``N // (3 M)`` batches.
        seed: Seed of the draws.

    Raises:
        ValueError: If the distances are not ``1 <= near < far``, a recording's positions
            are not 0 .. n - 1, or a recording is too short to hold a window ``far`` from
            another (``far`` + 1 windows at least).

    Taught in notebooks/09_applications.ipynb
    """

    def __init__(self, recordings, positions, triplets_per_batch, near, far, batches_per_epoch=None, seed=0):
        super().__init__(recordings, batches_per_epoch, seed)
        if not 1 <= int(near) < int(far):
            raise ValueError(f"need 1 <= near < far (in windows), got near={near!r}, far={far!r}")
        self.near, self.far, self.triplets_per_batch = int(near), int(far), int(triplets_per_batch)
        self.positions = np.asarray(positions, dtype=np.int64)
        if self.positions.shape != self.codes.shape:
            raise ValueError(
                f"positions must have one entry per window ({len(self.codes)}), got shape {self.positions.shape}"
            )
        for code, members in enumerate(self.members):
            if sorted(self.positions[members]) != list(range(len(members))):
                raise ValueError(f"the positions of recording {self.classes[code]!r} are not 0 .. {len(members) - 1}")
        if self.class_sizes.min() <= self.far:
            raise ValueError(
                f"recording {self.classes[self.class_sizes.argmin()]!r} has {self.class_sizes.min()} "
                f"windows: too few for negatives {self.far} windows away; lower far"
            )
        # Window (recording r, position i) is row window_at[class_start[r] + i].
        self.window_at = np.empty_like(self.positions)
        self.window_at[self.class_start[self.codes] + self.positions] = np.arange(len(self.codes))

    def __len__(self):
        return self.batches_per_epoch or max(1, len(self.codes) // (3 * self.triplets_per_batch))

    def _draw_batch(self, rng):
        anchors = rng.integers(len(self.codes), size=self.triplets_per_batch)
        recording, place = self.codes[anchors], self.positions[anchors]
        length, start = self.class_sizes[recording], self.class_start[recording]
        # Positive: a step of 1 .. near, back or forth, reflected at the recording's ends.
        step = rng.integers(1, self.near + 1, size=len(anchors)) * rng.choice([-1, 1], size=len(anchors))
        positive = np.where((place + step < 0) | (place + step >= length), place - step, place + step)
        # Negative: uniform over the windows before place - far + 1 and from place + far on.
        before, after = np.maximum(0, place - self.far + 1), np.maximum(0, length - place - self.far)
        pick = (rng.random(len(anchors)) * (before + after)).astype(np.int64)
        negative = np.where(pick < before, pick, place + self.far + pick - before)
        return np.concatenate([anchors, self.window_at[start + positive], self.window_at[start + negative]])
