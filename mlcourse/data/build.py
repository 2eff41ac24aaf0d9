"""Build the dataset cache from the recipe: render, cut clips, compute features.

``python -m mlcourse.data build --size {smoke,workshop,full}`` renders every version of the
size's pieces, cuts consecutive 3-second clips, computes their log-mel spectrograms, chroma and
piano rolls, and writes them with a metadata table into ``<cache>/<size>/``. The cache folder is
``$MLCOURSE_DATA`` if set, else ``data/cache/``. The build writes into a temporary folder and
renames it into place only once complete, so an interrupted build leaves nothing a later load
would accept; building again from the same recipe does nothing, unless the cache was damaged
since (:func:`cache_problem` checks every file against the manifest): then it is built again.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

import errno
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
BUILD_FORMAT = "5"
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


DATA_FILES = ("logmel.npy", "summary.npy", "chroma.npy", "pianoroll.npy", "tags.npy", "clips.csv")
MANIFEST_KEYS = ("size", "recipe_hash", "content_hash", "file_hashes", "n_clips", "tag_names", "build_format")


def _sha256(path: Path, digest=None):
    digest = digest or hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 22), b""):
            digest.update(block)
    return digest


def content_hash(folder: Path) -> str:
    """SHA-256 of a built cache's data files, one after the other (not of its manifest)."""
    digest = hashlib.sha256()
    for name in DATA_FILES:
        _sha256(Path(folder) / name, digest)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of each data file of a built cache."""
    return {name: _sha256(Path(folder) / name).hexdigest() for name in DATA_FILES}


def read_manifest(folder: Path) -> dict | None:
    """A cache's manifest, or None if it has none or it cannot be read."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def array_shapes(n_clips: int, n_tags: int) -> dict:
    """Each array file of a cache: its dtype and shape."""
    return {
        "logmel.npy": (np.float16, (n_clips, N_MELS, N_FRAMES)),
        "summary.npy": (np.float32, (n_clips, len(SUMMARY_NAMES))),
        "chroma.npy": (np.float16, (n_clips, N_CHROMA, N_FRAMES)),
        "pianoroll.npy": (np.uint8, (n_clips, N_PITCHES, (N_FRAMES + 7) // 8)),
        "tags.npy": (np.uint8, (n_clips, n_tags)),
    }


def _array_problem(path: Path, dtype, shape) -> str | None:
    """What is wrong with an .npy file's header and length, or None (the data is not read)."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(path, "rb") as file:
            found_shape, _, found_dtype = readers[np.lib.format.read_magic(file)](file)
            data_start = file.tell()
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError, EOFError, KeyError) as error:
        return f"{path.name} is not a NumPy array file ({error or 'empty'})"
    if found_dtype != np.dtype(dtype) or tuple(found_shape) != shape:
        return f"{path.name} holds {found_dtype} {tuple(found_shape)} where {np.dtype(dtype)} {shape} belongs"
    if path.stat().st_size != data_start + int(np.prod(shape)) * np.dtype(dtype).itemsize:
        return f"{path.name} is cut short or too long"
    return None


_WHOLE = set()  # (folder, the files' sizes and times) of caches verified whole in this process


def cache_problem(folder: Path, size: str) -> str | None:
    """What is wrong with the cache in ``folder``, or None when it is whole and from today's recipe.

    Checks the manifest (readable, every key), the recipe it was built from, each array's dtype,
    shape and length, and each data file's SHA-256 against the manifest's ``file_hashes``: a file
    changed in any way (deleted, cut, garbled, rows shuffled or relabelled) is found and named.
    The hashes take a fraction of a second (0.3 s for the workshop size); a cache found whole is
    not hashed again in the same process unless one of its files changes.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return f"{MANIFEST} is missing or unreadable"
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        return f"{MANIFEST} lacks {', '.join(missing)}"
    if manifest["recipe_hash"] != recipe_hash():
        return "it was built from another recipe"
    if manifest["size"] != size:
        return f"it holds the {manifest['size']} dataset"
    for name, (dtype, shape) in array_shapes(manifest["n_clips"], len(manifest["tag_names"])).items():
        problem = _array_problem(folder / name, dtype, shape)
        if problem:
            return problem
    if not (folder / "clips.csv").exists():
        return "clips.csv is missing"
    stamp = (str(folder.resolve()), tuple((n, (folder / n).stat().st_size, (folder / n).stat().st_mtime_ns)
                                          for n in (*DATA_FILES, MANIFEST)))  # fmt: skip
    if stamp not in _WHOLE:
        for name, digest in file_hashes(folder).items():
            if digest != manifest["file_hashes"].get(name):
                return f"{name} is not the file it was built as (its SHA-256 differs from the manifest's)"
        _WHOLE.add(stamp)
    return None


class NotEnoughSpace(OSError):
    """There is not enough free space for what is about to be written (said before writing it)."""


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise :class:`NotEnoughSpace` before writing ``needed`` bytes into ``folder`` if they do not fit."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NotEnoughSpace(
            errno.ENOSPC,
            f"{what} needs about {needed / 1e9:.2f} GB in {folder}, which has {free / 1e9:.2f} GB free: free "
            f"some space, or set MLCOURSE_DATA to a folder on another disk",
        )


def _reserve(path: Path) -> None:
    """Allocate a memory-mapped file's blocks now: a full disk is then an error here, not a crash later.

    Writing into a memory map whose file cannot grow kills the process (SIGBUS) with no message.
    """
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as file:
            try:
                os.posix_fallocate(file.fileno(), 0, path.stat().st_size)
            except OSError as error:
                if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system that cannot: go on
                    raise


@contextmanager
def _locked(target: Path):
    """Hold ``.<name>.lock`` beside ``target``: a second writer of the same folder stops at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another process is writing {target} right now: wait until it is done, then run this again"
            ) from None
        yield


@contextmanager
def replacing(target: Path):
    """Write a folder atomically.

    Yields an empty partial folder beside `target`, which replaces `target` whole when the block
    ends, and is removed if it fails or is interrupted (partial folders left by a killed process
    are removed on the next write). Only one process at a time may write `target`: a second one
    gets a RuntimeError, and the first one's work is kept. A full disk while writing is an
    OSError that says so, raised after the partial folder is removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        for stale in target.parent.glob(f".{target.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        partial = target.parent / f".{target.name}.partial-{os.getpid()}"
        partial.mkdir()
        try:
            yield partial
            if target.exists():
                shutil.rmtree(target)
            os.replace(partial, target)
        except BaseException as error:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(error, OSError) and error.errno == errno.ENOSPC and not isinstance(error, NotEnoughSpace):
                raise OSError(
                    errno.ENOSPC,
                    f"the disk filled up while writing {target} (the partial folder is removed): free some "
                    f"space, or set MLCOURSE_DATA to a folder on another disk, and run this again",
                ) from error
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
    if target.exists():
        problem = cache_problem(target, size)
        if problem is None:
            print(f"the {size} dataset in {target} is up to date with the recipe: nothing to do")
            return target
        print(f"the {size} dataset in {target} is damaged or outdated ({problem}): building it again")

    started = time.perf_counter()
    works, versions = read_recipe()
    names = tag_names(works, versions)
    plan = plan_versions(size)
    per_version = SIZES[size]["clips_per_version"]
    n_clips = len(plan) * per_version
    shapes = array_shapes(n_clips, len(names))
    array_bytes = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for dtype, shape in shapes.values())
    check_free_space(target.parent, array_bytes + 1000 * n_clips, f"the {size} dataset")  # + about 1 kB of CSV a clip
    with replacing(target) as partial:
        mapped = {}
        for name in ("logmel.npy", "chroma.npy", "pianoroll.npy"):
            dtype, shape = shapes[name]
            mapped[name] = np.lib.format.open_memmap(partial / name, mode="w+", dtype=dtype, shape=shape)
            _reserve(partial / name)
        logmel, chroma, roll = mapped.pop("logmel.npy"), mapped.pop("chroma.npy"), mapped.pop("pianoroll.npy")
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
            "file_hashes": file_hashes(partial),
            "n_clips": n_clips,
            "tag_names": names,
            "summary_names": SUMMARY_NAMES,
            "build_format": BUILD_FORMAT,
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    print(f"built the {size} dataset: {n_clips} clips in {manifest['build_seconds']} s, into {target}")
    return target
