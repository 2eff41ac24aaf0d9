"""Files and paths: where the repository is, and writing files so that no reader sees half of one.

:func:`repo_root` is the one place that knows where the repository is: the recipe, the dataset
cache, the results and the notebooks are found from it.

:func:`atomic_file` opens a temporary file beside the destination; only when everything has
been written, flushed and synced is it renamed into place (a rename within one folder is
atomic), readable by everyone (mode 0644, so that a shared cache or results folder works). If
writing fails or is interrupted (an error, Ctrl-C, a full disk), the temporary file is removed,
the destination keeps what it held before, and the error goes on. The results files, the
explorer's maps and the training checkpoints are all written this way; the dataset build,
which writes a whole folder, renames a partial folder into place
(:func:`mlcourse.data.build.replacing`).
"""

from __future__ import annotations

import os
import tempfile
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
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a shared folder must be readable
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def repo_root() -> Path:
    """The folder that holds the ``mlcourse`` package (the repository, for an editable install).

    Returns:
        The absolute path of the repository root.
    """
    return Path(__file__).resolve().parent.parent
