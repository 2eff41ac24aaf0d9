"""Imported collections: an audio folder + CSV becomes a dataset every notebook can load."""

import errno
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import soundfile

from mlcourse.data import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    compute_log_mel,
    import_audio_folder,
    load_audio_folder,
    load_collection,
    load_dataset,
)

from audio_collection import write_collection

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """(cache root, source folder, collection folder) of a generated 48-file collection."""
    base = tmp_path_factory.mktemp("collection")
    tags = write_collection(base / "music")
    with mock.patch.dict(os.environ, {"MLCOURSE_DATA": str(base / "cache")}):
        folder = import_audio_folder(base / "music", tags, "synth")
    return base / "cache", base / "music", folder


def test_import_writes_every_clip_with_its_labels_and_features(collection):
    _, music, folder = collection
    data = load_collection(folder)
    table = pd.read_csv(music / "tags.csv")
    assert len(data) == 3 * len(table)  # 10-second files: three consecutive 3-second clips each
    assert data.logmel.shape == (len(data), 128, 130) and data.chroma.shape == (len(data), 12, 130)
    labels = table.set_index("file")
    for concept in ("genre", "mood", "instrument", "era"):
        assert (data.meta[concept].to_numpy() == labels.loc[data.meta.file, concept].to_numpy()).all()
    # the features of a clip are those of the file's samples, read here without the course's reader
    row = 7
    audio, rate = soundfile.read(music / data.meta.file[row], dtype="float32")
    first = int(round(data.meta.start_s[row] * SAMPLE_RATE))
    assert rate == SAMPLE_RATE
    expected = compute_log_mel(audio[None, first : first + CLIP_SAMPLES])[0]
    np.testing.assert_allclose(data.logmel[row].astype(np.float32), expected, atol=0.05)
    np.testing.assert_allclose(data.audio(row), audio[first : first + CLIP_SAMPLES], atol=1e-4)
    assert data.tags.sum(axis=1).tolist() == [4] * len(data)  # one value of each concept


def test_splits_keep_a_file_together_and_hold_every_class(collection):
    _, _, folder = collection
    meta = load_collection(folder).meta
    assert (meta.groupby("file").split.nunique() == 1).all()
    for split in ("train", "valid", "test"):
        assert set(meta.genre[meta.split == split]) == set(meta.genre), split
    assert (meta.split == "train").mean() == pytest.approx(0.7, abs=0.1)
    parts = [load_collection(folder, split) for split in ("train", "valid", "test")]
    assert sum(len(p) for p in parts) == len(meta)


def test_load_dataset_loads_the_collection_that_mlcourse_dataset_names(collection, monkeypatch):
    cache, _, folder = collection
    monkeypatch.setenv("MLCOURSE_DATA", str(cache))
    monkeypatch.setenv("MLCOURSE_DATASET", "synth")
    test = load_dataset("smoke", split="test")
    assert set(test.meta.split) == {"test"} and test.packed_pianoroll is None
    assert list(test.meta.clip_id) == list(load_collection(folder, "test").meta.clip_id)
    monkeypatch.setenv("MLCOURSE_DATASET", "nothing-here")
    with pytest.raises(FileNotFoundError, match="python -m mlcourse.data import .*--name nothing-here"):
        load_dataset("smoke")


def test_a_failed_import_leaves_the_previous_collection_and_no_partial_folder(collection, tmp_path, monkeypatch):
    cache, music, folder = collection
    copy = tmp_path / "cache" / "collections" / "synth"
    shutil.copytree(folder, copy)
    before = (copy / "clips.csv").read_bytes()
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    saved = np.save

    def failing_save(path, array):
        if str(path).endswith("tags.npy"):
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C halfway
        saved(path, array)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        import_audio_folder(music, music / "tags.csv", "synth")
    assert sorted(p.name for p in copy.parent.iterdir() if p.is_dir()) == ["synth"]  # no partial folder
    assert (copy / "clips.csv").read_bytes() == before


def test_corrupt_collection_and_moved_audio_say_what_to_do(collection, tmp_path):
    _, _, folder = collection
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "logmel.npy").write_bytes((folder / "logmel.npy").read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupt.*import it again"):
        load_collection(broken)
    moved = load_collection(folder)
    moved.audio_source.folder = tmp_path / "elsewhere"
    with pytest.raises(FileNotFoundError, match="is gone"):
        moved.audio(0)


def test_bad_split_values_and_names_are_refused(collection, tmp_path, monkeypatch):
    _, music, _ = collection
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    table = pd.read_csv(music / "tags.csv").assign(split="training")
    table.to_csv(tmp_path / "tags.csv", index=False)
    with pytest.raises(ValueError, match="unknown split value.*'training'"):
        import_audio_folder(music, tmp_path / "tags.csv", "x")
    for name in ("../escape", "my music", ".hidden", "a.b", ""):
        with pytest.raises(ValueError, match="bad collection name.*use letters, digits, '-' and '_'"):
            import_audio_folder(music, three_files(music, tmp_path), name)
    assert not (tmp_path / "cache").exists()


def three_files(music: Path, folder: Path) -> Path:
    """A CSV of three files of `music`, one in each split: a collection too small for the notebooks."""
    table = pd.read_csv(music / "tags.csv").head(3).assign(split=["train", "valid", "test"])
    table.to_csv(folder / "three.csv", index=False)
    return folder / "three.csv"


def test_repeated_rows_of_a_file_are_merged_and_disagreeing_ones_refused(collection, tmp_path, capsys):
    _, music, _ = collection
    table = pd.read_csv(music / "tags.csv").head(2)
    pd.concat([table, table.head(1)]).to_csv(tmp_path / "repeated.csv", index=False)
    data = load_audio_folder(music, tmp_path / "repeated.csv")
    assert list(data.meta.file.unique()) == list(table.file) and len(data) == 6  # each file's clips once
    assert data.next_index.tolist() == [1, 2, -1, 4, 5, -1]
    assert f"merged 1 repeated identical row(s) of {table.file[0]}" in capsys.readouterr().out
    pd.concat([table, table.head(1).assign(genre="other")]).to_csv(tmp_path / "disagree.csv", index=False)
    with pytest.raises(ValueError, match=f"rows of the same file that disagree: {table.file[0]} \\(lines 2, 4\\)"):
        load_audio_folder(music, tmp_path / "disagree.csv")


def test_empty_labels_are_refused_naming_the_column_and_files(collection, tmp_path):
    _, music, _ = collection
    table = pd.read_csv(music / "tags.csv", keep_default_na=False).head(3)
    table.loc[1, "mood"] = ""
    table.to_csv(tmp_path / "tags.csv", index=False)
    with pytest.raises(ValueError, match=f"empty labels: mood of {table.file[1]}"):
        import_audio_folder(music, tmp_path / "tags.csv", "x")


def made_up_clips(files: dict[str, int], clips_per_file: int = 3) -> pd.DataFrame:
    """The clips table of a made-up collection: `files[split]` files per split, the classes taken in turn."""
    rows = []
    for split, n in files.items():
        for f in range(n):
            name = f"{split}{f}.wav"
            labels = {"genre": "abc"[f % 3], "mood": "xy"[f % 2], "instrument": "pqrs"[f % 4], "era": "e"}
            for k in range(clips_per_file):
                rows.append({"file": name, "piece_id": name, "version_id": name, "split": split, "clip": k, **labels})
    return pd.DataFrame(rows)


def test_collection_shortfalls_say_what_each_notebook_lacks():
    from mlcourse.data.collections import collection_shortfalls

    assert collection_shortfalls(made_up_clips({"train": 40, "valid": 10, "test": 10})) == []
    # 19 files of two clips: what broke notebooks 02-06
    short = collection_shortfalls(made_up_clips({"train": 13, "valid": 3, "test": 3}, clips_per_file=2))
    assert len(short) == 6
    assert (
        short[0].startswith("6 test clips: notebooks 01-06 measure on the test split") and "needs 9 or more" in short[0]
    )
    assert short[1].startswith("notebook 02 fits LMNN with k = 3 on the train clips of the genre classes")
    assert short[2].startswith("notebook 02 fits LMNN with k = 10") and short[2].endswith("there are 0 in 0")
    assert "K = 8: the train split needs 8 clips of each, and q has 6, r has 6, s has 6" in short[3]
    assert short[4].startswith("in the test split, instrument p, q, r has clips of one file (or group) only")
    assert short[5].endswith("needs 6 files cut into 3 clips or more (9 s), and has 0")
    no_valid = collection_shortfalls(made_up_clips({"train": 40, "test": 10}))
    assert [s.split(":")[0] for s in no_valid] == ["0 valid clips"]


def test_a_small_collection_warns_at_import_and_load_and_one_without_test_clips_is_refused(
    collection, tmp_path, monkeypatch
):
    _, music, _ = collection
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="too small for some notebooks:\n- 3 test clips") as caught:
        folder = import_audio_folder(music, three_files(music, tmp_path), "three")
    assert all(f"notebook {n}" in str(caught[-1].message) for n in ("02", "04", "06"))
    with pytest.warns(UserWarning, match="too small for some notebooks"):
        load_collection(folder, "train")
    pd.read_csv(music / "tags.csv").head(2).to_csv(tmp_path / "two.csv", index=False)  # all train: no class has 3 files
    with pytest.raises(ValueError, match="no clip of .*two.csv falls in the test split"):
        import_audio_folder(music, tmp_path / "two.csv", "two")
    assert not (tmp_path / "cache" / "collections" / "two").exists()


def test_a_bare_name_is_a_collection_of_the_cache_even_beside_a_folder_of_that_name(collection, tmp_path, monkeypatch):
    from mlcourse.data.collections import collection_dir

    _, _, folder = collection
    shutil.copytree(folder, tmp_path / "music")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    assert collection_dir("music") == tmp_path / "cache" / "collections" / "music"
    assert collection_dir("./music") == Path("music") and collection_dir(tmp_path / "music") == tmp_path / "music"
    assert collection_dir("~/music") == Path.home() / "music"
    with pytest.raises(FileNotFoundError, match="no imported collection at .*cache/collections/music"):
        load_collection("music")
    assert len(load_collection("./music")) == len(load_collection(folder))


def test_nan_samples_are_named_as_such(collection, tmp_path):
    _, music, _ = collection
    good = pd.read_csv(music / "tags.csv").file[0]
    shutil.copy(music / good, tmp_path / "good.wav")
    samples = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    samples[1000] = np.nan
    soundfile.write(tmp_path / "nan.wav", samples, SAMPLE_RATE, subtype="FLOAT")
    (tmp_path / "tags.csv").write_text("file,genre\ngood.wav,a\nnan.wav,a\n")
    with pytest.warns(UserWarning, match="nan.wav \\(contains NaN or infinite samples\\)"):
        data = load_audio_folder(tmp_path, tmp_path / "tags.csv")
    assert data.skipped == [("nan.wav", "contains NaN or infinite samples")]


def test_an_empty_or_non_utf8_csv_is_named(collection, tmp_path):
    _, music, _ = collection
    (tmp_path / "latin1.csv").write_bytes("file,genre\nchanson.wav,vari\xe9t\xe9\n".encode("latin-1"))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("file,genre\n")
    for name, problem in [
        ("latin1", "is not UTF-8 text"),
        ("empty", "is empty"),
        ("header", "has a header but no rows"),
    ]:
        with pytest.raises(ValueError, match=f"{name}.csv {problem}"):
            import_audio_folder(music, tmp_path / f"{name}.csv", "x")


def test_clips_per_file_below_one_is_refused(collection, tmp_path, monkeypatch):
    _, music, _ = collection
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="clips_per_file must be at least 1, got 0"):
        import_audio_folder(music, three_files(music, tmp_path), "x", clips_per_file=0)
    with pytest.raises(ValueError, match="clips_per_file must be at least 1, got -2"):
        load_audio_folder(music, three_files(music, tmp_path), clips_per_file=-2)


def test_a_full_disk_is_said_before_writing_and_while_writing(collection, tmp_path, monkeypatch):
    _, music, _ = collection
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    collections = tmp_path / "cache" / "collections"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=10**9, used=10**9 - 1000, free=1000))
    with pytest.raises(OSError, match="the collection three needs about .* GB free: free some space") as caught:
        import_audio_folder(music, three_files(music, tmp_path), "three")
    assert caught.value.errno == errno.ENOSPC and not (collections / "three").exists()
    monkeypatch.undo()
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    saved = np.save

    def disk_full(path, array):
        if str(path).endswith("summary.npy"):
            raise OSError(errno.ENOSPC, "No space left on device")
        saved(path, array)

    monkeypatch.setattr(np, "save", disk_full)
    with pytest.raises(OSError, match="disk filled up while writing"):
        import_audio_folder(music, three_files(music, tmp_path), "three")
    assert [p.name for p in collections.iterdir() if p.is_dir()] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "notebook",
    [
        "01_distances_and_lda",
        "02_lmnn",
        "03_siamese_contrastive",
        "04_triplet_mining",
        "05_classification_and_proxies",
        "06_disentangled",
    ],
)
def test_the_notebooks_run_on_an_imported_collection(collection, notebook, tmp_path, monkeypatch):
    import papermill

    cache, _, _ = collection
    # The cache holds the collection and no rendered dataset: a notebook that loaded the rendered
    # smoke dataset would stop with "no complete smoke dataset".
    assert [p.name for p in cache.iterdir()] == ["collections"]
    monkeypatch.setenv("MLCOURSE_DATA", str(cache))
    monkeypatch.setenv("MLCOURSE_DATASET", "synth")
    monkeypatch.setenv("MLCOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("MLCOURSE_MODE", "smoke")
    executed = tmp_path / f"{notebook}.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / f"{notebook}.ipynb"),
        str(executed),
        parameters={"MLCOURSE_MODE": "smoke"},
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    assert executed.exists()


def test_the_course_leaves_out_the_notebooks_that_need_the_rendered_dataset(monkeypatch, tmp_path, capsys):
    from coursetools import run as course

    ran = []

    def pretend(notebook, mode, out):
        assert out == course.output_dir().resolve()  # build/notebooks unless --out says otherwise
        ran.append(notebook.stem)
        return course.Outcome(notebook.stem, 0.0, True)

    monkeypatch.setattr(course, "run_one", pretend)
    monkeypatch.setenv("MLCOURSE_RESULTS", str(tmp_path))
    monkeypatch.setenv("MLCOURSE_DATASET", "mine")
    assert course.main(["--mode", "smoke"]) == 0
    everything = [p.stem for p in course.find_notebooks(course.notebooks_dir())]
    assert ran == [n for n in everything if n not in course.RENDERED_ONLY]
    assert "01_distances_and_lda" in ran and "07_cross_modal" not in ran
    assert "Leaving out 07_cross_modal.ipynb: it needs scores" in capsys.readouterr().out
    monkeypatch.delenv("MLCOURSE_DATASET")
    ran.clear()
    assert course.main(["--mode", "smoke"]) == 0 and ran == everything


def test_the_course_refuses_a_collection_without_the_concepts_the_notebooks_use(tmp_path, monkeypatch, capsys):
    from coursetools import run as course

    music = tmp_path / "music"
    tags = write_collection(music)
    pd.read_csv(tags).drop(columns=["mood", "era"]).to_csv(tmp_path / "genre_and_instrument.csv", index=False)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    import_audio_folder(music, tmp_path / "genre_and_instrument.csv", "two")
    monkeypatch.setattr(course, "run_one", lambda *args: pytest.fail("no notebook should run"))
    monkeypatch.setenv("MLCOURSE_DATASET", "two")
    assert course.main(["--mode", "smoke"]) == 2
    assert "has no mood, era labels" in capsys.readouterr().err


def test_a_local_mirdata_copy_imports_with_its_labels(tmp_path, monkeypatch):
    mirdata = pytest.importorskip("mirdata")
    import json

    from mlcourse.data.collections import import_mirdata

    from audio_collection import tone

    # A local copy of GTZAN as mirdata lays it out: genres/<genre>/<genre>.<n>.wav, with its index
    # (a few tracks; one file absent, as in a partial copy).
    home, rng, tracks = tmp_path / "gtzan", np.random.default_rng(1), {}
    for genre, harmonics in [("blues", "strings"), ("classical", "flutes"), ("metal", "reeds")]:
        for n in range(4):
            track_id = f"{genre}.{n:05d}"
            relative = f"gtzan_genre/genres/{genre}/{track_id}.wav"
            tracks[track_id] = {"audio": [relative, None], "beats": [None, None], "tempo": [None, None]}
            if track_id != "metal.00003":
                (home / relative).parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(home / relative, tone(harmonics, "march", "bright", "early", 7.0, rng), SAMPLE_RATE)
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"version": "1.0", "tracks": tracks}))
    real_initialize = mirdata.initialize

    def initialize(name, data_home=None, version="default"):
        dataset = real_initialize(name, data_home=data_home, version=version)
        dataset.index_path = str(index)  # the index a download would have put in mirdata's folder
        return dataset

    monkeypatch.setattr(mirdata, "initialize", initialize)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="left out 1 track"):
        folder = import_mirdata("gtzan_genre", "gtzan", data_home=home)
    data = load_collection(folder)
    assert sorted(data.meta.file.unique()) == sorted(t["audio"][0] for k, t in tracks.items() if k != "metal.00003")
    assert (data.meta.genre == data.meta.file.str.split("/").str[2]).all()
    assert data.tag_names == ["genre:blues", "genre:classical", "genre:metal"]
    assert set(data.meta.split) == {"train", "valid", "test"}
