"""Headline results: each notebook records its key figures here.

A notebook calls :func:`record` for the one or two numbers it is about (a kNN
accuracy, a recall@k); ``make course`` collects them into one table at the end.
Each notebook's figures live in ``<results_dir>/<notebook>.json`` as a JSON object
mapping a result's name to its value.

Run ``python -m mlcourse.results`` to print the table of everything recorded so far. A damaged
results file (an edit by hand, a disk fault) is named in an ``error:`` line and left out; the
other notebooks' results are still shown.

Example:
    >>> from mlcourse.results import record
    >>> record("00_data_tour", "knn_accuracy", 0.8125)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from .files import atomic_file, repo_root

RESULTS_ENV = "MLCOURSE_RESULTS"
"""Environment variable that overrides where results are stored."""

Value = int | float | str | bool
CHECK_PREFIX = "check: "
"""How a claim checked by :class:`Checks` is named among a notebook's results."""


def results_dir() -> Path:
    """Where the results files live.

    Returns:
        ``$MLCOURSE_RESULTS`` if it is set, otherwise ``<repo root>/build/results``.
        The folder is not created here; :func:`record` creates it when needed.
    """
    override = os.environ.get(RESULTS_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return repo_root() / "build" / "results"


def _results_file(notebook: str) -> Path:
    """The JSON file holding one notebook's results.

    Args:
        notebook: The notebook's name without extension, e.g. ``"00_data_tour"``.

    Returns:
        The path ``<results_dir>/<notebook>.json``.

    Raises:
        ValueError: If ``notebook`` is empty or contains a path separator.
    """
    if not isinstance(notebook, str) or not notebook.strip():
        raise ValueError(f"notebook must be a non-empty string, got {notebook!r}")
    if "/" in notebook or "\\" in notebook or notebook.startswith("."):
        raise ValueError(f"notebook must be a plain name such as '00_data_tour', got {notebook!r}")
    return results_dir() / f"{notebook}.json"


def _to_plain(name: str, value: Any) -> Value:
    """Convert a value to a JSON-safe Python scalar, checking that it is usable.

    Args:
        name: The result's name, used in error messages.
        value: An int, float, str or bool, or a one-element numpy/torch value
            (anything with an ``item()`` method).

    Returns:
        The value as a plain Python ``int``, ``float``, ``str`` or ``bool``.

    Raises:
        ValueError: If the value is not a number, string or bool, or is NaN or infinite.
    """
    if not isinstance(value, (int, float, str, bool)) and hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"result {name!r} must be a single number, got an array: {err}") from err
    if not isinstance(value, (int, float, str, bool)):
        raise ValueError(f"result {name!r} must be an int, float, str or bool, got {type(value).__name__}: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(
            f"result {name!r} is {value}: a headline result must be a finite number "
            "(did the training diverge or an evaluation set come out empty?)"
        )
    return value


def _read(path: Path) -> dict[str, Value]:
    """Read one results file.

    Args:
        path: A ``<notebook>.json`` file.

    Returns:
        Its name -> value mapping, or an empty dict if the file does not exist.

    Raises:
        ValueError: If the file is damaged: not UTF-8 text, not JSON, or not a JSON object.
    """
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # a UnicodeDecodeError or a json.JSONDecodeError
        raise ValueError(f"results file {path} is damaged ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"results file {path} is damaged (it should hold a JSON object)")
    return data


def _write_atomic(path: Path, data: dict[str, Value]) -> None:
    """Write JSON to ``path`` atomically (:func:`mlcourse.files.atomic_file`).

    Readers never see a half-written file, and an interrupted write leaves the
    previous file intact.

    Args:
        path: The destination file; its folder is created if missing.
        data: The mapping to store.

    Raises:
        PermissionError: If the results folder cannot be written (or created), with a message
            naming it and :data:`RESULTS_ENV`, which moves it.
    """
    try:
        with atomic_file(path, "w") as file:
            json.dump(data, file, indent=2, allow_nan=False)
            file.write("\n")
    except PermissionError as err:
        raise PermissionError(
            f"cannot write results into {path.parent} ({err.strerror}): make that folder writable, "
            f"or set {RESULTS_ENV} to a folder you can write to"
        ) from err


def record(notebook: str, name: str, value: Any) -> None:
    """Store one headline figure of a notebook.

    The value is merged into ``<results_dir>/<notebook>.json``: other names already
    there are kept, and recording the same name again replaces its value.

    A damaged results file is replaced, with a ``warning:`` line on stderr, rather than
    stopping the notebook with an error: what it held cannot be read back anyway, and the
    notebook that is recording records its other figures again as it runs.

    Args:
        notebook: The notebook's name without extension, e.g. ``"02_lmnn"``.
        name: What the figure is, e.g. ``"knn_accuracy"``.
        value: An int, float, str or bool; numpy scalars and one-element
            arrays or tensors are converted to plain Python numbers.

    Raises:
        ValueError: If the value is NaN, infinite, or not a number/str/bool,
            or if a name is empty.
        PermissionError: If the results folder is not writable (the message says what to do).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"result name must be a non-empty string, got {name!r}")
    path = _results_file(notebook)
    value = _to_plain(name, value)
    try:
        data = _read(path)
    except ValueError as err:
        print(f"warning: {err}: replacing it with the results recorded from now on", file=sys.stderr)
        data = {}
    data[name] = value
    _write_atomic(path, data)


class Checks:
    """The claims a notebook checks on the learner's own run.

    A notebook does not write its outcomes into its text: a run on another machine, mode or
    seed could contradict them. It states what to look for, then calls its ``Checks`` for
    each claim, which prints the claim with True or False and records it as
    ``check: <claim>`` beside the notebook's headline results.

    Args:
        notebook: The notebook's name without extension, e.g. ``"04_triplet_mining"``.

    Example:
        >>> check = Checks("04_triplet_mining")  # doctest: +SKIP
        >>> check("easy mining left every weight unchanged", True)  # doctest: +SKIP
        easy mining left every weight unchanged: True

    Taught in ``notebooks/03_siamese_contrastive.ipynb``.
    """

    def __init__(self, notebook: str):
        _results_file(notebook)  # a bad name fails here, not at the first claim
        self.notebook = notebook

    def __call__(self, claim: str, holds: Any, detail: str = "") -> None:
        """Print and record one claim.

        Args:
            claim: The claim, a fixed sentence (the same on every run: it names the result).
            holds: Whether it holds on this run; numpy and torch booleans are accepted.
            detail: The figures behind it, printed after it in brackets.

        Raises:
            ValueError: If ``claim`` is empty, or ``holds`` is not a single truth value.
        """
        if not isinstance(claim, str) or not claim.strip():
            raise ValueError(f"a claim must be a non-empty sentence, got {claim!r}")
        try:
            truth = holds.item() if hasattr(holds, "item") else holds  # numpy and torch booleans
        except (ValueError, RuntimeError):  # more than one element
            truth = holds
        if not isinstance(truth, bool):
            raise ValueError(f"whether {claim!r} holds must be one True or False, got {holds!r}")
        holds = truth
        print(f"{claim}: {holds}" + (f" ({detail})" if detail else ""))
        record(self.notebook, f"{CHECK_PREFIX}{claim}", holds)


def checkpoints_dir() -> Path:
    """Where the notebooks keep their training checkpoints: ``<results folder>/checkpoints``.

    Inside the results folder, so that two results folders (two runs, two learners) never share
    a checkpoint, and a notebook cleared by :func:`clear` trains afresh.
    """
    return results_dir() / "checkpoints"


def clear(notebook: str) -> None:
    """Forget a notebook's recorded results and its checkpoints (before it is run again).

    A notebook's checkpoints are the files under :func:`checkpoints_dir` whose name starts with
    its number, e.g. ``03_contrastive.pt`` for ``03_siamese_contrastive``.

    Args:
        notebook: The notebook's name without extension.
    """
    _results_file(notebook).unlink(missing_ok=True)
    number = notebook.split("_")[0]
    for checkpoint in checkpoints_dir().glob(f"**/{number}_*.pt"):
        checkpoint.unlink()


def load_results() -> dict[str, dict[str, Value]]:
    """Read every notebook's recorded results.

    A damaged file is left out, with an ``error:`` line on stderr that names it and what to do.

    Returns:
        A mapping notebook -> (name -> value), notebooks in sorted order, names
        in the order they were first recorded. Empty if nothing is recorded yet.
    """
    folder = results_dir()
    if not folder.is_dir():
        return {}
    loaded = {}
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            loaded[path.stem] = _read(path)
        except ValueError as err:
            print(f"error: {err}: delete it, or rerun the notebook {path.stem} to record it again", file=sys.stderr)
    return loaded


def format_value(value: Value) -> str:
    """Format one value for the table.

    Args:
        value: A recorded value.

    Returns:
        Floats with 3 decimals (3 significant digits when smaller than 0.1),
        everything else as ``str``.
    """
    if isinstance(value, float):
        if value == 0 or abs(value) >= 0.1:
            return f"{value:.3f}"
        return f"{value:.3g}"
    return str(value)


def format_results_table(results: dict[str, dict[str, Value]]) -> str:
    """Lay out results as one plain-text table.

    Args:
        results: A mapping notebook -> (name -> value), as from :func:`load_results`.

    Returns:
        A table with the columns notebook | result | value, one row per recorded
        figure (the checked claims apart: see :func:`format_checks`), or a one-line note
        naming ``make course`` if there is none.
    """
    rows = [
        (notebook, name, format_value(value))
        for notebook, values in results.items()
        for name, value in values.items()
        if not name.startswith(CHECK_PREFIX)
    ]
    if not rows:
        return "No headline results recorded yet: run `make course` (or execute a notebook) to produce them."
    header = ("notebook", "result", "value")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]

    def line(cells: tuple[str, str, str]) -> str:
        return " | ".join(
            cell.rjust(w) if i == 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def format_checks(results: dict[str, dict[str, Value]]) -> str:
    """List the claims the notebooks checked on their run, and how many hold.

    Args:
        results: A mapping notebook -> (name -> value), as from :func:`load_results`.

    Returns:
        One line per claim, ``notebook  True/False  claim``, then a count; an empty string if
        no notebook checked a claim.

    Example:
        >>> print(format_checks({"04_triplet_mining": {"check: easy mining learns nothing": True, "r_at_1": 0.5}}))
        04_triplet_mining  True   easy mining learns nothing
        1 of 1 checks hold (a False is a finding about this run, not an error)
    """
    rows = [
        (notebook, value, name[len(CHECK_PREFIX) :])
        for notebook, values in results.items()
        for name, value in values.items()
        if name.startswith(CHECK_PREFIX)
    ]
    if not rows:
        return ""
    width = max(len(notebook) for notebook, _, _ in rows)
    lines = [f"{notebook.ljust(width)}  {str(holds).ljust(5)}  {claim}" for notebook, holds, claim in rows]
    held = sum(holds is True for _, holds, _ in rows)
    lines.append(f"{held} of {len(rows)} checks hold (a False is a finding about this run, not an error)")
    return "\n".join(lines)


def main() -> int:
    """Print the table of recorded headline results.

    Returns:
        The process exit status (always 0: a damaged file is reported and left out).
    """
    print(f"Headline results ({results_dir()}):")
    recorded = load_results()
    print(format_results_table(recorded))
    checks = format_checks(recorded)
    if checks:
        print(f"\nClaims checked on the run:\n{checks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
