"""A small labelled audio folder the tests generate: four concepts, each heard in the sound."""

import itertools
from pathlib import Path

import numpy as np
import soundfile

from mlcourse.data import SAMPLE_RATE

HARMONICS = {
    "flutes": [1.0],
    "reeds": [1.0, 0.0, 0.6, 0.0, 0.4],
    "strings": [1.0, 0.5, 0.33, 0.25, 0.2],
    "organ": [1.0, 0.8, 0.0, 0.6, 0.0, 0.0, 0.0, 0.4],
}
NOTES_PER_SECOND = {"drone": 1, "march": 3, "reel": 8}
SCALE = {"bright": [0, 4, 7, 12], "dark": [0, 3, 7, 10]}
BASE_HZ = {"early": 196.0, "late": 392.0}


def tone(instrument, genre, mood, era, seconds, rng):
    """A melody: the instrument sets the timbre, the genre the note rate, the mood the scale,
    the era the register."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    steps = rng.choice(SCALE[mood], size=int(seconds * NOTES_PER_SECOND[genre]) + 1)
    frequency = BASE_HZ[era] * 2.0 ** (steps[(t * NOTES_PER_SECOND[genre]).astype(int)] / 12)
    phase = 2 * np.pi * np.cumsum(frequency) / SAMPLE_RATE
    sound = sum(a * np.sin(k * phase) for k, a in enumerate(HARMONICS[instrument], 1))
    sound += 0.01 * rng.standard_normal(len(t))
    return (0.3 * sound / np.abs(sound).max()).astype(np.float32)


def write_collection(folder: Path, copies: int = 1, seconds: float = 10.0) -> Path:
    """Write WAV files for every combination of labels, `copies` times, and their tags.csv.

    Returns:
        the path of tags.csv (columns file, genre, mood, instrument, era).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["file,genre,mood,instrument,era"]
    combos = itertools.product(NOTES_PER_SECOND, SCALE, HARMONICS, BASE_HZ, range(copies))
    for k, (genre, mood, instrument, era, copy) in enumerate(combos):
        name = f"{instrument}/{genre}-{mood}-{era}-{copy}.wav"
        (folder / instrument).mkdir(exist_ok=True)
        soundfile.write(folder / name, tone(instrument, genre, mood, era, seconds, rng), SAMPLE_RATE)
        rows.append(f"{name},{genre},{mood},{instrument},{era}")
    (folder / "tags.csv").write_text("\n".join(rows) + "\n")
    return folder / "tags.csv"
