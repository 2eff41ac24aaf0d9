"""The dataset recipe: which works, which renderings, which split, all from one seed.

``python -m mlcourse.data recipe`` parses candidate works from the music21 core corpus, keeps
those that parse into usable notes (the others are listed with the reason in
``data/skipped.csv``), writes each kept work's notes as a small MIDI file in ``data/midi/``
(so that building never parses a score), and writes two tables:

* ``data/works.csv``: one row per piece: where it comes from (corpus path and number within an
  opus), collection, genre, era, key and mode, meter, size tier and split.
* ``data/versions.csv``: one row per rendering ("version") of a piece: GM programs, instrument
  family, tempo, transposition, accompaniment and room.

Pieces are split train / valid / test within each genre, so no composition is in two splits.
Tiers nest: every `smoke` piece is in `workshop`, every `workshop` piece in `full`.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .features import PITCH_CLASSES
from .render import INSTRUMENT_FAMILIES

RECIPE_SEED = 2020
MAX_QUARTERS = 128  # enough for 12 clips of 3 s at the fastest tempo
PIECES_PER_GENRE = {"smoke": 4, "workshop": 24, "full": 72}
VERSIONS_PER_PIECE = 4
SPLIT_PATTERN = ["train", "valid", "train", "test", "train", "train"]
TEMPO_RANGE = (60, 150)
SLOW_BELOW_BPM = 100
# How single-line tunes are accompanied, as folk players of each dance tend to (percussion is a
# bodhran-like frame drum on every eighth note).
ACCOMPANIMENT_BY_GENRE = {
    "reel": {"percussion": 0.5, "bass": 0.3, "none": 0.2},
    "jig": {"drone": 0.5, "percussion": 0.3, "none": 0.2},
    "hornpipe": {"bass": 0.5, "percussion": 0.3, "none": 0.2},
    "strathspey": {"drone": 0.5, "bass": 0.3, "none": 0.2},
    "folksong": {"none": 0.8, "drone": 0.2},
}
MIXED_ENSEMBLE_SHARE = 0.3  # share of polyphonic versions whose bass is played by another family
ERAS = {
    "chorale": "baroque",
    "reel": "traditional",
    "jig": "traditional",
    "hornpipe": "traditional",
    "strathspey": "traditional",
    "folksong": "traditional",
    "mass": "renaissance",
    "madrigal": "renaissance",
    "trecento": "medieval",
    "quartet": "classical",
}
COLLECTIONS = {
    "bach": "Bach chorales",
    "ryansMammoth": "Ryan's Mammoth Collection",
    "oneills1850": "O'Neill's Music of Ireland (1850)",
    "essenFolksong": "Essen folksong collection",
    "palestrina": "Palestrina masses",
    "monteverdi": "Monteverdi madrigals",
    "trecento": "Trecento (PMFC)",
    "haydn": "String quartets",
    "mozart": "String quartets",
    "beethoven": "String quartets",
}
DANCE_RHYTHMS = {"reel": "reel", "jig": "jig", "hornpipe": "hornpipe", "strathspey": "strathspey"}


def corpus_root() -> Path:
    """The folder of the music21 core corpus."""
    import music21

    return Path(music21.__file__).parent / "corpus"


def list_candidates() -> dict[str, list[tuple[str, int | None]]]:
    """Every candidate work per genre, as (corpus path, number within an opus or None).

    Dance tunes are found through the rhythm (`R:`) field of the raw ABC text, folk songs are
    the Essen collection's Chinese and European books, interleaved so both regions are sampled.
    """
    root = corpus_root()

    def relative(path):
        return path.relative_to(root).as_posix()

    candidates = {
        "chorale": [(relative(p), None) for p in sorted((root / "bach").glob("bwv*.mxl"))],
        "mass": [(relative(p), None) for p in sorted((root / "palestrina").glob("*.krn"))],
        "madrigal": [(relative(p), None) for p in sorted((root / "monteverdi").glob("*.mxl"))],
        "trecento": [(relative(p), None) for p in sorted((root / "trecento").glob("*.xml"))],
        "quartet": [
            (relative(p), None)
            for composer in ("haydn", "mozart", "beethoven")
            for p in sorted((root / composer).rglob("*.mxl"))
            if "k545" not in p.parts
        ],  # K. 545 is a sonata
    }
    for genre in DANCE_RHYTHMS.values():
        candidates[genre] = []
    for path in sorted((root / "ryansMammoth").glob("*.abc")) + sorted((root / "oneills1850").glob("*.abc")):
        for number, rhythm in _abc_rhythms(path.read_text(encoding="latin-1")):
            if rhythm in DANCE_RHYTHMS:
                is_opus = path.parent.name == "oneills1850"
                candidates[DANCE_RHYTHMS[rhythm]].append((relative(path), number if is_opus else None))
    china = [
        (relative(p), n)
        for p in sorted((root / "essenFolksong").glob("han*.abc"))
        for n, _ in _abc_rhythms(p.read_text(encoding="latin-1"))
    ]
    europe = [
        (relative(p), n)
        for p in sorted((root / "essenFolksong").glob("*.abc"))
        if not p.name.startswith(("han", "test"))
        for n, _ in _abc_rhythms(p.read_text(encoding="latin-1"))
    ]
    candidates["folksong"] = [work for pair in zip(china, europe) for work in pair]
    return candidates


def _abc_rhythms(text: str) -> list[tuple[int, str]]:
    """(X: number, lower-cased R: rhythm) of each tune in an ABC file."""
    tunes = []
    for block in re.split(r"(?m)^(?=X:)", text):
        number = re.match(r"X:\s*(\d+)", block)
        if number:
            rhythm = re.search(r"(?m)^R:\s*(.+?)\s*$", block)
            tunes.append((int(number.group(1)), rhythm.group(1).lower() if rhythm else ""))
    return tunes


def extract_parts(score) -> list[np.ndarray]:
    """The notes of each voice of a music21 score, tied notes merged, chord symbols left out.

    Args:
        score: a parsed music21 Score (or a single-voice Stream).

    Returns:
        one (M, 3) float array per non-empty voice of (onset, duration, MIDI pitch) in quarter
        notes, from the notes that start before MAX_QUARTERS.
    """
    from music21 import harmony

    voices = list(score.parts) if score.parts else [score]
    parts = []
    for voice in voices:
        rows, tied = [], {}  # tied: MIDI pitch -> row of the note its tie continues
        for element in voice.flatten().notes:
            onset = float(element.offset)
            if isinstance(element, harmony.Harmony) or element.quarterLength <= 0 or onset >= MAX_QUARTERS:
                continue
            for note in element.notes if element.isChord else [element]:
                tie = note.tie.type if note.tie is not None else None
                pitch = note.pitch.midi
                if tie in ("stop", "continue") and pitch in tied:
                    row = rows[tied[pitch]]
                    row[1] = onset + float(element.quarterLength) - row[0]
                else:
                    rows.append([onset, float(element.quarterLength), pitch])
                    tied[pitch] = len(rows) - 1
                if tie not in ("start", "continue"):
                    tied.pop(pitch, None)
        if rows:
            parts.append(np.array(sorted(rows), dtype=float))
    return parts


def describe_work(job: tuple[str, str, int | None]) -> dict:
    """Parse one candidate and describe it, or say why it is skipped.

    Args:
        job: (genre, corpus path, number within an opus or None).

    Returns:
        a dict with the work's fields and its `parts`, or with a `skip_reason`.
    """
    from music21 import corpus

    genre, path, number = job
    work = {"source": path, "number": number, "genre": genre}
    try:
        score = corpus.parse(path, number=number) if number is not None else corpus.parse(path)
        parts = extract_parts(score)
    except Exception as error:  # a few corpus files are badly formed: record why, never crash
        return {**work, "skip_reason": f"does not parse: {type(error).__name__}: {error}"[:200]}
    n_notes = sum(len(p) for p in parts)
    if n_notes < 12:
        return {**work, "skip_reason": f"only {n_notes} notes"}
    key = score.analyze("key")
    meter = score.recurse().getElementsByClass("TimeSignature").first()
    metadata = score.metadata
    title = (metadata.title if metadata and metadata.title else Path(path).stem) or Path(path).stem
    locale = getattr(metadata, "localeOfComposition", None) if metadata else None
    return {
        **work,
        "title": str(title).split(" -- ")[0],
        "parts": parts,
        "tonic": key.tonic.pitchClass,
        "key": f"{PITCH_CLASSES[key.tonic.pitchClass]} {key.mode}",
        "mode": "minor" if key.mode == "minor" else "major",
        "meter": meter.ratioString if meter else "4/4",
        "bar_quarters": float(meter.barDuration.quarterLength) if meter else 4.0,
        "region": ("China" if "China" in (locale or "") else "Europe") if genre == "folksong" else "",
        "n_voices": len(parts),
    }


def select_works(seed: int = RECIPE_SEED, workers: int | None = None) -> tuple[list[dict], list[dict]]:
    """Parse candidates of every genre in a seeded order until each genre has enough works.

    Returns:
        kept: work dicts (see :func:`describe_work`) with `piece_id`, `tier` and `split` added;
        skipped: dicts with `source`, `number`, `genre` and `skip_reason`.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    wanted = PIECES_PER_GENRE["full"]
    kept, skipped = [], []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for genre, works in tqdm(sorted(list_candidates().items()), desc="selecting works"):
            order = [works[i] for i in rng.permutation(len(works))]
            accepted = []
            for start in range(0, len(order), 32):
                if len(accepted) >= wanted:
                    break
                jobs = [(genre, path, number) for path, number in order[start : start + 32]]
                for work in pool.map(describe_work, jobs):
                    if "skip_reason" in work:
                        skipped.append(work)
                    elif len(accepted) < wanted:
                        accepted.append(work)
            for index, work in enumerate(accepted):
                tier = next(t for t, n in PIECES_PER_GENRE.items() if index < n)
                work.update(piece_id=f"{genre}-{index:03d}", tier=tier, split=SPLIT_PATTERN[index % len(SPLIT_PATTERN)])
            kept += accepted
    return kept, skipped


def draw_versions(work: dict, rng: np.random.Generator) -> list[dict]:
    """Draw the renderings of one piece: each with its own lead instrument family.

    Instrument, tempo and transposition are drawn independently of the composition, so the
    instrument is independent of genre and era by construction. A piece with several voices is
    played by one family, or (less often) by that family over a bass of another family; a
    single-line tune may get a drone or a bass from another family, or a frame drum, in the
    manner of its dance. The performance follows the mood, as players do: fast versions are
    louder and detached, slow ones softer and legato.
    """
    families = list(INSTRUMENT_FAMILIES)
    versions = []
    for index, lead in enumerate(rng.choice(families, VERSIONS_PER_PIECE, replace=False), start=1):
        others = [f for f in families if f != lead]
        programs = [int(rng.choice(INSTRUMENT_FAMILIES[lead]))]
        accompaniment = "none"
        if work["n_voices"] > 1:
            bass = rng.choice(others) if rng.random() < MIXED_ENSEMBLE_SHARE else lead
            programs += [int(rng.choice(INSTRUMENT_FAMILIES[lead])) for _ in range(work["n_voices"] - 2)]
            programs.append(int(rng.choice(INSTRUMENT_FAMILIES[bass])))
        else:
            styles = ACCOMPANIMENT_BY_GENRE[work["genre"]]
            accompaniment = str(rng.choice(list(styles), p=list(styles.values())))
            if accompaniment in ("drone", "bass"):
                programs.append(int(rng.choice(INSTRUMENT_FAMILIES[rng.choice(others)])))
        tempo = int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
        slow = tempo < SLOW_BELOW_BPM
        mood = {("major", False): "happy", ("major", True): "calm", ("minor", False): "tense", ("minor", True): "sad"}[
            (work["mode"], slow)
        ]
        present = sorted({f for f, progs in INSTRUMENT_FAMILIES.items() for p in programs if p in progs})
        versions.append(
            {
                "version_id": f"{work['piece_id']}-v{index}",
                "piece_id": work["piece_id"],
                "version": index,
                "instrument": str(lead),
                "families": " ".join(present),
                "programs": " ".join(map(str, programs)),
                "accompaniment": accompaniment,
                "tempo_bpm": tempo,
                "mood": mood,
                "transpose": int(rng.integers(-5, 7)),
                "velocity": int(rng.integers(50, 81) if slow else rng.integers(85, 116)),
                "articulation": round(float(rng.uniform(0.85, 1.0) if slow else rng.uniform(0.5, 0.8)), 3),
                "reverb": round(float(rng.uniform(0, 0.4)), 3),
                "eq_tilt": round(float(rng.uniform(-0.4, 0.4)), 3),
                "snr_db": round(float(rng.uniform(30, 50)), 1),
                "gain_db": round(float(rng.uniform(-6, -1)), 1),
                "seed": int(rng.integers(2**31)),
            }
        )
    return versions


def draw_all_versions(works: list[dict], seed: int = RECIPE_SEED) -> pd.DataFrame:
    """The versions table of every work, drawn from one seeded generator in work order."""
    rng = np.random.default_rng([seed, 1])
    return pd.DataFrame([version for work in works for version in draw_versions(work, rng)])


def write_midi(parts: list[np.ndarray], path: Path) -> None:
    """Write a work's voices as a MIDI file at 60 BPM, so one second is one quarter note."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=60.0)
    for index, part in enumerate(parts):
        instrument = pretty_midi.Instrument(program=0, name=f"voice {index + 1}")
        instrument.notes = [pretty_midi.Note(velocity=80, pitch=int(p), start=s, end=s + d) for s, d, p in part]
        midi.instruments.append(instrument)
    midi.write(str(path))


def read_midi(path: Path) -> list[np.ndarray]:
    """Read a recipe MIDI file back as voices of (onset, duration, pitch) in quarter notes."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(path))
    return [
        np.array([(n.start, n.end - n.start, n.pitch) for n in inst.notes], dtype=float) for inst in midi.instruments
    ]


WORK_COLUMNS = [
    "piece_id",
    "genre",
    "era",
    "collection",
    "title",
    "source",
    "number",
    "key",
    "tonic",
    "mode",
    "meter",
    "bar_quarters",
    "region",
    "n_voices",
    "tier",
    "split",
]


def write_recipe(folder: Path, seed: int = RECIPE_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Select works, draw their versions and write the whole recipe into `folder`.

    Writes works.csv, versions.csv, skipped.csv and midi/<piece_id>.mid.

    Returns:
        the works and versions tables.
    """
    folder = Path(folder)
    (folder / "midi").mkdir(parents=True, exist_ok=True)
    kept, skipped = select_works(seed)
    for work in kept:
        work["era"] = ERAS[work["genre"]]
        work["collection"] = COLLECTIONS[work["source"].split("/")[0]]
        write_midi(work["parts"], folder / "midi" / f"{work['piece_id']}.mid")
    works = pd.DataFrame(kept)[WORK_COLUMNS].astype({"number": "Int64"})
    versions = draw_all_versions(kept, seed)
    works.to_csv(folder / "works.csv", index=False)
    versions.to_csv(folder / "versions.csv", index=False)
    pd.DataFrame(skipped, columns=["source", "number", "genre", "skip_reason"]).to_csv(
        folder / "skipped.csv", index=False
    )
    return works, versions
