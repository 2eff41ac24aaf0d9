"""Load the dataset: features, chroma, metadata, tags, piano rolls and each clip's audio.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .build import SIZES, cache_root, check_size, plan_versions, read_manifest, recipe_hash, render_clips
from .features import (CLIP_SAMPLES, N_CHROMA, N_FRAMES, N_MELS, SAMPLE_RATE, SUMMARY_NAMES,
                       compute_clip_features, cut_clips)

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
            logmel=np.asarray(self.logmel[rows]), meta=self.meta.iloc[rows].reset_index(drop=True),
            tags=self.tags[rows], tag_names=self.tag_names, summary=self.summary[rows],
            chroma=np.asarray(self.chroma[rows]),
            packed_pianoroll=None if self.packed_pianoroll is None else np.asarray(self.packed_pianoroll[rows]),
            audio_source=self.audio_source, skipped=self.skipped)

    def audio(self, index: int) -> np.ndarray:
        """The audio of clip `index`: (66150,) float32 at 22,050 Hz (re-rendered, identical)."""
        return self.audio_source(self.meta.iloc[index].to_dict())

    def play(self, index: int):
        """An IPython audio player for clip `index`."""
        from IPython.display import Audio

        return Audio(self.audio(index), rate=SAMPLE_RATE, normalize=False)


def check_split(split: str | None) -> None:
    """Raise a ValueError naming the splits unless `split` is one of them or None."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)} or None")


def _missing_cache(size: str, folder: Path, problem: str) -> str:
    return (f"{problem} at {folder}: build it with `python -m mlcourse.data build --size {size}` "
            f"(or set MLCOURSE_DATA to the folder that holds your cache)")


def load_dataset(size: str = "workshop", split: str | None = None, source: str | None = None) -> ClipDataset:
    """Load a built dataset, or an imported collection of your own music.

    Args:
        size: 'smoke', 'workshop' or 'full' (notebooks pass their MLCOURSE_MODE).
        split: 'train', 'valid', 'test', or None for every clip.
        source: an imported collection's name or folder (see :mod:`mlcourse.data.collections`)
            to load instead of the rendered dataset; default ``$MLCOURSE_DATASET`` if set.

    Returns:
        a :class:`ClipDataset`; log-mel, chroma and piano rolls are memory-mapped, so loading is
        quick.

    Raises:
        FileNotFoundError: no complete cache of that size (the message names the build command).
        ValueError: unknown size or split, a cache built from another recipe, or a corrupt cache.
    """
    check_size(size)
    check_split(split)
    source = source or os.environ.get("MLCOURSE_DATASET")
    if source:
        from .collections import load_collection

        return load_collection(source, split)
    folder = cache_root() / size
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(_missing_cache(size, folder, f"no complete {size} dataset"))
    if manifest.get("recipe_hash") != recipe_hash():
        raise ValueError(f"the {size} dataset at {folder} was built from another recipe: rebuild it with "
                         f"`python -m mlcourse.data build --size {size}`")
    try:
        logmel = np.load(folder / "logmel.npy", mmap_mode="r")
        chroma = np.load(folder / "chroma.npy", mmap_mode="r")
        roll = np.load(folder / "pianoroll.npy", mmap_mode="r")
        tags = np.load(folder / "tags.npy")
        summary = np.load(folder / "summary.npy")
        meta = pd.read_csv(folder / "clips.csv", keep_default_na=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"the {size} dataset at {folder} is corrupt ({error}): delete the folder and "
                         f"rebuild with `python -m mlcourse.data build --size {size}`") from error
    n = manifest["n_clips"]
    if (logmel.shape != (n, N_MELS, N_FRAMES) or chroma.shape != (n, N_CHROMA, N_FRAMES)
            or any(len(part) != n for part in (roll, tags, meta, summary))):
        raise ValueError(f"the {size} dataset at {folder} is corrupt (its files disagree on the number "
                         f"of clips): delete the folder and rebuild with `python -m mlcourse.data build --size {size}`")
    data = ClipDataset(logmel=logmel, meta=meta, tags=tags, tag_names=manifest["tag_names"], summary=summary,
                       chroma=chroma, packed_pianoroll=roll, audio_source=_RecipeAudio(size))
    return data if split is None else data.subset(meta.split.to_numpy() == split)


class _RecipeAudio:
    """Re-renders a clip's version (deterministic, so identical to what the build heard)."""

    def __init__(self, size: str):
        self.size = size

    def __call__(self, clip: dict) -> np.ndarray:
        audio = _render_for_listening(self.size, clip["version_id"])
        first = int(round(clip["start_s"] * SAMPLE_RATE))
        return audio[first:first + CLIP_SAMPLES]


@lru_cache(maxsize=8)
def _render_for_listening(size: str, version_id: str) -> np.ndarray:
    plan = plan_versions(size)
    version = plan[plan.version_id == version_id].iloc[0].to_dict()
    return render_clips(version, SIZES[size]["clips_per_version"])["audio"]


def load_audio_folder(folder, tags_csv, concepts: list[str] | None = None,
                      clips_per_file: int = 10) -> ClipDataset:
    """Turn a folder of your own audio files and a CSV of their labels into a dataset.

    The CSV has a `file` column (paths relative to `folder`) and one column per concept, e.g.
    ``file,genre,mood,instrument,era``; several values of one concept are separated by ';'
    (the first one is the clip's label, all of them become tags). An optional `split` column
    says train / valid / test (default: train). Each file is cut into consecutive 3-second
    clips, as the course's own renderings are. Files that cannot be read are reported by name
    (in a warning and in `skipped`) and the others still load.

    Args:
        folder: the folder of audio files (anything librosa reads: wav, flac, ogg, mp3...).
        tags_csv: path of the CSV of labels.
        concepts: the label columns to use (default: every column but file and split).
        clips_per_file: the most clips cut from one file.

    Returns:
        a :class:`ClipDataset` without piano rolls (its chroma is computed from the audio);
        `audio(i)` reads clip i back from its file.

    Raises:
        ValueError: the CSV lacks `file` or a requested concept column, or no file could be read.
    """
    from tqdm.auto import tqdm

    folder, table = Path(folder), pd.read_csv(tags_csv, dtype=str, keep_default_na=False)
    concepts = list(concepts) if concepts is not None else [c for c in table.columns if c not in ("file", "split")]
    missing = [c for c in ["file", *concepts] if c not in table.columns]
    if missing or not concepts:
        raise ValueError(f"{tags_csv} lacks the column(s) {', '.join(missing) or 'for any concept'}: "
                         f"expected 'file' and one column per concept, found {', '.join(table.columns)}")
    # One file at a time: only its features are kept (float16), never the audio of the whole folder,
    # so a collection of thousands of files imports in the memory of a laptop.
    rows, features, skipped = [], [], []
    for record in tqdm(table.to_dict("records"), desc="reading audio", unit="file", leave=False):
        try:
            audio = _read_audio(folder / record["file"])
        except ValueError as error:
            skipped.append((record["file"], str(error)))
            continue
        clips, starts = cut_clips(audio, 0.0, clips_per_file)
        logmel, summary, chroma = compute_clip_features(clips)
        features.append((logmel.astype(np.float16), summary, chroma.astype(np.float16)))
        rows += _clip_rows(record, concepts, starts)
    if skipped:
        warnings.warn("could not use these files of " + str(folder) + ": "
                      + "; ".join(f"{name} ({reason})" for name, reason in skipped), stacklevel=2)
    if not rows:
        raise ValueError(f"no usable audio in {folder}: every file listed in {tags_csv} failed")
    meta = pd.DataFrame(rows)
    logmel, summary, chroma = (np.concatenate(part) for part in zip(*features))
    names, tags = _folder_tags(table, concepts, meta)
    return ClipDataset(logmel=logmel, meta=meta, tags=tags, tag_names=names, summary=summary,
                       chroma=chroma, packed_pianoroll=None, audio_source=FileAudio(folder),
                       skipped=skipped)


def _clip_rows(record: dict, concepts: list[str], starts) -> list[dict]:
    """The metadata rows of one file's clips: ids, labels (a concept's first value), adjacency."""
    ids = [f"{record['file']}#c{k}" for k in range(len(starts))]
    return [{"clip_id": ids[k], "piece_id": record["file"], "version_id": record["file"],
             "split": record.get("split") or "train", "file": record["file"],
             **{c: record[c].split(";")[0].strip() for c in concepts},
             "clip": k, "start_s": float(start),
             "prev_clip": ids[k - 1] if k else "", "next_clip": ids[k + 1] if k + 1 < len(ids) else ""}
            for k, start in enumerate(starts)]


class FileAudio:
    """A clip's audio, read back from its file in the audio folder (from the clip's `start_s`)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def __call__(self, clip: dict) -> np.ndarray:
        import librosa

        path = self.folder / clip["file"]
        if not path.exists():
            raise FileNotFoundError(f"{path} is gone: a clip's audio is read from its file, in the folder "
                                    "it was imported from")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True, offset=float(clip["start_s"]),
                                    duration=CLIP_SAMPLES / SAMPLE_RATE + 0.1)
        return np.pad(audio, (0, max(0, CLIP_SAMPLES - len(audio))))[:CLIP_SAMPLES]


def _read_audio(path: Path) -> np.ndarray:
    """Mono audio at 22,050 Hz, or a ValueError saying why the file cannot be used."""
    import librosa

    if not path.exists():
        raise ValueError("no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's audioread fallback warning; we report failures ourselves
            audio, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
    except Exception as error:  # soundfile and audioread raise many types for unreadable files
        raise ValueError(f"unreadable or unsupported audio: {type(error).__name__}") from error
    if len(audio) < CLIP_SAMPLES:
        raise ValueError(f"shorter than {CLIP_SAMPLES / SAMPLE_RATE:.0f} s")
    return audio


def _folder_tags(table: pd.DataFrame, concepts: list[str], meta: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Tag names 'concept:value' and each clip's multi-hot vector from the CSV's values."""
    values_of = {row["file"]: {f"{c}:{v.strip()}" for c in concepts for v in row[c].split(";") if v.strip()}
                 for row in table.to_dict("records")}
    names = sorted(set().union(*values_of.values()))
    index = {name: i for i, name in enumerate(names)}
    tags = np.zeros((len(meta), len(names)), dtype=np.uint8)
    for row, file in enumerate(meta.file):
        tags[row, [index[name] for name in values_of[file]]] = 1
    return names, tags
