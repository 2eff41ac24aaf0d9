"""Every course notebook's wall time and peak memory in workshop mode, against a 2 GB budget.

One command runs every ``notebooks/[0-9][0-9]_*.ipynb`` as ``make course`` does (papermill, one
fresh ``python3`` kernel per notebook, working directory ``notebooks/``, the parameter
``MLCOURSE_MODE``) and measures each one:

    .venv/bin/python bench/bench_notebooks.py [--quick] [--only PATTERN]

* **wall time**: of papermill's execution, from starting the kernel to its last cell;
* **peak memory**: a thread samples, every 0.2 s, the resident set size (RSS) of every process
  this script has started, recursively (the kernel and its own children: the dataset build's
  pool, DataLoader workers), and keeps the largest sum; the kernel's own peak is kept beside it.

Each notebook must stay under ``BUDGET_BYTES`` (2 GB) in workshop mode: the report flags any
that goes over, and the script then exits with status 1 (as when a notebook fails). The
dataset of the mode is built first, if needed, outside the measurements. The executed copies
go to a temporary folder, and the notebooks' headline results, UMAP maps and checkpoints to a
temporary ``MLCOURSE_RESULTS`` (so every notebook runs cold, and what ``make course`` wrote in
``build/`` is left alone). ``--quick`` runs in smoke mode. Results are printed and written to
``bench/results/notebooks.md`` and ``bench/results/notebooks.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from coursetools import run as course
from mlcourse import results
from mlcourse.data.build import build_dataset, cache_root, read_manifest, recipe_hash

from common import (
    POLL_SECONDS,
    REPO_ROOT,
    PeakMemory,
    command_line,
    describe_machine,
    format_header,
    make_parser,
    record_end_load,
    write_results,
)

BUDGET_BYTES = 2 * 10**9
"""Every notebook, kernel and children together, must stay under this peak RSS (2 GB)."""
MODE = "workshop"
QUICK_MODE = "smoke"
CODE_GLOBS = ("notebooks/[0-9][0-9]_*.ipynb", "mlcourse/**/*.py")
"""What the notebooks' time and memory depend on: hashed into the report, beside the commit."""
MB = 10**6


# --------------------------------------------------------------------------------------------
# Running the notebooks
# --------------------------------------------------------------------------------------------


def describe_code_tree(commit):
    """``"commit abc1234, notebooks/... + mlcourse/**/*.py sha256 0123456789ab"``.

    The notebooks' speed depends on the whole package, not on a few files, so every file
    matched by ``CODE_GLOBS`` is hashed (names and contents, in sorted order).
    """
    digest = hashlib.sha256()
    for pattern in CODE_GLOBS:
        for path in sorted(REPO_ROOT.glob(pattern)):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return f"commit {commit}, {' + '.join(CODE_GLOBS)} sha256 {digest.hexdigest()[:12]}"


def prepare_dataset(mode):
    """Build the mode's dataset if it is missing or stale, before any measurement.

    Returns:
        ``{"size", "cache", "built", "seconds"}``: whether it had to be built, and how long
        that took.
    """
    manifest = read_manifest(cache_root() / mode)
    up_to_date = bool(manifest and manifest.get("recipe_hash") == recipe_hash())
    start = time.perf_counter()
    folder = build_dataset(mode, quiet=True)
    # Relative to the repository when it is inside it: the report names no machine's folders.
    shown = folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder
    return {
        "size": mode,
        "cache": str(shown),
        "built": not up_to_date,
        "seconds": round(time.perf_counter() - start, 1),
    }


def first_line(error, limit=300):
    """The start of an exception's message, on one line, for the report."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def run_notebook(notebook, mode, output_dir, interval):
    """Execute one notebook as ``coursetools.run`` does, measuring its time and memory.

    Args:
        notebook: the source notebook.
        mode: its ``MLCOURSE_MODE`` parameter.
        output_dir: where the executed copy goes.
        interval: seconds between memory samples.

    Returns:
        A dict: name, ok, error (or None), seconds, the :class:`PeakMemory` figures, whether
        the peak is over the budget, and the headline results the notebook recorded.
    """
    import papermill as pm

    error = None
    with PeakMemory(interval) as memory:
        start = time.perf_counter()
        try:
            pm.execute_notebook(
                str(notebook),
                str(output_dir / notebook.name),
                parameters={"MLCOURSE_MODE": mode},
                cwd=str(notebook.parent),
                kernel_name=course.KERNEL,
                extra_arguments=course.KERNEL_ARGUMENTS,
                progress_bar=False,
            )
        except Exception as err:  # papermill raises several kinds; the bench goes on
            error = err
        seconds = time.perf_counter() - start
    recorded = results.results_dir() / f"{notebook.stem}.json"
    return {
        "name": notebook.stem,
        "ok": error is None,
        "error": None if error is None else first_line(error),
        "seconds": seconds,
        **memory.as_dict(),
        "over_budget": memory.peak_bytes > BUDGET_BYTES,
        "results": json.loads(recorded.read_text()) if recorded.exists() else {},
    }


def run_all(notebooks, mode, interval, keep):
    """Run every notebook in order, each cold, in temporary output and results folders.

    Args:
        notebooks: the notebooks to run.
        mode: the course mode.
        interval: seconds between memory samples.
        keep: keep the temporary folder (executed notebooks, results, maps, checkpoints).

    Returns:
        One dict per notebook, see :func:`run_notebook`.
    """
    scratch = Path(tempfile.mkdtemp(prefix="mlcourse-bench-notebooks-"))
    # The kernels inherit this environment, as under `make course`; the notebooks keep their
    # checkpoints in the results folder and their maps beside it, so those start empty too.
    os.environ["MLCOURSE_MODE"] = mode
    os.environ[results.RESULTS_ENV] = str(scratch / "results")
    (scratch / "notebooks").mkdir()
    rows = []
    try:
        for index, notebook in enumerate(notebooks, 1):
            print(f"[{index}/{len(notebooks)}] {notebook.name} ...", flush=True)
            row = run_notebook(notebook, mode, scratch / "notebooks", interval)
            rows.append(row)
            status = "ok" if row["ok"] else f"FAILED ({row['error']})"
            print(
                f"    {row['seconds']:.1f} s, peak RSS {row['peak_rss_bytes'] / MB:,.0f} MB "
                f"({row['max_processes']} process(es) at most): {status}",
                flush=True,
            )
    finally:
        if keep:
            print(f"Executed notebooks, results, maps and checkpoints kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def summarise(rows):
    """Totals and verdicts over all notebooks, JSON-ready."""
    worst = max(rows, key=lambda row: row["peak_rss_bytes"])
    return {
        "notebooks": len(rows),
        "total_seconds": sum(row["seconds"] for row in rows),
        "max_peak_rss_bytes": worst["peak_rss_bytes"],
        "max_peak_notebook": worst["name"],
        "max_peak_over_budget": worst["peak_rss_bytes"] / BUDGET_BYTES,
        "over_budget": [row["name"] for row in rows if row["over_budget"]],
        "failed": [row["name"] for row in rows if not row["ok"]],
    }


def format_table(rows, summary):
    """One row per notebook: time, peaks, share of the budget, status; then the total."""
    lines = [
        "| notebook | wall time (s) | peak RSS, all processes (MB) | of the 2 GB budget "
        "| kernel alone (MB) | processes at most | status |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        status = "ok" if row["ok"] else "FAILED"
        if row["over_budget"]:
            status += ", OVER BUDGET"
        lines.append(
            f"| {row['name']} | {row['seconds']:.1f} | {row['peak_rss_bytes'] / MB:,.0f} "
            f"| {row['peak_rss_bytes'] / BUDGET_BYTES:.0%} "
            f"| {row['kernel_peak_rss_bytes'] / MB:,.0f} | {row['max_processes']} "
            f"| {status} |"
        )
    lines.append(
        f"| total | {summary['total_seconds']:.1f} | max "
        f"{summary['max_peak_rss_bytes'] / MB:,.0f} | {summary['max_peak_over_budget']:.0%} "
        "| | | |"
    )
    return "\n".join(lines)


def format_verdict(summary):
    """One sentence on the budget, and the failures if any."""
    if summary["over_budget"]:
        text = f"**Over the 2 GB budget: {', '.join(summary['over_budget'])}.**"
    else:
        every = "The notebook" if summary["notebooks"] == 1 else f"All {summary['notebooks']} notebooks"
        text = (
            f"{every} stayed under the 2 GB budget; the highest peak was "
            f"{summary['max_peak_notebook']}'s, {summary['max_peak_rss_bytes'] / MB:,.0f} MB."
        )
    if summary["failed"]:
        text += f" **Failed: {', '.join(summary['failed'])}** (see the errors below)."
    return text


def format_notes(report):
    """How it was measured, and any error."""
    config, dataset = report["config"], report["dataset"]
    built = f"built first, in {dataset['seconds']:.0f} s (not counted)" if dataset["built"] else "already built"
    lines = [
        f"- Mode `{config['mode']}`: each notebook executed by papermill in its own fresh "
        f"`{course.KERNEL}` kernel, working directory `notebooks/`, as `make course` runs it; "
        "the wall time is papermill's, kernel start included.",
        f"- Peak RSS: every {config['interval_s']} s, the resident set sizes of the kernel and "
        "of every process under it (dataset build pool, DataLoader workers) are summed; the "
        "table gives the largest sum, and the kernel's own largest RSS beside it. Pages shared "
        "between processes count once per process, so the sum is an upper bound.",
        f"- Budget: 2 GB = {BUDGET_BYTES:,} bytes; 1 MB = 10^6 bytes.",
        f"- Cold runs: headline results, UMAP maps and checkpoints went to a temporary "
        f"`MLCOURSE_RESULTS`, empty at the start; the {dataset['size']} dataset was {built}.",
    ]
    lines += [f"- {row['name']} failed: `{row['error']}`" for row in report["notebooks"] if not row["ok"]]
    return "\n".join(lines)


def format_report(report):
    """The whole markdown report."""
    config, summary = report["config"], report["summary"]
    return (
        "\n\n".join(
            [
                format_header(
                    f"Notebooks in {config['mode']} mode: wall time and peak memory",
                    config["command"],
                    report["machine"],
                ),
                format_table(report["notebooks"], summary),
                format_verdict(summary),
                "## How it was measured",
                format_notes(report),
            ]
        )
        + "\n"
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_arguments():
    """``--quick``, ``--only``, ``--interval``, ``--keep``."""
    parser = make_parser(__doc__, f"run the notebooks in {QUICK_MODE} mode instead of {MODE}")
    parser.add_argument(
        "--only", metavar="PATTERN", help="only the notebooks whose name matches (a glob, or a substring)"
    )
    parser.add_argument(
        "--interval", type=float, default=POLL_SECONDS, help=f"seconds between memory samples (default {POLL_SECONDS})"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder of executed notebooks and results"
    )
    return parser.parse_args()


def main():
    """Run the notebooks, print and write the report; exit 1 if one failed or went over budget."""
    arguments = parse_arguments()
    mode = QUICK_MODE if arguments.quick else MODE
    notebooks = course.find_notebooks(course.notebooks_dir(), arguments.only)
    if not notebooks:
        sys.exit(f"No notebook matches {arguments.only!r} in notebooks/")
    config = {
        "command": command_line(),
        "mode": mode,
        "only": arguments.only,
        "interval_s": arguments.interval,
        "budget_bytes": BUDGET_BYTES,
    }
    machine = describe_machine()
    machine["code"] = describe_code_tree(machine["commit"])
    # The kernels run in notebooks/: a relative MLCOURSE_DATA must not change meaning there.
    course.absolutize_env("MLCOURSE_DATA")
    print(f"The {mode} dataset ...", flush=True)
    dataset = prepare_dataset(mode)
    rows = run_all(notebooks, mode, arguments.interval, arguments.keep)
    record_end_load(machine)
    report = {"config": config, "machine": machine, "dataset": dataset, "notebooks": rows, "summary": summarise(rows)}
    markdown = format_report(report)
    print("\n" + markdown)
    write_results("notebooks", markdown, report)
    summary = report["summary"]
    sys.exit(1 if summary["failed"] or summary["over_budget"] else 0)


if __name__ == "__main__":
    main()
