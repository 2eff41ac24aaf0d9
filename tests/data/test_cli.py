"""python -m mlcourse.data: every problem a learner can fix is one ``error:`` line, never a traceback."""

import errno

import pytest

from mlcourse.data import __main__ as cli


@pytest.fixture
def no_build(monkeypatch):
    """Make any real work fail the test: these tests stop before it, or replace it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the command should not have started any work")

    for name in ("build_dataset", "import_audio_folder", "import_mirdata", "write_recipe"):
        monkeypatch.setattr(cli, name, forbidden)


@pytest.mark.parametrize(
    "argv", [["build"], ["import", "audio", "tags.csv", "--name", "mine"], ["import-mirdata", "gtzan_genre"]]
)
def test_mlcourse_data_naming_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys, no_build, argv):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    monkeypatch.setenv("MLCOURSE_DATA", str(cache))
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: MLCOURSE_DATA={cache} names a file; it must be a folder (or not exist yet)\n"
    )


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device", "/data/cache/workshop.partial"),
        PermissionError(errno.EACCES, "Permission denied", "/data/cache"),
        NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/cache/workshop"),
        RuntimeError("a worker process died"),
    ],
)
def test_os_and_runtime_errors_become_one_error_line(monkeypatch, capsys, tmp_path, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(cli, "build_dataset", fail)
    assert cli.main(["build"]) == 2
    assert capsys.readouterr().err == f"error: {error}\n"


@pytest.mark.parametrize("command", [["import", "audio", "tags.csv", "--name", "mine"], ["import-mirdata", "gtzan"]])
@pytest.mark.parametrize("count, message", [("0", "must be at least 1, got 0"), ("two", "invalid at_least_one value")])
def test_clips_per_file_below_one_is_a_usage_error(capsys, no_build, command, count, message):
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--clips-per-file", count])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and f"argument --clips-per-file: {message}" in err
