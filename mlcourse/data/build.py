"""Build the dataset cache from the recipe: render, cut clips, compute features.

``python -m mlcourse.data build --size {smoke,workshop,full}`` renders every version of the
size's pieces, cuts consecutive 3-second clips, computes their log-mel spectrograms, chroma and
piano rolls, and writes them with a metadata table into ``<cache>/<size>/``. The cache folder is
``$MLCOURSE_DATA`` if set, else ``data/cache/``. The build writes into a temporary folder and
renames it into place only once complete, so an interrupted build leaves nothing a later load
would accept; building again from the same recipe does nothing.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import repo_root
from .features import (
    CLIP_SECONDS,
    N_CHROMA,
    N_FRAMES,
    N_MELS,
    N_PITCHES,
    SUMMARY_NAMES,
    compute_clip_features,
    compute_piano_roll,
    cut_clips,
)
from .recipe import read_midi
from .render import INSTRUMENT_FAMILIES, family_of_program, render_version

SIZES = {
    "smoke": {"tiers": ["smoke"], "versions": 2, "clips_per_version": 3},
    "workshop": {"tiers": ["smoke", "workshop"], "versions": 3, "clips_per_version": 6},
    "full": {"tiers": ["smoke", "workshop", "full"], "versions": 4, "clips_per_version": 12},
}
CONCEPTS = ["genre", "mood", "instrument", "era"]
# Bump when the build code changes what it writes, so older caches are rebuilt.
BUILD_FORMAT = "4"
MANIFEST = "manifest.json"


def recipe_dir() -> Path:
    """The folder of the committed recipe (``data/`` at the repository root)."""
    return repo_root() / "data"


def cache_root() -> Path:
    """``$MLCOURSE_DATA`` if set, else ``data/cache/`` at the repository root."""
    return Path(os.environ.get("MLCOURSE_DATA") or recipe_dir() / "cache")


def check_size(size: str) -> str:
    """Return `size` if it is a known dataset size, else raise a ValueError naming them."""
    if size not in SIZES:
        raise ValueError(f"unknown dataset size {size!r}: choose one of {', '.join(SIZES)}")
    return size


def read_recipe(folder: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recipe's works and versions tables, merged with nothing.

    Raises:
        FileNotFoundError: the recipe is missing (it is committed in ``data/``).
    """
    folder = Path(folder or recipe_dir())
    if not (folder / "works.csv").exists() or not (folder / "versions.csv").exists():
        raise FileNotFoundError(
            f"no recipe in {folder}: it is committed with the course; recreate it with `python -m mlcourse.data recipe`"
        )
    works = pd.read_csv(folder / "works.csv", keep_default_na=False, dtype={"number": str})
    versions = pd.read_csv(folder / "versions.csv", keep_default_na=False)
    return works, versions


def recipe_hash(folder: Path | None = None) -> str:
    """SHA-256 of everything a build reads: the two tables, the MIDI files and the build format."""
    folder = Path(folder or recipe_dir())
    digest = hashlib.sha256(BUILD_FORMAT.encode())
    for path in [folder / "works.csv", folder / "versions.csv", *sorted((folder / "midi").glob("*.mid"))]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tag_names(works: pd.DataFrame, versions: pd.DataFrame) -> list[str]:
    """The tag vocabulary, e.g. 'genre:reel', 'instrument:flutes', the same for every size."""
    values = {
        "genre": sorted(works.genre.unique()),
        "mood": sorted(versions.mood.unique()),
        "instrument": list(INSTRUMENT_FAMILIES),
        "era": sorted(works.era.unique()),
    }
    return [f"{concept}:{value}" for concept in CONCEPTS for value in values[concept]]


def plan_versions(size: str, folder: Path | None = None) -> pd.DataFrame:
    """The versions a size renders, one row each, merged with their piece's fields."""
    works, versions = read_recipe(folder)
    spec = SIZES[check_size(size)]
    works = works[works.tier.isin(spec["tiers"])]
    versions = versions[versions.version <= spec["versions"]]
    return versions.merge(works, on="piece_id").sort_values("version_id").reset_index(drop=True)


def render_clips(version: dict, clips_per_version: int, folder: Path | None = None) -> dict:
    """Render one version and cut it into clips with features.

    Args:
        version: one row of :func:`plan_versions`, as a dict.
        clips_per_version: how many consecutive clips to cut.
        folder: the recipe folder (default ``data/``).

    Returns:
        dict with `audio` (samples,), `starts` (K,), `logmel` (K, 128, 130) float16,
        `summary` (K, 60) float32 summary features (see ``features.SUMMARY_NAMES``),
        `chroma` (K, 12, 130) float16 chroma (see ``features.chroma_from_power``),
        `pianoroll` (K, 128, 130) bool, `families` (K,) the instrument families heard in each
        clip (space-separated), `notes` (N, 5) the performed notes.
    """
    parts = read_midi(Path(folder or recipe_dir()) / "midi" / f"{version['piece_id']}.mid")
    start = min(p[0, 0] for p in parts if len(p)) * 60.0 / version["tempo_bpm"]
    audio, notes = render_version(parts, version, start + clips_per_version * CLIP_SECONDS + 0.05)
    clips, starts = cut_clips(audio, start, clips_per_version)
    if len(clips) != clips_per_version:
        raise RuntimeError(f"{version['version_id']}: rendered {len(clips)} clips, expected {clips_per_version}")
    logmel, summary, chroma = compute_clip_features(clips)
    pitched = notes[notes[:, 4] >= 0]  # drums have no pitch and no family
    roll = np.stack([compute_piano_roll(pitched[:, :3], s) for s in starts])
    programs = [int(p) for p in str(version["programs"]).split()]
    families = []
    for s in starts:
        heard = pitched[(pitched[:, 0] < s + CLIP_SECONDS) & (pitched[:, 1] > s), 4].astype(int)
        families.append(" ".join(sorted({family_of_program(programs[part]) for part in set(heard)})))
    return {
        "audio": audio,
        "starts": starts,
        "logmel": logmel.astype(np.float16),
        "summary": summary,
        "chroma": chroma.astype(np.float16),
        "pianoroll": roll,
        "families": families,
        "notes": notes,
    }


def _render_job(job: tuple[dict, int]) -> tuple:
    version, clips_per_version = job
    clips = render_clips(version, clips_per_version)
    return (
        clips["starts"],
        clips["families"],
        clips["logmel"],
        clips["summary"],
        clips["chroma"],
        np.packbits(clips["pianoroll"], axis=-1),
    )


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def clip_table(plan: pd.DataFrame, starts: list[np.ndarray], families: list[list[str]]) -> pd.DataFrame:
    """One metadata row per clip, with the adjacency (previous and next clip of its rendering).

    Args:
        plan: the versions rendered (see :func:`plan_versions`).
        starts: per version, (K,) clip start times in seconds.
        families: per version, the instrument families heard in each of its K clips.
    """
    rows = []
    for version, version_starts, version_families in zip(plan.to_dict("records"), starts, families):
        ids = [f"{version['version_id']}-c{k}" for k in range(len(version_starts))]
        for k, start in enumerate(version_starts):
            rows.append(
                {
                    "clip_id": ids[k],
                    "piece_id": version["piece_id"],
                    "version_id": version["version_id"],
                    "split": version["split"],
                    "collection": version["collection"],
                    "title": version["title"],
                    "genre": version["genre"],
                    "mood": version["mood"],
                    "instrument": version["instrument"],
                    "era": version["era"],
                    "families": version_families[k],
                    "programs": version["programs"],
                    "tempo_bpm": version["tempo_bpm"],
                    "transpose": version["transpose"],
                    "key": version["key"],
                    "mode": version["mode"],
                    "region": version["region"],
                    "clip": k,
                    "start_s": round(float(start), 6),
                    "prev_clip": ids[k - 1] if k > 0 else "",
                    "next_clip": ids[k + 1] if k + 1 < len(ids) else "",
                }
            )
    return pd.DataFrame(rows)


def tag_matrix(clips: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(N, T) uint8 multi-hot tags: one value per concept, every instrument family heard in the clip."""
    index = {name: i for i, name in enumerate(names)}
    tags = np.zeros((len(clips), len(names)), dtype=np.uint8)
    for row, clip in enumerate(clips.itertuples()):
        for concept in ("genre", "mood", "era"):
            tags[row, index[f"{concept}:{getattr(clip, concept)}"]] = 1
        for family in clip.families.split():
            tags[row, index[f"instrument:{family}"]] = 1
    return tags


def content_hash(folder: Path) -> str:
    """SHA-256 of a built cache's data files (not of its manifest)."""
    digest = hashlib.sha256()
    for name in ("logmel.npy", "summary.npy", "chroma.npy", "pianoroll.npy", "tags.npy", "clips.csv"):
        with open(folder / name, "rb") as file:
            for block in iter(lambda: file.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    """A cache's manifest, or None if it has none or it cannot be read."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def replacing(target: Path):
    """Write a folder atomically.

    Yields an empty partial folder beside `target`, which replaces `target` whole when the block
    ends, and is removed if it fails or is interrupted (partial folders left by a killed process
    are removed on the next write).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    partial.mkdir()
    try:
        yield partial
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def build_dataset(size: str = "workshop", workers: int | None = None, quiet: bool = False) -> Path:
    """Build (or find up to date) the dataset cache of one size.

    Args:
        size: 'smoke' (at most 300 clips, for tests), 'workshop' (the course) or 'full'.
        workers: parallel processes (default: the available cores, at most 4: each process
            holds its own synthesiser and torch, about 300 MB).
        quiet: no progress bar.

    Returns:
        the cache folder ``<cache root>/<size>``.
    """
    from tqdm.auto import tqdm

    check_size(size)
    target = cache_root() / size
    expected = recipe_hash()
    manifest = read_manifest(target)
    if manifest and manifest.get("recipe_hash") == expected:
        print(f"the {size} dataset in {target} is up to date with the recipe: nothing to do")
        return target

    started = time.perf_counter()
    works, versions = read_recipe()
    names = tag_names(works, versions)
    plan = plan_versions(size)
    per_version = SIZES[size]["clips_per_version"]
    n_clips = len(plan) * per_version
    with replacing(target) as partial:
        logmel = np.lib.format.open_memmap(
            partial / "logmel.npy", mode="w+", dtype=np.float16, shape=(n_clips, N_MELS, N_FRAMES)
        )
        chroma = np.lib.format.open_memmap(
            partial / "chroma.npy", mode="w+", dtype=np.float16, shape=(n_clips, N_CHROMA, N_FRAMES)
        )
        roll = np.lib.format.open_memmap(
            partial / "pianoroll.npy", mode="w+", dtype=np.uint8, shape=(n_clips, N_PITCHES, (N_FRAMES + 7) // 8)
        )
        summary = np.zeros((n_clips, len(SUMMARY_NAMES)), dtype=np.float32)
        jobs = [(version, per_version) for version in plan.to_dict("records")]
        starts, families = [], []
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers or min(4, os.cpu_count() or 1), initializer=_init_worker) as pool:
            results = pool.imap(_render_job, jobs, chunksize=2)
            progress = tqdm(
                results, total=len(jobs), desc=f"building {size}", unit="version", disable=quiet, mininterval=2.0
            )
            for index, (clip_starts, clip_families, clip_logmel, clip_summary, clip_chroma, clip_roll) in enumerate(
                progress
            ):
                rows = slice(index * per_version, (index + 1) * per_version)
                logmel[rows], summary[rows] = clip_logmel, clip_summary
                chroma[rows], roll[rows] = clip_chroma, clip_roll
                starts.append(clip_starts)
                families.append(clip_families)
        logmel.flush()
        chroma.flush()
        roll.flush()
        del logmel, chroma, roll
        clips = clip_table(plan, starts, families)
        clips.to_csv(partial / "clips.csv", index=False)
        np.save(partial / "tags.npy", tag_matrix(clips, names))
        np.save(partial / "summary.npy", summary)
        manifest = {
            "size": size,
            "recipe_hash": expected,
            "content_hash": content_hash(partial),
            "n_clips": n_clips,
            "tag_names": names,
            "summary_names": SUMMARY_NAMES,
            "build_format": BUILD_FORMAT,
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    print(f"built the {size} dataset: {n_clips} clips in {manifest['build_seconds']} s, into {target}")
    return target
