"""Your own music in the course: import an audio folder and a CSV of labels as a dataset.

``python -m mlcourse.data import FOLDER TAGS.csv --name mine`` cuts every file into 3-second clips,
computes the course's features and writes them into ``<cache>/collections/mine/`` (atomically: an
interrupted import leaves nothing a load would accept). Then ``MLCOURSE_DATASET=mine`` makes every
notebook's ``load_dataset`` load your collection instead of the rendered one; ``MLCOURSE_MODE``
still sets the length of training. ``python -m mlcourse.data import-mirdata gtzan_genre`` does
the same for a local copy of a mirdata collection. Notebooks 01-06 need the course's four concepts
(a CSV column each: genre, mood, instrument, era); 00, 07, 08 and 09 need the rendered scores.
"""

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .build import CONCEPTS, MANIFEST, cache_root, check_free_space, read_manifest, replacing
from .clips import ClipDataset, check_split
from .features import (
    CLIP_SAMPLES,
    N_CHROMA,
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    SUMMARY_NAMES,
    compute_clip_features,
    cut_clips,
)

SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}
COLLECTION_FORMAT = "1"

# What notebooks 01-06 need of a collection (the numbers of their parameter cells): see collection_shortfalls.
RETRIEVAL_K = 8  # 03-06 measure the recall at k = 1, 2, 4, 8 among the test clips
LMNN_K = {"genre": 3, "instrument": 10}  # 02 fits LMNN with K = 3 target neighbours, and k up to 10 for instrument
BATCH_K = 8  # 04 trains on batches of P x K clips: P = every instrument class, K = 8
TRACKS_PER_BATCH = 6  # 06 puts 6 files x 2 clips (2 clips apart) in each batch


def collection_dir(source) -> Path:
    """The folder of a collection: `source` itself if it looks like a path, else ``<cache>/collections/<source>``.

    A path has a folder separator or starts with '.' or '~' (``./music``, ``~/music``): a bare name
    such as ``music`` is always a collection of the cache, even if the current folder holds ``music/``.
    """
    text = str(source)
    if isinstance(source, Path) or "/" in text or os.sep in text or text.startswith((".", "~")):
        return Path(text).expanduser()
    return cache_root() / "collections" / text


def assign_splits(table: pd.DataFrame, by: str, stratify: str, seed: int = 0) -> pd.Series:
    """Train / valid / test for each row, drawn per group and within each class of `stratify`.

    All clips of a group (`by`) share a split; the splits have the proportions of SPLIT_FRACTIONS.
    """
    rng = np.random.default_rng(seed)
    groups = table.drop_duplicates(by)[[by, stratify]]
    split_of = {}
    for _, members in groups.groupby(stratify, sort=True):
        names = members[by].to_numpy()[rng.permutation(len(members))]
        n_test = max(1, round(SPLIT_FRACTIONS["test"] * len(names))) if len(names) >= 3 else 0
        n_valid = max(1, round(SPLIT_FRACTIONS["valid"] * len(names))) if len(names) >= 3 else 0
        for k, name in enumerate(names):
            split_of[name] = "test" if k < n_test else "valid" if k < n_test + n_valid else "train"
    return table[by].map(split_of)


def import_audio_folder(
    folder, tags_csv, name: str, concepts: list[str] | None = None, clips_per_file: int = 10, seed: int = 0
) -> Path:
    """Import an audio folder with a CSV of labels as a collection the notebooks can load.

    The CSV is the one :func:`mlcourse.data.load_audio_folder` reads (`file`, one column per
    concept, optional `split`), with an optional `group` column (e.g. the artist or the album):
    without a `split` column, files are split 70/15/15 into train / valid / test per class of the
    first concept, keeping each group (default: each file) within one split.

    A collection too small for a notebook is imported with a warning that says what each one
    needs (see :func:`collection_shortfalls`); one without test clips is refused.

    Returns:
        the collection's folder, ``<cache>/collections/<name>``.

    Raises:
        ValueError: a bad name, no test clips, or what load_audio_folder raises.
        OSError: not enough free disk space for the collection (checked before writing).
    """
    if not re.fullmatch(r"[\w-]+", name or ""):
        raise ValueError(f"bad collection name {name!r}: use letters, digits, '-' and '_'")
    table, concepts = read_tags(tags_csv, concepts)
    data = _read_folder(Path(folder), table, concepts, clips_per_file, tags_csv)
    meta = data.meta
    if "split" not in table.columns:
        meta["split"] = assign_splits(meta, "piece_id", concepts[0], seed)
    if not (meta.split == "test").any():
        raise ValueError(
            f"no clip of {tags_csv} falls in the test split, and notebooks 01-06 all measure on it: give a "
            f"{concepts[0]} class 3 files (or groups) or more (a class with fewer goes to train whole), "
            "or mark some files 'test' in a split column"
        )

    target = cache_root() / "collections" / name
    arrays = {"logmel.npy": data.logmel, "chroma.npy": data.chroma, "summary.npy": data.summary, "tags.npy": data.tags}
    clips_csv = meta.to_csv(index=False)
    check_free_space(target.parent, sum(a.nbytes for a in arrays.values()) + len(clips_csv), f"the collection {name}")
    with replacing(target) as partial:
        for file_name, array in arrays.items():
            np.save(partial / file_name, array)
        (partial / "clips.csv").write_text(clips_csv)
        manifest = {
            "kind": "collection",
            "format": COLLECTION_FORMAT,
            "n_clips": len(meta),
            "tag_names": data.tag_names,
            "summary_names": SUMMARY_NAMES,
            "concepts": concepts,
            "source_folder": str(Path(folder).resolve()),
            "skipped": data.skipped,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    counts = meta.split.value_counts().reindex(list(SPLIT_FRACTIONS), fill_value=0)
    print(
        f"imported {len(meta)} clips of {meta.file.nunique()} files into {target} "
        f"({', '.join(f'{n} {s}' for s, n in counts.items())})"
    )
    _warn_shortfalls(meta, target)
    return target


def collection_shortfalls(meta: pd.DataFrame) -> list[str]:
    """What notebooks 01-06 need and a collection lacks, as sentences (none: every notebook can run).

    Args:
        meta: the collection's clips, one row each (``load_collection(...).meta``).
    """
    short = []
    missing = [c for c in CONCEPTS if c not in meta.columns]
    if missing:
        short.append(f"no {', '.join(missing)} labels: notebooks 01-06 use {', '.join(CONCEPTS)}")
    train, valid, test = (meta[meta.split == split] for split in SPLIT_FRACTIONS)
    if len(test) <= RETRIEVAL_K:
        short.append(
            f"{len(test)} test clips: notebooks 01-06 measure on the test split, and 03-06 the recall at "
            f"k = 1, 2, 4, {RETRIEVAL_K} among its clips, which needs {RETRIEVAL_K + 1} or more"
        )
    if len(valid) < 2:
        short.append(
            f"{len(valid)} valid clips: notebooks 03, 04 and 06 follow their training by the recall among "
            "the valid clips, which needs 2 or more"
        )
    for concept, k in LMNN_K.items():
        if concept not in meta:
            continue
        sizes = train[concept].value_counts()
        fit = sizes[sizes > k]
        if fit.sum() < len(SUMMARY_NAMES) or len(fit) < 2:
            short.append(
                f"notebook 02 fits LMNN with k = {k} on the train clips of the {concept} classes of more than "
                f"{k} clips, and its PCA start needs {len(SUMMARY_NAMES)} of them (one per summary feature) "
                f"in 2 classes or more: there are {fit.sum()} in {len(fit)}"
            )
    if "instrument" in meta:
        sizes = train.instrument.value_counts()
        few = sizes[sizes < BATCH_K].sort_index()
        if len(few) or sizes.empty:
            short.append(
                f"notebook 04 trains on batches of P x K clips, P = every instrument class and K = {BATCH_K}: "
                f"the train split needs {BATCH_K} clips of each, and "
                + (_some([f"{name} has {n}" for name, n in few.items()]) if len(few) else "has none")
            )
        files = test.groupby("instrument").piece_id.nunique()
        alone = files.index[files < 2]
        if len(alone):
            short.append(
                f"in the test split, instrument {_some(alone)} has clips of one file (or group) only: notebooks "
                "03-06 leave a clip's own file out when they look for its neighbours, so these clips never find one"
            )
    usable = (train.groupby("version_id").clip.max() >= 2).sum()
    if usable < TRACKS_PER_BATCH:
        short.append(
            f"notebook 06 puts {TRACKS_PER_BATCH} files x 2 clips, 2 clips apart, in each batch: the train split "
            f"needs {TRACKS_PER_BATCH} files cut into 3 clips or more (9 s), and has {usable}"
        )
    return short


def _warn_shortfalls(meta: pd.DataFrame, folder: Path) -> None:
    short = collection_shortfalls(meta)
    if short:
        warnings.warn(
            f"the collection at {folder} is too small for some notebooks:\n- " + "\n- ".join(short), stacklevel=3
        )


def _some(names, most: int = 5) -> str:
    """'a, b, c' or 'a, b, c, d, e and 3 more'."""
    names = [str(name) for name in names]
    rest = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + rest


def load_collection(source, split: str | None = None):
    """Load an imported collection (a name under ``<cache>/collections/`` or a folder).

    Warns if the collection is too small for some notebooks (see :func:`collection_shortfalls`).

    Returns:
        a :class:`mlcourse.data.ClipDataset` without piano rolls; `audio(i)` reads the clip from
        the collection's source folder.

    Raises:
        FileNotFoundError: no imported collection there (the message says how to import one).
        ValueError: a corrupt collection, or an unknown split.
    """
    check_split(split)
    folder = collection_dir(source)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("kind") != "collection":
        raise FileNotFoundError(
            f"no imported collection at {folder}: import one with "
            f"`python -m mlcourse.data import FOLDER TAGS.csv --name {Path(str(source)).name}` "
            "(or unset MLCOURSE_DATASET to use the rendered dataset)"
        )
    try:
        logmel = np.load(folder / "logmel.npy", mmap_mode="r")
        chroma = np.load(folder / "chroma.npy", mmap_mode="r")
        summary, tags = np.load(folder / "summary.npy"), np.load(folder / "tags.npy")
        meta = pd.read_csv(folder / "clips.csv", keep_default_na=False, dtype={"piece_id": str, "version_id": str})
    except (OSError, ValueError) as error:
        raise ValueError(f"the collection at {folder} is corrupt ({error}): import it again") from error
    n = manifest["n_clips"]
    if (
        logmel.shape != (n, N_MELS, N_FRAMES)
        or chroma.shape != (n, N_CHROMA, N_FRAMES)
        or any(len(part) != n for part in (summary, tags, meta))
    ):
        raise ValueError(
            f"the collection at {folder} is corrupt (its files disagree on the number of clips): import it again"
        )
    data = ClipDataset(
        logmel=logmel,
        meta=meta,
        tags=tags,
        tag_names=manifest["tag_names"],
        summary=summary,
        chroma=chroma,
        packed_pianoroll=None,
        audio_source=FileAudio(manifest["source_folder"]),
        skipped=[tuple(s) for s in manifest["skipped"]],
    )
    _warn_shortfalls(meta, folder)
    return data if split is None else data.subset(meta.split.to_numpy() == split)


# For some mirdata collections: the course's concepts as track attributes, and the split attribute.
MIRDATA_CONCEPTS = {
    "gtzan_genre": ({"genre": "genre"}, None),
    "medley_solos_db": ({"instrument": "instrument"}, "subset"),
    "irmas": ({"instrument": "predominant_instrument", "genre": "genre"}, "split"),
    "tinysol": ({"instrument": "instrument_full"}, None),
}
SPLIT_NAMES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "test": "test"}


def mirdata_table(
    dataset, concepts: dict[str, str] | None = None, split_attribute: str | None = None
) -> tuple[Path, pd.DataFrame]:
    """The audio files and labels of a local copy of a mirdata collection, as a CSV table would give them.

    Args:
        dataset: a mirdata dataset, e.g. ``mirdata.initialize("gtzan_genre", data_home=...)``; its
            index and audio must be on disk already (this never downloads).
        concepts: course concept -> track attribute, e.g. ``{"genre": "genre"}`` (default: the
            entry of MIRDATA_CONCEPTS).
        split_attribute: the track attribute that holds the split, if any.

    Returns:
        (the collection's folder, a table with `file`, one column per concept and maybe `split`);
        tracks whose audio is missing or that lack a label are left out, and counted in a warning.
    """
    preset, preset_split = MIRDATA_CONCEPTS.get(dataset.name, ({}, None))
    concepts, split_attribute = concepts or preset, split_attribute or preset_split
    if not concepts:
        raise ValueError(
            f"no concepts are known for the mirdata collection {dataset.name!r}: "
            "pass concepts={'genre': '<the track attribute that holds the genre>'}"
        )
    try:
        track_ids = dataset.track_ids
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"mirdata has no local index of {dataset.name} ({error}); the course does not "
            "download: fetch the collection with mirdata first"
        ) from error
    home, rows, missing, unlabelled = Path(dataset.data_home), [], 0, 0
    for track_id in track_ids:
        track = dataset.track(track_id)
        path = Path(track.audio_path or "")
        if not path.is_file():
            missing += 1
            continue
        values = {concept: getattr(track, attribute, None) for concept, attribute in concepts.items()}
        if any(value in (None, "", []) for value in values.values()):
            unlabelled += 1
            continue
        row = {
            "file": str(path.relative_to(home)) if path.is_relative_to(home) else str(path.resolve()),
            **{c: ";".join(map(str, v)) if isinstance(v, list) else str(v) for c, v in values.items()},
        }
        if split_attribute:
            row["split"] = SPLIT_NAMES.get(str(getattr(track, split_attribute)).lower(), "train")
        rows.append(row)
    if missing or unlabelled:
        warnings.warn(
            f"{dataset.name}: left out {missing} track(s) without their audio under {home} and "
            f"{unlabelled} without a label for {', '.join(concepts)}",
            stacklevel=2,
        )
    if not rows:
        raise FileNotFoundError(f"no audio of {dataset.name} under {home}: point data_home at your copy")
    return home, pd.DataFrame(rows)


def import_mirdata(
    dataset_name: str,
    name: str | None = None,
    data_home=None,
    concepts: dict[str, str] | None = None,
    clips_per_file: int = 10,
) -> Path:
    """Import a local copy of a mirdata collection (see :func:`mirdata_table`) as a collection.

    Returns:
        the collection's folder (named `name`, default the mirdata name).
    """
    import tempfile

    try:
        import mirdata
    except ImportError as error:
        raise ImportError(
            "mirdata is not installed: `pip install mirdata`, or import the audio folder "
            "with a CSV of its labels instead"
        ) from error
    dataset = mirdata.initialize(dataset_name, data_home=None if data_home is None else str(data_home))
    folder, table = mirdata_table(dataset, concepts)
    with tempfile.TemporaryDirectory() as scratch:
        table.to_csv(Path(scratch) / "tags.csv", index=False)
        return import_audio_folder(
            folder, Path(scratch) / "tags.csv", name or dataset_name, clips_per_file=clips_per_file
        )


# --------------------------------------------------------------------------------------------
# Reading a folder of audio files
# --------------------------------------------------------------------------------------------


def load_audio_folder(folder, tags_csv, concepts: list[str] | None = None, clips_per_file: int = 10) -> ClipDataset:
    """Turn a folder of your own audio files and a CSV of their labels into a dataset.

    The CSV has a `file` column (paths relative to `folder`) and one column per concept, e.g.
    ``file,genre,mood,instrument,era``; several values of one concept are separated by ';'
    (the first one is the clip's label, all of them become tags). An optional `split` column
    says train / valid / test (default: train), an optional `group` column the clips' piece
    (default: their file). Each file is cut into consecutive 3-second clips, as the course's own
    renderings are. Files that cannot be read are reported by name (in a warning and in
    `skipped`) and the others still load.

    Args:
        folder: the folder of audio files (anything librosa reads: wav, flac, ogg, mp3...).
        tags_csv: path of the CSV of labels (see :func:`read_tags`).
        concepts: the label columns to use (default: every column but file, split and group).
        clips_per_file: the most clips cut from one file.

    Returns:
        a :class:`ClipDataset` without piano rolls (its chroma is computed from the audio);
        `audio(i)` reads clip i back from its file.

    Raises:
        ValueError: what :func:`read_tags` raises, clips_per_file below 1, or no file could be read.
    """
    table, concepts = read_tags(tags_csv, concepts)
    return _read_folder(Path(folder), table, concepts, clips_per_file, tags_csv)


def read_tags(tags_csv, concepts: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The CSV of labels, checked: one row per file, a label in each concept cell, known split values.

    Identical rows of one file are merged into one (a printed line says so).

    Returns:
        (the table, its concept columns: `concepts`, default every column but file, split and group).

    Raises:
        ValueError: the CSV is empty or not UTF-8 text, lacks `file` or a concept column, has an
            empty label, rows of one file that disagree, or an unknown split value.
    """
    try:
        table = pd.read_csv(tags_csv, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{tags_csv} is not UTF-8 text (byte {error.start} cannot be read): save it as UTF-8 "
            "(in a spreadsheet: 'CSV UTF-8')"
        ) from error
    except pd.errors.EmptyDataError as error:
        raise ValueError(
            f"{tags_csv} is empty: write a header such as 'file,genre,mood,instrument,era', then a row per file"
        ) from error
    concepts = list(concepts) if concepts is not None else [c for c in table if c not in ("file", "split", "group")]
    missing = [c for c in ["file", *concepts] if c not in table.columns]
    if missing or not concepts:
        raise ValueError(
            f"{tags_csv} lacks the column(s) {', '.join(missing) or 'for any concept'}: "
            f"expected 'file' and one column per concept, found {', '.join(table.columns)}"
        )
    if table.empty:
        raise ValueError(f"{tags_csv} has a header but no rows: write a row per audio file")
    empty = {c: table.file[table[c].str.split(";").str[0].str.strip() == ""] for c in concepts}
    empty = [f"{c} of {_some(files)}" for c, files in empty.items() if len(files)]
    if empty:
        raise ValueError(f"{tags_csv} has empty labels: {'; '.join(empty)}: give every file a value of each concept")
    repeated = table[table.file.duplicated(keep=False)]
    different = repeated.drop_duplicates()
    conflicts = different.file[different.file.duplicated()].unique()
    if len(conflicts):
        lines = [
            f"{file} (lines {', '.join(str(i + 2) for i in repeated.index[repeated.file == file])})"
            for file in conflicts
        ]
        raise ValueError(f"{tags_csv} has rows of the same file that disagree: {_some(lines)}: keep one row per file")
    if len(repeated):
        print(
            f"{tags_csv}: merged {len(repeated) - len(different)} repeated identical row(s) of {_some(different.file)}"
        )
        table = table.drop_duplicates().reset_index(drop=True)
    unknown = sorted(set(table.get("split", [])) - set(SPLIT_FRACTIONS))
    if unknown:
        raise ValueError(
            f"{tags_csv}: unknown split value(s) {', '.join(map(repr, unknown))}: "
            f"use {', '.join(SPLIT_FRACTIONS)} or leave the split column out"
        )
    return table, concepts


def _read_folder(folder: Path, table: pd.DataFrame, concepts: list[str], clips_per_file: int, tags_csv) -> ClipDataset:
    """load_audio_folder, once its CSV is read."""
    if clips_per_file < 1:
        raise ValueError(f"clips_per_file must be at least 1, got {clips_per_file}")
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
        warnings.warn(
            "could not use these files of "
            + str(folder)
            + ": "
            + "; ".join(f"{name} ({reason})" for name, reason in skipped),
            stacklevel=3,  # the caller of load_audio_folder or import_audio_folder
        )
    if not rows:
        raise ValueError(f"no usable audio in {folder}: every file listed in {tags_csv} failed")
    meta = pd.DataFrame(rows)
    logmel, summary, chroma = (np.concatenate(part) for part in zip(*features))
    names, tags = _folder_tags(table, concepts, meta)
    return ClipDataset(
        logmel=logmel,
        meta=meta,
        tags=tags,
        tag_names=names,
        summary=summary,
        chroma=chroma,
        packed_pianoroll=None,
        audio_source=FileAudio(folder),
        skipped=skipped,
    )


def _clip_rows(record: dict, concepts: list[str], starts) -> list[dict]:
    """The metadata rows of one file's clips: ids, labels (a concept's first value), adjacency."""
    ids = [f"{record['file']}#c{k}" for k in range(len(starts))]
    return [
        {
            "clip_id": ids[k],
            "piece_id": record.get("group") or record["file"],
            "version_id": record["file"],
            "split": record.get("split") or "train",
            "file": record["file"],
            **{c: record[c].split(";")[0].strip() for c in concepts},
            "clip": k,
            "start_s": float(start),
            "prev_clip": ids[k - 1] if k else "",
            "next_clip": ids[k + 1] if k + 1 < len(ids) else "",
        }
        for k, start in enumerate(starts)
    ]


class FileAudio:
    """A clip's audio, read back from its file in the audio folder (from the clip's `start_s`)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def __call__(self, clip: dict) -> np.ndarray:
        import librosa  # here, not at the top: it takes a second to import, and only audio files need it

        path = self.folder / clip["file"]
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is gone: a clip's audio is read from its file, in the folder it was imported from"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(
                path,
                sr=SAMPLE_RATE,
                mono=True,
                offset=float(clip["start_s"]),
                duration=CLIP_SAMPLES / SAMPLE_RATE + 0.1,
            )
        return np.pad(audio, (0, max(0, CLIP_SAMPLES - len(audio))))[:CLIP_SAMPLES]


def _read_audio(path: Path) -> np.ndarray:
    """Mono audio at 22,050 Hz, or a ValueError saying why the file cannot be used."""
    import librosa  # as in FileAudio

    if not path.exists():
        raise ValueError("no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's audioread fallback warning; we report failures ourselves
            audio, rate = librosa.load(path, sr=None, mono=False)  # as stored: librosa's mono and resample refuse NaN
    except Exception as error:  # soundfile and audioread raise many types for unreadable files
        raise ValueError(f"unreadable or unsupported audio: {type(error).__name__}") from error
    if not np.isfinite(audio).all():
        raise ValueError("contains NaN or infinite samples")
    audio = librosa.resample(librosa.to_mono(audio), orig_sr=rate, target_sr=SAMPLE_RATE)
    if len(audio) < CLIP_SAMPLES:
        raise ValueError(f"shorter than {CLIP_SAMPLES / SAMPLE_RATE:.0f} s")
    return audio


def _folder_tags(table: pd.DataFrame, concepts: list[str], meta: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Tag names 'concept:value' and each clip's multi-hot vector from the CSV's values."""
    values_of = {
        row["file"]: {f"{c}:{v.strip()}" for c in concepts for v in row[c].split(";") if v.strip()}
        for row in table.to_dict("records")
    }
    names = sorted(set().union(*values_of.values()))
    index = {name: i for i, name in enumerate(names)}
    tags = np.zeros((len(meta), len(names)), dtype=np.uint8)
    for row, file in enumerate(meta.file):
        tags[row, [index[name] for name in values_of[file]]] = 1
    return names, tags
