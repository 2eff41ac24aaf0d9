"""Files and paths: where the repository is, and writing files so that no reader sees half of one.

:func:`repo_root` is the one place that knows where the repository is: the recipe, the dataset
cache, the results and the notebooks are found from it.

:func:`atomic_file` opens a temporary file beside the destination; only when everything has
been written, flushed and synced is it renamed into place (a rename within one folder is
atomic). The file gets the mode any new file gets, 0666 less the umask (0644 with the usual umask
022: readable by everyone, so that a shared cache or results folder works). If writing fails or
is interrupted (an error, Ctrl-C, a full disk), the temporary file is removed, the destination
keeps what it held before, and the error goes on. A writer killed outright (``kill -9``, a crash)
cannot remove its temporary file: the name of that file holds the writer's process id, and the
next complete write of the same destination removes the ones whose process is gone. The results
files, the explorer's maps and the training checkpoints are all written this way; the dataset
build, which writes a whole folder, renames a partial folder into place
(:func:`mlcourse.data.build.replacing`).
"""

from __future__ import annotations

import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path, mode="wb"):
    """Open a file to write that appears at ``path`` only once it is complete.

    Args:
        path: The destination; its folder is created if missing.
        mode: ``"wb"`` for bytes or ``"w"`` for UTF-8 text.

    Yields:
        The open temporary file.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_file(folder / "notes.txt", "w") as file:
        ...     _ = file.write("complete")
        >>> (folder / "notes.txt").read_text(), sorted(p.name for p in folder.iterdir())
        ('complete', ['notes.txt'])
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    # "x": create a new file (never reuse one); like any open(), its mode is 0666 less the umask
    file = open(temporary, mode.replace("w", "x"), **({} if mode == "wb" else {"encoding": "utf-8"}))
    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _remove_stale_partials(path)


def _remove_stale_partials(path: Path) -> None:
    """Remove the temporary files of writes of ``path`` whose writer was killed before it finished.

    A temporary file is named ``.<name>.<pid>.<random>.partial``; one whose process still runs
    (another writer at work) is left alone. The process ids are this machine's: in a folder shared
    by several machines, a write in progress from another machine can be taken for a stale one.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.partial")
    for partial in path.parent.iterdir():
        found = pattern.fullmatch(partial.name)
        if found and not _running(int(found.group(1))):
            try:
                partial.unlink(missing_ok=True)
            except OSError:  # someone else's file in a shared folder: theirs to remove
                pass


def _running(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine (always True off POSIX, where os.kill ends it)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0 delivers nothing: it only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        pass
    return True


def repo_root() -> Path:
    """The folder that holds the ``mlcourse`` package (the repository, for an editable install).

    Returns:
        The absolute path of the repository root.
    """
    return Path(__file__).resolve().parent.parent
