"""The course's dataset: real scores from the music21 corpus, rendered offline.

``python -m mlcourse.data recipe`` writes the recipe (committed in ``data/``),
``python -m mlcourse.data build --size {smoke,workshop,full}`` renders it into a cache, and
:func:`load_dataset` loads a cache. :func:`load_audio_folder` gives a learner's own audio
files the same structure, and ``python -m mlcourse.data import`` (:func:`import_audio_folder`)
saves them as a collection every notebook loads when ``MLCOURSE_DATASET`` names it.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

from .build import CONCEPTS, SIZES, build_dataset, cache_root, recipe_dir
from .clips import ClipDataset
from .collections import import_audio_folder, load_audio_folder, load_collection
from .dataset import load_dataset
from .features import CLIP_SAMPLES, HOP_LENGTH, N_FRAMES, N_MELS, SAMPLE_RATE, compute_log_mel, compute_piano_roll

__all__ = [
    "CLIP_SAMPLES",
    "CONCEPTS",
    "ClipDataset",
    "HOP_LENGTH",
    "N_FRAMES",
    "N_MELS",
    "SAMPLE_RATE",
    "SIZES",
    "build_dataset",
    "cache_root",
    "compute_log_mel",
    "compute_piano_roll",
    "import_audio_folder",
    "load_audio_folder",
    "load_collection",
    "load_dataset",
    "recipe_dir",
]
