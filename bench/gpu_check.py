"""Check the course's GPU path in one command, and write one report.

    python bench/gpu_check.py               # on a machine with an NVIDIA GPU (about 10 minutes)
    python bench/gpu_check.py --rehearsal   # anywhere: the same steps at smoke size, for a try-out

Every training loop of the course runs on a CUDA GPU when there is one (``mlcourse.train``):
this script runs what a learner with a GPU runs first, and what only a GPU can check. The
steps, each in a process of its own (one that fails is reported with the end of its output, and
the next one runs):

1. **the CUDA tests**: ``pytest -m cuda``, the tests that need a GPU (without one they are all
   skipped, and the report says so): bfloat16 against float32 losses, the training clock on the
   GPU, the augmentations on the GPU, and DDP under torchrun with one process per GPU (that one
   needs 2 GPUs or more; ``tests/test_distributed.py`` checks DDP with 2 CPU processes anywhere);
2. **training throughput**: ``bench/bench_training.py --device all`` (clips per second, the
   device's busy share, ms per step, peak GPU memory; ``--quick`` in a rehearsal);
3. **the course**: every notebook in workshop mode (smoke in a rehearsal), as ``make course``
   runs it: wall times, headline results and checks;
4. **full mode**: notebooks 03, 06 and 09 in full mode (smoke in a rehearsal), their headline
   results beside the workshop ones.

On a machine that cannot reach PyPI, ``bench/gpu_wheels.py`` prepares the packages to carry.
Each mode's dataset is built first, with every core. The report is written to
``bench/results/gpu_check.md`` and ``.json`` (a rehearsal: ``gpu_check_rehearsal``), the
executed notebooks and each step's log to ``build/gpu_check/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from mlcourse import pretrained
from mlcourse.results import format_value

from common import REPO_ROOT, command_line, describe_machine, format_header, record_end_load, write_results

OUT = REPO_ROOT / "build" / "gpu_check"
FULL_NOTEBOOKS = "0[369]_*"  # 03 siamese, 06 disentangled, 09 applications
TAIL = 3000  # characters of a failed step's output kept in the report


def run_step(name, command, seconds, env=None):
    """Run one step as its own process; its output goes to ``OUT/<name>.log``.

    Returns:
        ``{"step", "command", "seconds", "returncode", "tail"}``; ``returncode`` is None when the
        step ran past ``seconds`` and was stopped, ``tail`` the end of its output.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{name}.log"
    print(f"== {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=seconds
        )
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as stopped:
        returncode = None
        output = "".join(
            part.decode() if isinstance(part, bytes) else part or "" for part in (stopped.stdout, stopped.stderr)
        )
        output += f"\n(stopped after {seconds} s)"
    log.write_text(output)
    elapsed = time.perf_counter() - start
    print(
        f"   {'ok' if returncode == 0 else 'FAILED'} in {elapsed:.1f} s (log: {os.path.relpath(log, REPO_ROOT)})",
        flush=True,
    )
    return {
        "step": name,
        "command": portable(" ".join(command)),
        "seconds": elapsed,
        "returncode": returncode,
        "tail": portable(output[-TAIL:]),
    }


def portable(text):
    """``text`` as it reads on any checkout: this interpreter as ``python``, paths from the repository root."""
    return text.replace(sys.executable, "python").replace(f"{REPO_ROOT}{os.sep}", "")


def notebook_outcomes(folder, results_folder):
    """Each executed notebook's wall time (papermill's) and its recorded results and checks."""
    rows = {}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(path.read_text())["metadata"].get("papermill", {})
        recorded = Path(results_folder) / f"{path.stem}.json"
        rows[path.stem] = {
            "seconds": meta.get("duration"),
            "results": json.loads(recorded.read_text()) if recorded.exists() else {},
        }
    return rows


def run_course(name, mode, only, seconds, workers, env=None):
    """Build the mode's dataset, then run the notebooks matching ``only`` (all: None) in ``mode``."""
    python = sys.executable
    build = run_step(
        f"{name}-dataset", [python, "-m", "mlcourse.data", "build", "--size", mode, "--workers", str(workers)], seconds
    )
    folder, results_folder = OUT / name, OUT / f"{name}-results"
    command = [python, "-m", "coursetools.run", "--mode", mode, "--out", str(folder)]
    step = run_step(
        name,
        command + (["--only", only] if only else []),
        seconds,
        env={"MLCOURSE_RESULTS": str(results_folder), **(env or {})},
    )
    step["dataset"] = build
    step["notebooks"] = notebook_outcomes(folder, results_folder)
    return step


def device_facts():
    """What torch sees: its version, CUDA's, and each GPU's name and memory."""
    facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpus": []}
    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        facts["gpus"].append({"name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1)})
    return facts


def headline_rows(course, full):
    """One row per headline result of a full-mode notebook: its workshop value beside its full value."""
    rows = []
    for notebook, outcome in full["notebooks"].items():
        quick = course["notebooks"].get(notebook, {}).get("results", {})
        for key, value in outcome["results"].items():
            if not key.startswith("check: "):
                rows.append((notebook, key, quick.get(key), value))
    return rows


def format_models(folder):
    """The models the full-mode notebooks kept, as a markdown section."""
    manifest = folder / pretrained.MANIFEST
    if not manifest.exists():
        return "\n## Models kept\n\nNone.\n"
    entries = json.loads(manifest.read_text())
    lines = [
        "",
        f"## Models kept, in {os.path.relpath(folder, REPO_ROOT)}",
        "",
        "| model | notebook | mode | epochs | device | kB | sha256 |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for name, e in entries.items():
        trained = e.get("trained", {})
        how = " | ".join(str(trained.get(key, "—")) for key in ("mode", "epochs", "device"))
        lines.append(f"| {name} | {e['notebook']} | {how} | {e['bytes'] / 1000:.0f} | {e['sha256'][:12]} |")
    return "\n".join(lines) + "\n"


def shown(value):
    """A figure as the course's results table prints it; — where that run did not record it."""
    return "—" if value is None else format_value(value)


def format_report(steps, course, full, facts, machine, command, rehearsal):
    """The report as markdown: the steps, the notebooks' times and checks, full against workshop."""
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in facts["gpus"]) or "none (CPU only)"
    lines = [f"- Device: {gpus}; torch {facts['torch']}, CUDA {facts['cuda'] or '—'}."]
    if rehearsal:
        lines.append("- **Rehearsal**: smoke-sized data and training, on whatever device is here.")
    lines += ["", "| step | status | seconds | its last line |", "|---|---|---:|---|"]
    for step in steps:
        status = "ok" if step["returncode"] == 0 else ("stopped" if step["returncode"] is None else "failed")
        last = next((line.strip() for line in reversed(step["tail"].splitlines()) if line.strip()), "")
        lines.append(f"| {step['step']} | {status} | {step['seconds']:.1f} | {last[:100].replace('|', '/')} |")
    for title, step in (("The course", course), ("Full mode", full)):
        lines += [
            "",
            f"## {title} ({step['mode']} mode)",
            "",
            "| notebook | seconds | checks that hold |",
            "|---|---:|---:|",
        ]
        for notebook, outcome in step["notebooks"].items():
            checks = [v for k, v in outcome["results"].items() if k.startswith("check: ")]
            seconds = "—" if outcome["seconds"] is None else f"{outcome['seconds']:.1f}"
            lines.append(f"| {notebook} | {seconds} | {sum(checks)} of {len(checks)} |")
    lines += [
        "",
        "## Full mode beside the workshop run",
        "",
        f"| notebook | result | {course['mode']} | {full['mode']} |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {n} | {k} | {shown(a)} | {shown(b)} |" for n, k, a, b in headline_rows(course, full)]
    failed = [step for step in steps if step["returncode"] != 0]
    for step in failed:
        lines += ["", f"## {step['step']}: the end of its output", "", "```", step["tail"].strip(), "```"]
    title = "The GPU path: one check" + (" (rehearsal)" if rehearsal else "")
    return format_header(title, command, machine) + "\n\n" + "\n".join(lines) + "\n"


def main():
    """Run every step, print the report and write it to bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rehearsal", action="store_true", help="smoke sizes: a try-out on any machine")
    parser.add_argument("--step-seconds", type=int, default=600, help="each step's time limit")
    args = parser.parse_args()
    if not args.rehearsal and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run with --rehearsal for a try-out on the CPU")
    workshop, full_mode = ("smoke", "smoke") if args.rehearsal else ("workshop", "full")
    workers = os.cpu_count() or 1
    shutil.rmtree(OUT, ignore_errors=True)  # no checkpoint, map or result of an earlier check is reused
    machine = describe_machine()
    facts = device_facts()
    python = sys.executable
    steps = [
        run_step(
            "cuda-tests",
            [python, "-m", "pytest", "-q", "-rs", "-m", "cuda", "-p", "no:cacheprovider"],
            args.step_seconds,
        ),
        run_step(
            "training",
            [python, "bench/bench_training.py", "--device", "all"] + (["--quick"] if args.rehearsal else []),
            args.step_seconds,
            env={"MLCOURSE_BENCH_RESULTS": str(OUT / "bench")},
        ),
    ]
    training = OUT / "bench" / "training.md"
    course = run_course("course", workshop, None, args.step_seconds, workers)
    # The full-mode models are kept (mlcourse.pretrained): into data/models on a GPU, aside in a rehearsal.
    models = OUT / "models" if args.rehearsal else pretrained.models_dir()
    full = run_course(
        "full", full_mode, FULL_NOTEBOOKS, args.step_seconds, workers, env={pretrained.SAVE_ENV: str(models)}
    )
    course["mode"], full["mode"] = workshop, full_mode
    steps += [course["dataset"], course, full["dataset"], full]
    record_end_load(machine)
    markdown = format_report(steps, course, full, facts, machine, command_line(), args.rehearsal)
    markdown += format_models(models)
    if training.exists():  # the throughput table, as bench_training.py wrote it
        text = training.read_text()
        markdown += "\n## Training throughput\n\n" + text[text.index("| device") :]
    print("\n" + markdown)
    report = {
        "machine": machine,
        "device": facts,
        "rehearsal": args.rehearsal,
        "steps": [{k: v for k, v in step.items() if k not in ("dataset",)} for step in steps],
    }
    write_results("gpu_check_rehearsal" if args.rehearsal else "gpu_check", markdown, report)
    return 0 if all(step["returncode"] == 0 for step in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
