"""mlcourse.files.atomic_file: a file appears whole or not at all."""

import stat

import pytest

from mlcourse.files import atomic_file


def test_a_complete_write_replaces_the_file_and_is_readable_by_others(tmp_path):
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
