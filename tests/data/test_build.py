"""Building and loading the dataset: splits, sizes, determinism, and every kind of bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import soundfile

from mlcourse.data import SIZES, build_dataset, load_audio_folder, load_dataset
from mlcourse.data import collections as collections_module
from mlcourse.data.__main__ import main
from mlcourse.data.build import content_hash, plan_versions, read_recipe, recipe_dir, recipe_hash
from mlcourse.data.features import (
    CLIP_SAMPLES,
    N_FRAMES,
    SAMPLE_RATE,
    chroma_from_power,
    compute_clip_features,
    compute_log_mel,
    power_spectrogram,
)


def test_no_piece_is_in_two_splits():
    works, versions = read_recipe()
    assert works.piece_id.is_unique
    assert works.groupby("piece_id").split.nunique().max() == 1
    for size in SIZES:
        plan = plan_versions(size)
        assert plan.groupby("piece_id").split.nunique().max() == 1
        assert set(plan.split) == {"train", "valid", "test"}


def test_smoke_clips_agree_with_the_recipe(smoke):
    assert len(smoke) <= 300
    assert smoke.meta.groupby("piece_id").split.nunique().max() == 1
    works, versions = read_recipe()
    merged = smoke.meta.merge(versions, on="version_id", suffixes=("", "_recipe"))
    assert len(merged) == len(smoke)
    assert (merged.tempo_bpm == merged.tempo_bpm_recipe).all()
    assert (merged.instrument == merged.instrument_recipe).all()


def test_sizes_hold_what_they_promise():
    clips = {size: len(plan_versions(size)) * spec["clips_per_version"] for size, spec in SIZES.items()}
    assert clips["smoke"] <= 300
    assert 3000 <= clips["workshop"] <= 10000
    assert clips["full"] >= 5 * clips["workshop"]
    workshop = plan_versions("workshop")
    assert workshop.genre.nunique() >= 6 and workshop.instrument.nunique() >= 6
    for concept in ("genre", "mood", "instrument", "era"):
        assert workshop[concept].nunique() >= 3, concept
    # log-mel and chroma (float16) and bit-packed piano roll per clip, against the 300 MB budget
    assert clips["workshop"] * (128 * N_FRAMES * 2 + 12 * N_FRAMES * 2 + 128 * 17) < 300e6


def test_tags_hold_each_concept_and_every_family_heard(smoke):
    names = smoke.tag_names
    lead_heard = []
    for row in range(len(smoke)):
        clip = smoke.meta.iloc[row]
        on = {names[i] for i in np.flatnonzero(smoke.tags[row])}
        expected = {f"genre:{clip.genre}", f"mood:{clip.mood}", f"era:{clip.era}"}
        expected |= {f"instrument:{family}" for family in clip.families.split()}
        assert on == expected
        lead_heard.append(f"instrument:{clip.instrument}" in on)
    assert np.mean(lead_heard) > 0.95, "the lead family is heard in nearly every clip"


def test_adjacent_clips_follow_each_other(smoke):
    following = smoke.next_index
    has_next = following >= 0
    assert has_next.sum() == len(smoke) - smoke.meta.version_id.nunique()
    now, later = smoke.meta[has_next], smoke.meta.iloc[following[has_next]]
    assert (now.version_id.to_numpy() == later.version_id.to_numpy()).all()
    np.testing.assert_allclose(later.start_s.to_numpy() - now.start_s.to_numpy(), 3.0, atol=1e-4)


def test_audio_reproduces_the_stored_features(smoke):
    for index in (0, 5, len(smoke) - 1):
        audio = smoke.audio(index)
        assert audio.shape == (CLIP_SAMPLES,) and audio.dtype == np.float32
        np.testing.assert_allclose(compute_log_mel(audio), smoke.logmel[index].astype(np.float32), atol=0.05)
        chroma = chroma_from_power(power_spectrogram(audio))[0].numpy()
        np.testing.assert_allclose(chroma, smoke.chroma[index].astype(np.float32), atol=1e-3)
    assert smoke.pianoroll.shape == (len(smoke), 128, N_FRAMES)
    assert smoke.pianoroll.any(axis=(1, 2)).all(), "every clip has notes"


def test_split_loading_selects_rows(smoke):
    test = load_dataset("smoke", split="test")
    assert set(test.meta.split) == {"test"}
    assert len(test) == (smoke.meta.split == "test").sum()
    first_test = np.flatnonzero(smoke.meta.split == "test")[0]
    np.testing.assert_array_equal(test.logmel[0], smoke.logmel[first_test])
    np.testing.assert_array_equal(test.chroma[0], smoke.chroma[first_test])
    np.testing.assert_array_equal(test.pianoroll[0], smoke.pianoroll[first_test])
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("smoke", split="dev")


def test_two_builds_of_one_recipe_have_the_same_content(tmp_path, monkeypatch, smoke, capsys):
    hashes = []
    for name in ("first", "second"):
        monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / name))
        folder = build_dataset("smoke", workers=2, quiet=True)
        hashes.append(content_hash(folder))
        assert json.loads((folder / "manifest.json").read_text())["content_hash"] == hashes[-1]
    assert hashes[0] == hashes[1]
    capsys.readouterr()
    build_dataset("smoke", quiet=True)
    assert "up to date" in capsys.readouterr().out


def test_unknown_size_is_refused(capsys):
    with pytest.raises(ValueError, match="unknown dataset size 'huge'.*smoke, workshop, full"):
        load_dataset("huge")
    assert main(["build", "--size", "huge"]) == 2
    assert "unknown dataset size" in capsys.readouterr().err


def test_missing_cache_names_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m mlcourse.data build --size workshop"):
        load_dataset("workshop")


def copy_smoke(tmp_path, monkeypatch):
    import shutil

    from mlcourse.data import cache_root

    source = cache_root() / "smoke"
    shutil.copytree(source, tmp_path / "smoke")
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    return tmp_path / "smoke"


def test_cache_from_another_recipe_is_detected(tmp_path, monkeypatch, smoke):
    folder = copy_smoke(tmp_path, monkeypatch)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["recipe_hash"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="another recipe.*build --size smoke"):
        load_dataset("smoke")


def test_recipe_hash_sees_any_change(tmp_path):
    import shutil

    shutil.copytree(recipe_dir(), tmp_path / "data", ignore=shutil.ignore_patterns("cache"))
    before = recipe_hash(tmp_path / "data")
    assert before == recipe_hash()
    versions = tmp_path / "data" / "versions.csv"
    versions.write_text(versions.read_text().replace(",", ";", 1))
    assert recipe_hash(tmp_path / "data") != before


@pytest.mark.parametrize("name", ["logmel.npy", "chroma.npy"])
def test_corrupt_cache_is_reported(tmp_path, monkeypatch, smoke, name):
    folder = copy_smoke(tmp_path, monkeypatch)
    with open(folder / name, "r+b") as file:
        file.truncate(1000)
    with pytest.raises(ValueError, match="corrupt.*rebuild"):
        load_dataset("smoke")


def test_missing_or_misshapen_chroma_is_reported(tmp_path, monkeypatch, smoke):
    folder = copy_smoke(tmp_path, monkeypatch)
    np.save(folder / "chroma.npy", np.zeros((len(smoke), 12, N_FRAMES - 1), dtype=np.float16))
    with pytest.raises(ValueError, match=r"corrupt.*chroma.npy holds float16 \(\d+, 12, 129\).*rebuild"):
        load_dataset("smoke")
    (folder / "chroma.npy").unlink()
    with pytest.raises(ValueError, match="corrupt.*chroma.npy.*rebuild"):
        load_dataset("smoke")


def test_chroma_is_stored_memory_mapped_and_subsets_keep_it(smoke):
    assert smoke.chroma.shape == (len(smoke), 12, N_FRAMES) and smoke.chroma.dtype == np.float16
    assert isinstance(smoke.chroma, np.memmap)
    peaks = smoke.chroma.max(axis=1)
    assert np.all(peaks == 1), "every frame of a rendered clip sounds, so its strongest class is 1"
    rows = np.array([3, 0, 7])
    np.testing.assert_array_equal(smoke.subset(rows).chroma, smoke.chroma[rows])


def test_killed_build_leaves_no_cache_a_load_accepts(tmp_path):
    env = {**os.environ, "MLCOURSE_DATA": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcourse.data", "build", "--size", "smoke", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob(".smoke.partial-*/logmel.npy")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".smoke.partial-*")), "the build was killed before it started writing"
    assert not (tmp_path / "smoke").exists()
    check = subprocess.run(
        [sys.executable, "-c", "from mlcourse.data import load_dataset; load_dataset('smoke')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode != 0 and "python -m mlcourse.data build --size smoke" in check.stderr
    subprocess.run(
        [sys.executable, "-m", "mlcourse.data", "build", "--size", "smoke"], env=env, check=True, capture_output=True
    )
    assert not list(tmp_path.glob(".smoke.partial-*")), "a later build clears what the killed one left"
    assert (tmp_path / "smoke" / "manifest.json").exists()


def write_tone(path, seconds, frequency):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * frequency * t), SAMPLE_RATE)


def test_audio_folder_loads_what_it_can_and_names_what_it_cannot(tmp_path):
    write_tone(tmp_path / "low.wav", 4.0, 220.0)
    write_tone(tmp_path / "high.flac", 7.0, 880.0)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "tags.csv").write_text(
        "file,genre,instrument,split\nlow.wav,drone,organ;voices,train\nhigh.flac,tone,flutes,test\n"
        "broken.wav,drone,organ,train\nnotes.txt,tone,flutes,train\nabsent.wav,tone,flutes,train\n"
    )
    with pytest.warns(UserWarning, match="broken.wav.*notes.txt.*absent.wav"):
        data = load_audio_folder(tmp_path, tmp_path / "tags.csv")
    assert [name for name, _ in data.skipped] == ["broken.wav", "notes.txt", "absent.wav"]
    assert list(data.meta.file) == ["low.wav", "high.flac", "high.flac"]
    assert list(data.meta.split) == ["train", "test", "test"]
    assert data.logmel.shape == (3, 128, N_FRAMES)
    assert data.chroma.shape == (3, 12, N_FRAMES) and data.chroma.dtype == np.float16
    # 220 Hz and 880 Hz are both an A: pitch class 9 of C, C#, ..., B
    assert (data.chroma.astype(np.float32).mean(axis=2).argmax(axis=1) == 9).all()
    assert data.tag_names == ["genre:drone", "genre:tone", "instrument:flutes", "instrument:organ", "instrument:voices"]
    np.testing.assert_array_equal(data.tags[0], [1, 0, 0, 1, 1])
    assert data.meta.instrument[0] == "organ"
    assert data.next_index.tolist() == [-1, 2, -1]
    # the loudest band of the 880 Hz clip lies above that of the 220 Hz clip
    assert data.logmel[1].mean(axis=1).argmax() > data.logmel[0].mean(axis=1).argmax()
    assert data.audio(2).shape == (CLIP_SAMPLES,)
    with pytest.raises(ValueError, match="no piano rolls"):
        data.pianoroll


def test_audio_folder_is_read_one_file_at_a_time_and_plays_from_the_files(tmp_path, monkeypatch):
    write_tone(tmp_path / "a.wav", 10.0, 220.0)
    write_tone(tmp_path / "b.wav", 7.0, 440.0)
    (tmp_path / "tags.csv").write_text("file,genre\na.wav,tone\nb.wav,tone\n")
    batch_sizes = []

    def counting(clips):
        batch_sizes.append(len(clips))
        return compute_clip_features(clips)

    monkeypatch.setattr(collections_module, "compute_clip_features", counting)
    data = load_audio_folder(tmp_path, tmp_path / "tags.csv")
    assert batch_sizes == [3, 2], "the features of one file at a time, never the whole folder's audio"
    # the same features as all five clips in one batch, from the samples read here with soundfile
    samples = {name: soundfile.read(tmp_path / name, dtype="float32")[0] for name in ("a.wav", "b.wav")}
    clips = np.stack(
        [
            samples[name][k * CLIP_SAMPLES : (k + 1) * CLIP_SAMPLES]
            for name, n in (("a.wav", 3), ("b.wav", 2))
            for k in range(n)
        ]
    )
    logmel, summary, chroma = compute_clip_features(clips)
    np.testing.assert_array_equal(data.logmel, logmel.astype(np.float16))
    np.testing.assert_array_equal(data.chroma, chroma.astype(np.float16))
    np.testing.assert_allclose(data.summary, summary, rtol=1e-5, atol=1e-5)
    # each clip's audio is read back from its file
    for index in (0, 4):
        np.testing.assert_allclose(data.audio(index), clips[index], atol=1e-4)


def test_tags_csv_missing_columns_are_named(tmp_path):
    write_tone(tmp_path / "a.wav", 4.0, 440.0)
    (tmp_path / "tags.csv").write_text("path,genre\na.wav,tone\n")
    with pytest.raises(ValueError, match="lacks the column\\(s\\) file, mood"):
        load_audio_folder(tmp_path, tmp_path / "tags.csv", concepts=["genre", "mood"])


def test_folder_where_nothing_loads_is_an_error(tmp_path):
    (tmp_path / "tags.csv").write_text("file,genre\nmissing.wav,tone\n")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable audio"):
        load_audio_folder(tmp_path, tmp_path / "tags.csv")


def test_labels_encode_a_concept_and_refuse_an_unknown_one(smoke):
    codes, classes = smoke.labels("genre")
    assert [classes[c] for c in codes[:20]] == list(smoke.meta.genre[:20])
    assert classes == sorted(set(smoke.meta.genre))
    with pytest.raises(ValueError, match="unknown concept 'colour'.*genre"):
        smoke.labels("colour")


# --------------------------------------------------------------------------------------------
# A damaged cache is refused by load_dataset and rebuilt by build_dataset
# --------------------------------------------------------------------------------------------


def delete(path):
    path.unlink()


def truncate(path):
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)


def garble(path):
    """The same size, some bytes in the middle of the data changed."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def empty(path):
    path.write_bytes(b"")


def nan_summary(path):
    summary = np.load(path)
    summary[3, 5] = np.nan
    np.save(path, summary)


def shuffle_rows(path):
    clips = pd.read_csv(path, keep_default_na=False)
    clips.sample(frac=1.0, random_state=0).to_csv(path, index=False)


def relabel_a_row(path):
    clips = pd.read_csv(path, keep_default_na=False)
    clips.loc[0, "genre"] = next(g for g in clips.genre.unique() if g != clips.genre[0])
    clips.to_csv(path, index=False)


def drop_manifest_key(path):
    manifest = json.loads(path.read_text())
    del manifest["n_clips"]
    path.write_text(json.dumps(manifest))


DATA_FILES = ["logmel.npy", "chroma.npy", "pianoroll.npy", "tags.npy", "summary.npy", "clips.csv"]
DAMAGES = [(name, damage) for name in DATA_FILES for damage in (delete, truncate, garble, empty)] + [
    ("summary.npy", nan_summary),
    ("clips.csv", shuffle_rows),
    ("clips.csv", relabel_a_row),
    ("manifest.json", drop_manifest_key),
    ("manifest.json", garble),
]


@pytest.mark.parametrize("name, damage", DAMAGES, ids=[f"{n}-{d.__name__}" for n, d in DAMAGES])
def test_a_damaged_cache_is_refused_with_the_command_that_fixes_it(tmp_path, monkeypatch, smoke, name, damage):
    folder = copy_smoke(tmp_path, monkeypatch)
    damage(folder / name)
    with pytest.raises((ValueError, FileNotFoundError), match=r"python -m mlcourse.data build --size smoke"):
        load_dataset("smoke")


@pytest.mark.parametrize("name, damage", [("clips.csv", delete), ("logmel.npy", garble), ("summary.npy", nan_summary)])
def test_build_rebuilds_a_damaged_cache_instead_of_calling_it_up_to_date(
    tmp_path, monkeypatch, smoke, capsys, name, damage
):
    folder = copy_smoke(tmp_path, monkeypatch)
    intact = json.loads((folder / "manifest.json").read_text())["content_hash"]
    damage(folder / name)
    capsys.readouterr()
    build_dataset("smoke", workers=2, quiet=True)
    said = capsys.readouterr().out
    assert "up to date" not in said and "damaged" in said and name in said
    assert content_hash(folder) == intact
    load_dataset("smoke")  # whole again


def test_a_build_that_cannot_fit_stops_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(OSError, match=r"the smoke dataset needs about 0\.\d\d GB .* 0\.00 GB free.*MLCOURSE_DATA"):
        build_dataset("smoke", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_a_disk_that_fills_up_while_writing_is_named_and_the_partial_folder_removed(tmp_path, monkeypatch):
    import errno

    from mlcourse.data import build

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build, "_reserve", full)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    with pytest.raises(OSError, match="the disk filled up while writing .*smoke.*partial folder is removed"):
        build_dataset("smoke", quiet=True)
    assert not list(tmp_path.glob(".smoke.partial-*")) and not (tmp_path / "smoke").exists()


def test_a_second_writer_of_one_cache_stops_and_leaves_the_first_ones_work(tmp_path):
    """The first build holds the lock (here: a process that holds it); the second stops at once."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
         str(tmp_path / ".smoke.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        in_progress = tmp_path / f".smoke.partial-{holder.pid}"
        in_progress.mkdir()
        (in_progress / "logmel.npy").write_bytes(b"half of it")
        env = {**os.environ, "MLCOURSE_DATA": str(tmp_path)}
        second = subprocess.run(
            [sys.executable, "-m", "mlcourse.data", "build", "--size", "smoke"], env=env, capture_output=True, text=True
        )
        assert second.returncode == 2 and "error: another process is writing" in second.stderr
        assert (in_progress / "logmel.npy").read_bytes() == b"half of it"
    finally:
        holder.kill()
        holder.wait()


def test_a_cache_of_another_size_is_not_taken_for_this_one(tmp_path, monkeypatch, smoke):
    folder = copy_smoke(tmp_path, monkeypatch)
    folder.rename(tmp_path / "workshop")
    with pytest.raises(ValueError, match="holds the smoke dataset.*build --size workshop"):
        load_dataset("workshop")
