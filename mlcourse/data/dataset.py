"""Load the rendered dataset: features, chroma, metadata, tags, piano rolls and each clip's audio.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .build import SIZES, cache_problem, cache_root, check_size, plan_versions, read_manifest, render_clips
from .clips import ClipDataset, check_split
from .collections import load_collection
from .features import CLIP_SAMPLES, SAMPLE_RATE


def _missing_cache(size: str, folder: Path, problem: str) -> str:
    return (
        f"{problem} at {folder}: build it with `python -m mlcourse.data build --size {size}` "
        f"(or set MLCOURSE_DATA to the folder that holds your cache)"
    )


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
        ValueError: unknown size or split, a cache built from another recipe, or a damaged cache
            (see :func:`mlcourse.data.build.cache_problem`); the message names the build command,
            which builds it again.
    """
    check_size(size)
    check_split(split)
    source = source or os.environ.get("MLCOURSE_DATASET")
    if source:
        return load_collection(source, split)
    folder = cache_root() / size
    manifest = read_manifest(folder)
    if manifest is None and not any(folder.glob("*.npy")):
        raise FileNotFoundError(_missing_cache(size, folder, f"no complete {size} dataset"))
    problem = cache_problem(folder, size)
    if problem:
        kind = "outdated" if "another recipe" in problem else "corrupt"
        raise ValueError(
            f"the {size} dataset at {folder} is {kind} ({problem}): rebuild it with "
            f"`python -m mlcourse.data build --size {size}`"
        )
    logmel = np.load(folder / "logmel.npy", mmap_mode="r")
    chroma = np.load(folder / "chroma.npy", mmap_mode="r")
    roll = np.load(folder / "pianoroll.npy", mmap_mode="r")
    tags = np.load(folder / "tags.npy")
    summary = np.load(folder / "summary.npy")
    meta = pd.read_csv(folder / "clips.csv", keep_default_na=False)
    data = ClipDataset(
        logmel=logmel,
        meta=meta,
        tags=tags,
        tag_names=manifest["tag_names"],
        summary=summary,
        chroma=chroma,
        packed_pianoroll=roll,
        audio_source=_RecipeAudio(size),
    )
    return data if split is None else data.subset(meta.split.to_numpy() == split)


class _RecipeAudio:
    """Re-renders a clip's version (deterministic, so identical to what the build heard)."""

    def __init__(self, size: str):
        self.size = size

    def __call__(self, clip: dict) -> np.ndarray:
        audio = _render_for_listening(self.size, clip["version_id"])
        first = int(round(clip["start_s"] * SAMPLE_RATE))
        return audio[first : first + CLIP_SAMPLES]


@lru_cache(maxsize=8)
def _render_for_listening(size: str, version_id: str) -> np.ndarray:
    plan = plan_versions(size)
    version = plan[plan.version_id == version_id].iloc[0].to_dict()
    return render_clips(version, SIZES[size]["clips_per_version"])["audio"]
