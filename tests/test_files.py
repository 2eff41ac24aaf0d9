"""mlcourse.files.atomic_file: a file appears whole or not at all."""

import os
import stat
import subprocess
import sys

import pytest
import torch

from mlcourse.files import atomic_file
from mlcourse.train import save_checkpoint


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back after it."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def test_a_complete_write_replaces_the_file_and_is_readable_by_others(tmp_path, umask):
    path = tmp_path / "sub" / "data.bin"
    with atomic_file(path) as file:
        file.write(b"first")
    with atomic_file(path) as file:
        file.write(b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.bin"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_interrupted_write_keeps_the_old_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "results.json"
    with atomic_file(path, "w") as file:
        file.write("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(path, "w") as file:
            file.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_unknown_modes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"):
        with atomic_file(tmp_path / "x", "a"):
            pass


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_file_gets_the_mode_the_umask_gives_any_new_file(tmp_path, umask, mask, expected):
    umask(mask)
    with atomic_file(tmp_path / "results.json", "w") as file:
        file.write("{}")
    save_checkpoint(tmp_path / "model.pt", torch.nn.Linear(2, 2))
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "model.pt").stat().st_mode) == expected


def test_a_write_in_progress_is_named_with_the_writers_pid(tmp_path):
    with atomic_file(tmp_path / "model.pt") as file:
        (partial,) = [p.name for p in tmp_path.iterdir()]
        assert partial.startswith(f".model.pt.{os.getpid()}.") and partial.endswith(".partial")
        file.write(b"weights")


def test_a_killed_writers_partial_file_is_removed_and_a_running_writers_kept(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    running = subprocess.Popen(["sleep", "60"])
    try:
        stale = tmp_path / f".model.pt.{finished.pid}.0123abcd.partial"
        in_progress = tmp_path / f".model.pt.{running.pid}.89abcdef.partial"
        other = tmp_path / f".model.pt.1.{finished.pid}.0123abcd.partial"  # a write of "model.pt.1"
        for partial in (stale, in_progress, other):
            partial.write_bytes(b"half a checkpoint")
        with atomic_file(tmp_path / "model.pt") as file:
            file.write(b"weights")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.pt", in_progress.name, other.name])
    finally:
        running.kill()
        running.wait()
