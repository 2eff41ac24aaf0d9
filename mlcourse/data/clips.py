"""The dataset's record type: clips with their features and labels, and the three splits.

A leaf module: the rendered dataset (:mod:`mlcourse.data.dataset`) and imported collections
(:mod:`mlcourse.data.collections`) both return a :class:`ClipDataset`.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from IPython.display import Audio

from .features import N_FRAMES, SAMPLE_RATE, SUMMARY_NAMES

SPLITS = ("train", "valid", "test")


@dataclass
class ClipDataset:
    """Clips with their features and labels.

    Attributes:
        logmel: (N, 128, 130) float16 log-mel spectrograms in dB.
        meta: pandas table, one row per clip: clip_id, piece_id, version_id, split, genre, mood,
            instrument, era, tempo_bpm, ..., prev_clip and next_clip (adjacency).
        tags: (N, T) uint8 multi-hot tag vectors; `tag_names` names the columns.
        tag_names: e.g. ['genre:chorale', ..., 'instrument:flutes', ...].
        summary: (N, 60) float32 time-averaged summary features (MFCC, chroma, spectral
            centroid, flatness, RMS, onset strength); `summary_names` names the columns.
        chroma: (N, 12, 130) float16 chroma on the log-mel frames: the energy of each pitch
            class (C, C#, ..., B) per frame, each frame scaled to a maximum of 1.
        packed_pianoroll: (N, 128, 17) uint8 bit-packed piano rolls, or None for audio folders.
        skipped: (file, reason) of every file of an audio folder that could not be used.
    """

    logmel: np.ndarray
    meta: pd.DataFrame
    tags: np.ndarray
    tag_names: list[str]
    summary: np.ndarray
    chroma: np.ndarray
    packed_pianoroll: np.ndarray | None
    audio_source: Callable[[dict], np.ndarray] = field(repr=False)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    summary_names = SUMMARY_NAMES

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def pianoroll(self) -> np.ndarray:
        """(N, 128, 130) bool piano rolls aligned with the log-mel frames."""
        if self.packed_pianoroll is None:
            raise ValueError("this dataset has no piano rolls: audio folders come without scores")
        return np.unpackbits(self.packed_pianoroll, axis=-1, count=N_FRAMES).astype(bool)

    @property
    def next_index(self) -> np.ndarray:
        """(N,) int: the row of the clip that follows each clip in its rendering, or -1."""
        row = pd.Series(np.arange(len(self.meta)), index=self.meta.clip_id)
        following = self.meta.next_clip.map(row)
        return following.fillna(-1).astype(int).to_numpy()

    def labels(self, concept: str) -> tuple[np.ndarray, list[str]]:
        """Integer labels of one concept, e.g. ``codes, classes = data.labels('genre')``.

        Returns:
            codes: (N,) int array indexing `classes`; classes: the sorted class names.
        """
        if concept not in self.meta.columns:
            raise ValueError(f"unknown concept {concept!r}: the metadata has {', '.join(self.meta.columns)}")
        classes = sorted(self.meta[concept].astype(str).unique())
        return self.meta[concept].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy(), classes

    def subset(self, rows) -> "ClipDataset":
        """The clips selected by a boolean mask or an index array, as a new dataset."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=int)
        return ClipDataset(
            logmel=np.asarray(self.logmel[rows]),
            meta=self.meta.iloc[rows].reset_index(drop=True),
            tags=self.tags[rows],
            tag_names=self.tag_names,
            summary=self.summary[rows],
            chroma=np.asarray(self.chroma[rows]),
            packed_pianoroll=None if self.packed_pianoroll is None else np.asarray(self.packed_pianoroll[rows]),
            audio_source=self.audio_source,
            skipped=self.skipped,
        )

    def audio(self, index: int) -> np.ndarray:
        """The audio of clip `index`: (66150,) float32 at 22,050 Hz (re-rendered, identical)."""
        return self.audio_source(self.meta.iloc[index].to_dict())

    def play(self, index: int):
        """An IPython audio player for clip `index`."""
        return Audio(self.audio(index), rate=SAMPLE_RATE, normalize=False)


def check_split(split: str | None) -> None:
    """Raise a ValueError naming the splits unless `split` is one of them or None."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)} or None")
