"""Run the whole course headlessly: ``python -m coursetools.run``.

Every ``notebooks/[0-9][0-9]_*.ipynb`` is executed in order with papermill (the
parameter ``MLCOURSE_MODE`` set to the chosen mode, working directory
``notebooks/``, kernel ``python3``). Each executed copy is written to
``build/notebooks/<name>.ipynb`` with an HTML export next to it. The run stops at
the first notebook that fails, and says why: the exception, the cell that raised it
and where the executed copy is (:func:`failure_report`). At the end the headline
results recorded by the notebooks (see :mod:`mlcourse.results`) are printed with each
notebook's wall time.

Usage:
    python -m coursetools.run [--mode smoke|workshop|full] [--out FOLDER] [--only PATTERN]
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mlcourse import results
from mlcourse.files import repo_root
from mlcourse.modes import MODES

from .export import MATHJAX_CONFIG, MATHJAX_FOLDER, copy_mathjax, offline_html

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
KERNEL = "python3"
# The kernel's own log: errors only (not its notice that it talks to papermill over local TCP).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
# What these notebooks need that only the rendered dataset has; with MLCOURSE_DATASET naming an
# imported collection of audio files (see mlcourse.data.collections) they are left out.
RENDERED_ONLY = {
    "00_data_tour": "the recipe's scores and metadata",
    "07_cross_modal": "scores (piano rolls)",
    "08_self_supervised": "scores (piano rolls)",
    "09_applications": "several versions of each piece and the tunes for segmentation",
}
# A failing cell's source is shown whole up to this many lines, else its first lines.
SOURCE_LINES = 15
# The cells papermill adds to the executed copy: the parameters it injects and its two error markers.
PAPERMILL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}
# The colour codes of IPython's tracebacks.
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Outcome:
    """What happened to one notebook.

    Attributes:
        name: The notebook's name without extension.
        seconds: Wall time of its execution.
        ok: Whether it ran to the end without an error.
    """

    name: str
    seconds: float
    ok: bool


def notebooks_dir() -> Path:
    """The folder holding the course notebooks.

    Returns:
        ``<repo root>/notebooks``.
    """
    return repo_root() / "notebooks"


def output_dir() -> Path:
    """Where executed notebooks and their HTML exports go.

    Returns:
        ``<repo root>/build/notebooks``.
    """
    return repo_root() / "build" / "notebooks"


def find_notebooks(folder: Path, only: str | None = None) -> list[Path]:
    """List the course notebooks in running order.

    Args:
        folder: The notebooks folder.
        only: Optional filter on the notebook name: a glob pattern
            (``"0[0-2]_*"``) or, without wildcards, a substring (``"lmnn"``).

    Returns:
        The matching notebooks, sorted by name.
    """
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if only:
        pattern = only if any(c in only for c in "*?[") else f"*{only}*"
        found = [p for p in found if fnmatch.fnmatch(p.stem, pattern)]
    return found


def absolutize_env(*names: str) -> None:
    """Make relative paths in environment variables absolute.

    Notebooks run with ``notebooks/`` as working directory, so a relative
    ``MLCOURSE_DATA`` or ``MLCOURSE_RESULTS`` given on the command line would
    otherwise point somewhere else inside the kernel.

    Args:
        names: Environment variable names to fix in place.
    """
    for name in names:
        value = os.environ.get(name)
        if value and not Path(value).expanduser().is_absolute():
            os.environ[name] = str(Path(value).expanduser().resolve())


def export_html(executed: Path) -> Path:
    """Export an executed notebook to HTML next to it, a page that loads nothing from the network.

    Widgets show the static picture their output carries, and MathJax comes from a local copy
    in ``mathjax/`` beside the page (:mod:`coursetools.export`).

    Args:
        executed: The executed ``.ipynb`` file.

    Returns:
        The path of the ``.html`` file written.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    copy_mathjax(executed.parent)
    body = offline_html(nb, mathjax_url=f"{MATHJAX_FOLDER}/{MATHJAX_CONFIG}")
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def execute(notebook: Path, mode: str, out: Path | None = None) -> Path:
    """Execute one notebook with papermill.

    Args:
        notebook: The source notebook.
        mode: The value given to the notebook's ``MLCOURSE_MODE`` parameter.
        out: The folder of the executed copy (default ``build/notebooks/``).

    Returns:
        The path of the executed copy.

    Raises:
        Exception: Whatever papermill raises when a cell fails (the executed copy,
            with the error in it, is still written).
    """
    import papermill as pm

    executed = (out or output_dir()) / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(notebook),
        str(executed),
        parameters={"MLCOURSE_MODE": mode},
        cwd=str(notebook.parent),
        kernel_name=KERNEL,
        extra_arguments=KERNEL_ARGUMENTS,
        progress_bar=False,
    )
    return executed


def run_one(notebook: Path, mode: str, out: Path | None = None) -> Outcome:
    """Execute a notebook, export it, and report how it went.

    Args:
        notebook: The source notebook.
        mode: The course mode.
        out: The folder of the executed copy and its HTML (default ``build/notebooks/``).

    Returns:
        Its outcome; on failure a message naming the notebook and its executed
        copy has been printed to stderr.
    """
    results.clear(notebook.stem)
    executed = (out or output_dir()) / notebook.name
    executed.unlink(missing_ok=True)  # never show a stale copy from an earlier run
    executed.with_suffix(".html").unlink(missing_ok=True)
    error: Exception | None = None
    start = time.perf_counter()
    try:
        execute(notebook, mode, out)
    except Exception as err:  # papermill raises several kinds; report them all
        error = err
    seconds = time.perf_counter() - start
    if executed.exists():
        try:
            export_html(executed)
        except Exception as err:
            print(f"  (could not export {executed.name} to HTML: {err})", file=sys.stderr)
    if error is not None:
        sys.stdout.flush()
        report = "\n  ".join(failure_report(error, executed))
        print(
            f"\nFAILED: notebook {notebook.name} stopped with an error after {seconds:.1f} s:\n  {report}",
            file=sys.stderr,
        )
    return Outcome(notebook.stem, seconds, error is None)


def failure_report(error: Exception, executed: Path) -> list[str]:
    """Say why a notebook failed: the exception, the cell that raised it, and where its executed copy is.

    The cell is read from the executed copy (papermill writes it, the error in it, even on failure)
    and numbered as in the source notebook: papermill's own ``cell_index`` also counts the
    parameters cell it injects, and the copy has two error markers more.

    Args:
        error: What executing the notebook raised.
        executed: The executed copy.

    Returns:
        The lines of the report; the exception's type and message are never cut short.
    """
    import nbformat

    cells = nbformat.read(executed, as_version=4).cells if executed.exists() else []
    cells = [cell for cell in cells if not PAPERMILL_TAGS & set(cell.metadata.get("tags", []))]
    raised = [
        (i, cell, out) for i, cell in enumerate(cells) for out in cell.get("outputs", []) if out.output_type == "error"
    ]
    if raised:
        index, cell, output = raised[0]
        source = cell.source.splitlines()
        if len(source) > SOURCE_LINES:
            source = source[:SOURCE_LINES] + [f"... ({len(source) - SOURCE_LINES} more lines)"]
        lines = [f"{output.ename}: {output.evalue}", f"in cell {index} (counting from 0), In [{cell.execution_count}]:"]
        lines += [f"    {line}" for line in source]
    else:  # no cell shows an error: the kernel died or did not start
        lines = [f"{type(error).__name__}: {str(error).strip()}"]
    if executed.exists():
        html = executed.with_suffix(".html")
        lines.append(f"Look at the executed copy: {_relative(executed)} (and {_relative(html)})")
    return [ANSI.sub("", line) for line in lines]


def _relative(path: Path) -> str:
    """Show a path relative to the current folder when it is below it.

    Args:
        path: An absolute path.

    Returns:
        The shortest readable form of the path.
    """
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def format_times(outcomes: list[Outcome]) -> str:
    """Lay out each notebook's wall time as a small table.

    Args:
        outcomes: The notebooks run, in order.

    Returns:
        One line per notebook plus a total.
    """
    width = max([len(o.name) for o in outcomes] + [len("total")])
    lines = [f"{o.name.ljust(width)}  {o.seconds:8.1f} s{'' if o.ok else '  FAILED'}" for o in outcomes]
    total = sum(o.seconds for o in outcomes)
    lines.append(f"{'total'.ljust(width)}  {total:8.1f} s")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The parsed options ``mode``, ``out`` and ``only``.
    """
    default_mode = os.environ.get("MLCOURSE_MODE") or "workshop"
    parser = argparse.ArgumentParser(
        prog="python -m coursetools.run",
        description="Execute every course notebook headlessly into build/notebooks/ and print the headline results.",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=default_mode if default_mode in MODES else None,
        help="dataset/training size the notebooks run at (default: $MLCOURSE_MODE, else workshop)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of the executed notebooks and their HTML (default: build/notebooks)",
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        help="run only notebooks whose name matches (glob, or substring without wildcards)",
    )
    args = parser.parse_args(argv)
    if args.mode is None:
        parser.error(f"MLCOURSE_MODE={default_mode!r} is not one of {', '.join(MODES)}")
    return args


def missing_concepts(collection: str) -> list[str]:
    """The course concepts an imported collection has no labels for.

    None if it cannot be read: the notebooks then say what is wrong with it.
    """
    from mlcourse.data import CONCEPTS
    from mlcourse.data.build import read_manifest
    from mlcourse.data.collections import collection_dir

    manifest = read_manifest(collection_dir(collection)) or {}
    return [c for c in CONCEPTS if c not in manifest.get("concepts", CONCEPTS)]


def main(argv: list[str] | None = None) -> int:
    """Run the course notebooks and print the summary.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        0 if every notebook ran, 1 if one failed, 2 if there was nothing to run.
    """
    args = parse_args(argv)
    folder = notebooks_dir()
    notebooks = find_notebooks(folder, args.only)
    if not notebooks:
        what = f" matching {args.only!r}" if args.only else ""
        print(f"No notebooks{what} ({NOTEBOOK_GLOB}) in {_relative(folder)}: nothing to run.", file=sys.stderr)
        return 2

    # The kernels inherit this environment: give them the same mode and absolute paths.
    os.environ["MLCOURSE_MODE"] = args.mode
    absolutize_env("MLCOURSE_DATA", "MLCOURSE_RESULTS")
    collection = os.environ.get("MLCOURSE_DATASET")
    if collection:
        if Path(collection).expanduser().is_dir():  # a folder rather than a collection's name
            absolutize_env("MLCOURSE_DATASET")
        lacking = missing_concepts(collection)
        if lacking:
            print(
                f"The collection {collection!r} has no {', '.join(lacking)} labels, which the notebooks use: "
                "add a column for each to its CSV and import it again.",
                file=sys.stderr,
            )
            return 2
        for notebook in [n for n in notebooks if n.stem in RENDERED_ONLY]:
            print(
                f"Leaving out {notebook.name}: it needs {RENDERED_ONLY[notebook.stem]}, "
                f"which the collection {collection!r} does not have."
            )
        notebooks = [n for n in notebooks if n.stem not in RENDERED_ONLY]
        if not notebooks:
            return 2

    out = (args.out or output_dir()).resolve()
    print(f"Running {len(notebooks)} notebook(s) in {args.mode} mode into {_relative(out)}/", flush=True)
    outcomes = []
    for i, notebook in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {notebook.name} ...", flush=True)
        outcome = run_one(notebook, args.mode, out)
        outcomes.append(outcome)
        if not outcome.ok:
            break
        print(f"    done in {outcome.seconds:.1f} s", flush=True)

    recorded = results.load_results()
    print("\nHeadline results:")
    print(results.format_results_table(recorded))
    checks = results.format_checks(recorded)
    if checks:
        print(f"\nClaims checked on the run:\n{checks}")
    print("\nWall time per notebook:")
    print(format_times(outcomes))
    if not outcomes[-1].ok:
        print(f"\nStopped at {outcomes[-1].name}: see the error above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
