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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .build import MANIFEST, cache_root, read_manifest, replacing
from .features import N_CHROMA, N_FRAMES, N_MELS, SUMMARY_NAMES

SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}
COLLECTION_FORMAT = "1"


def collection_dir(source) -> Path:
    """The folder of a collection: `source` itself if it is a folder, else ``<cache>/collections/<source>``."""
    path = Path(source).expanduser()
    return path if path.is_dir() else cache_root() / "collections" / str(source)


def assign_splits(table: pd.DataFrame, by: str, stratify: str, seed: int = 0) -> pd.Series:
    """Train / valid / test for each row, drawn per group (`by`: all clips of a group share a split)
    and within each class of `stratify`, in the proportions of SPLIT_FRACTIONS."""
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


def import_audio_folder(folder, tags_csv, name: str, concepts: list[str] | None = None,
                        clips_per_file: int = 10, seed: int = 0) -> Path:
    """Import an audio folder with a CSV of labels as a collection the notebooks can load.

    The CSV is the one :func:`mlcourse.data.load_audio_folder` reads (`file`, one column per
    concept, optional `split`), with an optional `group` column (e.g. the artist or the album):
    without a `split` column, files are split 70/15/15 into train / valid / test per class of the
    first concept, keeping each group (default: each file) within one split.

    Returns:
        the collection's folder, ``<cache>/collections/<name>``.

    Raises:
        ValueError: a bad name, an unknown split value, or what load_audio_folder raises.
    """
    from .dataset import load_audio_folder

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"bad collection name {name!r}: use letters, digits, '-' and '_'")
    table = pd.read_csv(tags_csv, dtype=str, keep_default_na=False)
    if "split" in table.columns:
        unknown = sorted(set(table.split) - set(SPLIT_FRACTIONS))
        if unknown:
            raise ValueError(f"{tags_csv}: unknown split value(s) {', '.join(map(repr, unknown))}: "
                             f"use {', '.join(SPLIT_FRACTIONS)} or leave the split column out")
    concepts = [c for c in (concepts or table.columns) if c not in ("file", "split", "group")]
    data = load_audio_folder(folder, tags_csv, concepts, clips_per_file)
    meta = data.meta
    if "group" in table.columns:
        meta["piece_id"] = meta.file.map(dict(zip(table.file, table.group)))
    if "split" not in table.columns:
        meta["split"] = assign_splits(meta, "piece_id", concepts[0], seed)

    target = cache_root() / "collections" / name
    with replacing(target) as partial:
        np.save(partial / "logmel.npy", data.logmel)
        np.save(partial / "chroma.npy", data.chroma)
        np.save(partial / "summary.npy", data.summary)
        np.save(partial / "tags.npy", data.tags)
        meta.to_csv(partial / "clips.csv", index=False)
        manifest = {"kind": "collection", "format": COLLECTION_FORMAT, "n_clips": len(meta),
                    "tag_names": data.tag_names, "summary_names": SUMMARY_NAMES,
                    "concepts": concepts,
                    "source_folder": str(Path(folder).resolve()), "skipped": data.skipped}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    counts = meta.split.value_counts().reindex(list(SPLIT_FRACTIONS), fill_value=0)
    print(f"imported {len(meta)} clips of {meta.file.nunique()} files into {target} "
          f"({', '.join(f'{n} {s}' for s, n in counts.items())})")
    return target


def load_collection(source, split: str | None = None):
    """Load an imported collection (a name under ``<cache>/collections/`` or a folder).

    Returns:
        a :class:`mlcourse.data.ClipDataset` without piano rolls; `audio(i)` reads the clip from
        the collection's source folder.

    Raises:
        FileNotFoundError: no imported collection there (the message says how to import one).
        ValueError: a corrupt collection, or an unknown split.
    """
    from .dataset import ClipDataset, FileAudio, check_split

    check_split(split)
    folder = collection_dir(source)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("kind") != "collection":
        raise FileNotFoundError(f"no imported collection at {folder}: import one with "
                                f"`python -m mlcourse.data import FOLDER TAGS.csv --name {Path(str(source)).name}` "
                                "(or unset MLCOURSE_DATASET to use the rendered dataset)")
    try:
        logmel = np.load(folder / "logmel.npy", mmap_mode="r")
        chroma = np.load(folder / "chroma.npy", mmap_mode="r")
        summary, tags = np.load(folder / "summary.npy"), np.load(folder / "tags.npy")
        meta = pd.read_csv(folder / "clips.csv", keep_default_na=False, dtype={"piece_id": str, "version_id": str})
    except (OSError, ValueError) as error:
        raise ValueError(f"the collection at {folder} is corrupt ({error}): import it again") from error
    n = manifest["n_clips"]
    if (logmel.shape != (n, N_MELS, N_FRAMES) or chroma.shape != (n, N_CHROMA, N_FRAMES)
            or any(len(part) != n for part in (summary, tags, meta))):
        raise ValueError(f"the collection at {folder} is corrupt (its files disagree on the number of clips): "
                         "import it again")
    data = ClipDataset(logmel=logmel, meta=meta, tags=tags, tag_names=manifest["tag_names"], summary=summary,
                       chroma=chroma, packed_pianoroll=None, audio_source=FileAudio(manifest["source_folder"]),
                       skipped=[tuple(s) for s in manifest["skipped"]])
    return data if split is None else data.subset(meta.split.to_numpy() == split)


# For some mirdata collections: the course's concepts as track attributes, and the split attribute.
MIRDATA_CONCEPTS = {
    "gtzan_genre": ({"genre": "genre"}, None),
    "medley_solos_db": ({"instrument": "instrument"}, "subset"),
    "irmas": ({"instrument": "predominant_instrument", "genre": "genre"}, "split"),
    "tinysol": ({"instrument": "instrument_full"}, None),
}
SPLIT_NAMES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "test": "test"}


def mirdata_table(dataset, concepts: dict[str, str] | None = None,
                  split_attribute: str | None = None) -> tuple[Path, pd.DataFrame]:
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
        raise ValueError(f"no concepts are known for the mirdata collection {dataset.name!r}: "
                         "pass concepts={'genre': '<the track attribute that holds the genre>'}")
    try:
        track_ids = dataset.track_ids
    except FileNotFoundError as error:
        raise FileNotFoundError(f"mirdata has no local index of {dataset.name} ({error}); the course does not "
                                "download: fetch the collection with mirdata first") from error
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
        row = {"file": str(path.relative_to(home)) if path.is_relative_to(home) else str(path.resolve()),
               **{c: ";".join(map(str, v)) if isinstance(v, list) else str(v) for c, v in values.items()}}
        if split_attribute:
            row["split"] = SPLIT_NAMES.get(str(getattr(track, split_attribute)).lower(), "train")
        rows.append(row)
    if missing or unlabelled:
        warnings.warn(f"{dataset.name}: left out {missing} track(s) without their audio under {home} and "
                      f"{unlabelled} without a label for {', '.join(concepts)}", stacklevel=2)
    if not rows:
        raise FileNotFoundError(f"no audio of {dataset.name} under {home}: point data_home at your copy")
    return home, pd.DataFrame(rows)


def import_mirdata(dataset_name: str, name: str | None = None, data_home=None,
                   concepts: dict[str, str] | None = None, clips_per_file: int = 10) -> Path:
    """Import a local copy of a mirdata collection (see :func:`mirdata_table`) as a collection.

    Returns:
        the collection's folder (named `name`, default the mirdata name).
    """
    import tempfile

    try:
        import mirdata
    except ImportError as error:
        raise ImportError("mirdata is not installed: `pip install mirdata`, or import the audio folder "
                          "with a CSV of its labels instead") from error
    dataset = mirdata.initialize(dataset_name, data_home=None if data_home is None else str(data_home))
    folder, table = mirdata_table(dataset, concepts)
    with tempfile.TemporaryDirectory() as scratch:
        table.to_csv(Path(scratch) / "tags.csv", index=False)
        return import_audio_folder(folder, Path(scratch) / "tags.csv", name or dataset_name,
                                   clips_per_file=clips_per_file)
