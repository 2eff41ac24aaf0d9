"""What every benchmark in ``bench/`` shares: the machine's description and the result files.

Each ``bench_*.py`` script measures something different, but all of them record the same facts
about the machine (a time is only meaningful with the CPU, the threads, the load and the library
versions beside it), print a markdown report that starts the same way, and write it to
``bench/results/<name>.md`` with every number in ``bench/results/<name>.json``.

The scripts run as ``python bench/bench_x.py``, which puts ``bench/`` on ``sys.path``, so they
import this module as ``from common import ...``; ``bench/`` is not a package.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# Where the reports go; bench/gpu_check.py points it elsewhere, so a try-out leaves the committed ones alone.
RESULTS_DIR = Path(os.environ.get("MLCOURSE_BENCH_RESULTS") or BENCH_DIR / "results")


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def make_parser(docstring, quick_help):
    """An argument parser with the ``--quick`` flag every benchmark has.

    Args:
        docstring: the script's module docstring; its first paragraph becomes the description.
        quick_help: what ``--quick`` leaves out, for ``--help``.

    Returns:
        An ``argparse.ArgumentParser``, to which the script adds its own options.
    """
    parser = argparse.ArgumentParser(description=docstring.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser


def command_line():
    """The command this process was started with, as a reader would retype it.

    Returns:
        ``"python bench/bench_x.py --option ..."``, the script path relative to the repository
        root (so that the report does not depend on where the repository was checked out).
    """
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(REPO_ROOT):
        script = script.relative_to(REPO_ROOT)
    return shlex.join(["python", str(script), *sys.argv[1:]])


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def timed(function, *arguments, **keywords):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = function(*arguments, **keywords)
    return result, time.perf_counter() - start


POLL_SECONDS = 0.2
"""How often :class:`PeakMemory` samples the memory of a process tree."""


class PeakMemory:
    """Sample the summed RSS of this process's descendants in a thread, and keep the peak.

    Use it as a context manager around the work to measure. RSS counts the pages each process
    has in memory, so pages shared between processes (a forked worker's copy-on-write pages,
    the same memory-mapped file) are counted once per process: the sum is an upper bound of
    the memory the tree really holds, which is what a budget should be checked against.

    Attributes:
        peak_bytes: the largest summed RSS seen.
        peak_at_s: when it was seen, in seconds from the start.
        processes_at_peak: how many processes were summed then.
        max_processes: the most processes seen at once.
        children_peak_bytes: the largest RSS of a direct child alone (for a notebook: the
            kernel, without its workers).
        samples: how many samples were taken.
    """

    def __init__(self, interval=POLL_SECONDS, include_self=False):
        """Args:
        interval: seconds between samples.
        include_self: count this process too (for work done in it, like the dataset build's
            main process); by default only the processes it started.
        """
        self.interval = interval
        self.include_self = include_self
        self.me = psutil.Process()
        self.peak_bytes = 0
        self.peak_at_s = 0.0
        self.processes_at_peak = 0
        self.max_processes = 0
        self.children_peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._start = 0.0

    def __enter__(self):
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        return False

    def _poll(self):
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                self.sample()  # one last look, so a short run still gets two samples
                return

    def sample(self):
        """Sum the RSS of the process tree now, and update the peaks."""
        try:
            children = self.me.children(recursive=True)
        except psutil.Error:
            return
        direct = {child.pid for child in self.me.children()} if children else set()
        processes = children + ([self.me] if self.include_self else [])
        total, counted = 0, 0
        for process in processes:
            try:
                rss = process.memory_info().rss
            except psutil.Error:  # it ended between the listing and now
                continue
            total += rss
            counted += 1
            if process.pid in direct:
                self.children_peak_bytes = max(self.children_peak_bytes, rss)
        self.samples += 1
        self.max_processes = max(self.max_processes, counted)
        if total > self.peak_bytes:
            self.peak_bytes = total
            self.peak_at_s = time.perf_counter() - self._start
            self.processes_at_peak = counted

    def as_dict(self):
        """The measurements, JSON-ready."""
        return {
            "peak_rss_bytes": self.peak_bytes,
            "peak_at_s": round(self.peak_at_s, 1),
            "processes_at_peak": self.processes_at_peak,
            "max_processes": self.max_processes,
            "kernel_peak_rss_bytes": self.children_peak_bytes,
            "samples": self.samples,
        }


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


def describe_machine(code_files=(), versions=None, extra=None):
    """Date, code version, CPU, threads, load, GPU and library versions, as a JSON-ready dict.

    Args:
        code_files: paths, relative to the repository root, of the files whose speed is
            measured. Their sha256 goes into ``"code"`` beside the commit, because a benchmark
            is often run on uncommitted changes that the commit alone would not identify.
        versions: ``{name: version}`` of the peer libraries compared against, listed between
            torch and numpy, e.g. ``{"faiss": faiss.__version__}``.
        extra: more entries merged in last, e.g. the device a method ran on.

    Returns:
        A dict with ``date``, ``commit``, ``code``, ``platform``, ``cpu``, ``cpu_count``,
        ``torch_threads``, ``gpu`` (the CUDA device's name, or None),
        ``load_average_1min_at_start``, ``versions`` (``{"python": ..., "torch": ..., <peers>,
        "numpy": ...}``) and ``extra``'s entries. Call :func:`record_end_load` once the
        measurements are done.
    """
    commit = git_commit()
    machine = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": commit,
        "code": describe_code(commit, code_files),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average_1min_at_start": load_average(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            **(versions or {}),
            "numpy": np.__version__,
        },
    }
    machine.update(extra or {})
    return machine


def record_end_load(machine):
    """Add the 1-minute load average now to ``machine``, as ``load_average_1min_at_end``.

    A load above the CPU count at either end means other programs competed for the cores
    during the run, which :func:`format_machine` points out.
    """
    machine["load_average_1min_at_end"] = load_average()


def git_commit():
    """The short hash of the checked-out commit, or ``"unknown"`` outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:  # no git on this machine
        return "unknown"
    return result.stdout.strip() or "unknown"


def describe_code(commit, code_files):
    """``"commit abc1234, mlcourse/x.py + mlcourse/y.py sha256 0123456789ab"``.

    Args:
        commit: the short commit hash.
        code_files: paths relative to the repository root; none gives the commit alone.

    Returns:
        The text; a file that does not exist makes the hash ``"missing"``.
    """
    if not code_files:
        return f"commit {commit}"
    paths = [REPO_ROOT / name for name in code_files]
    if all(path.exists() for path in paths):
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.read_bytes())
        hexdigest = digest.hexdigest()[:12]
    else:
        hexdigest = "missing"
    return f"commit {commit}, {' + '.join(code_files)} sha256 {hexdigest}"


def cpu_model():
    """The CPU's model name where the system says it, else the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average():
    """The 1-minute load average, or None where the system does not report one (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def format_machine(machine, notes=()):
    """The machine as markdown bullet lines, one per fact.

    Args:
        machine: a dict from :func:`describe_machine`.
        notes: bench-specific bullet lines (without the ``- ``), put after the CPU's line,
            e.g. the device a method ran on.

    Returns:
        The lines joined by newlines.
    """
    versions = ", ".join(
        f"{'Python' if name == 'python' else name} {version}" for name, version in machine["versions"].items()
    )
    lines = [
        f"- Date: {machine['date']}; code: {machine['code']}",
        f"- CPU: {machine['cpu']}, {machine['cpu_count']} logical CPUs; torch uses "
        f"{machine['torch_threads']} threads; GPU: {machine['gpu'] or 'none'}",
        *(f"- {note}" for note in notes),
    ]
    load_line = format_load(machine)
    if load_line:
        lines.append(load_line)
    lines.append(f"- {versions} ({machine['platform']})")
    return "\n".join(lines)


def format_load(machine):
    """The load-average bullet line, with a warning when the cores were contended, or ``""``."""
    loads = [machine.get(f"load_average_1min_at_{end}") for end in ("start", "end")]
    known = [load for load in loads if load is not None]
    if not known:
        return ""
    text = "- 1-minute load average: " + ", ".join(
        f"{load:.1f} at the {end}" for load, end in zip(loads, ("start", "end")) if load is not None
    )
    if max(known) > machine["cpu_count"]:
        # Times from such a run vary: the reader should trust the best repeats over medians.
        text += (
            ": above the CPU count, so other programs were competing for the cores and "
            "times vary from run to run (the best runs are the least disturbed)"
        )
    return text


def format_header(title, command, machine, notes=()):
    """The start every report shares: title, command and machine.

    Args:
        title: the report's title, without the ``#``.
        command: the command line, from :func:`command_line`.
        machine: a dict from :func:`describe_machine`.
        notes: bench-specific machine lines, see :func:`format_machine`.

    Returns:
        Markdown blocks separated by blank lines, to be followed by the report's own sections.
    """
    return "\n\n".join([f"# {title}", f"Command: `{command}`", format_machine(machine, notes)])


def write_results(name, markdown, report):
    """Write ``bench/results/<name>.md`` and ``<name>.json``, and say where.

    Args:
        name: the file stem, e.g. ``"losses"``.
        markdown: the report as markdown.
        report: the report as a JSON-serialisable dict, with every individual measurement.
    """
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.md").write_text(markdown)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Written to {(RESULTS_DIR / name).relative_to(REPO_ROOT)}.md and {name}.json")
