"""Compile the course's numba functions once, into numba's disk cache: ``python -m coursetools.warm``.

librosa (onsets, chroma, mel spectrograms) and umap-learn (the explorer's maps) are compiled by
numba the first time a process calls them: 15-30 s for librosa and about 10 s for UMAP on two
cores, in every notebook that uses them. librosa asks numba to keep the machine code on disk;
umap-learn does not, and :func:`mlcourse.explorer.import_umap` asks for it. Run once after
installing (``make install`` and ``binder/postBuild`` do): later processes load the compiled
functions instead of compiling them again. librosa is compiled first, before anything imports
torch.
"""

from __future__ import annotations

import time

import numpy as np

# The dataset's rate (mlcourse.data.features.SAMPLE_RATE), written out: importing mlcourse loads torch.
SAMPLE_RATE = 22050


def warm_librosa():
    """Call the librosa functions the dataset build and the notebooks use, on 3 s of noise."""
    import librosa

    y = np.random.default_rng(0).standard_normal(3 * SAMPLE_RATE).astype(np.float32)
    librosa.onset.onset_detect(y=y, sr=SAMPLE_RATE)
    librosa.feature.chroma_stft(y=y, sr=SAMPLE_RATE)
    librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE)


def warm_umap():
    """Draw one small explorer map with each distance (each compiles functions of its own)."""
    from mlcourse.distances import DISTANCES
    from mlcourse.explorer import project

    points = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    for distance in DISTANCES:
        project(points, "umap", distance)


def main():
    """Warm librosa, then umap-learn, and print how long each took."""
    for name, warm in (("librosa", warm_librosa), ("umap-learn", warm_umap)):
        start = time.perf_counter()
        warm()
        print(f"compiled {name}'s numba functions into the disk cache in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
