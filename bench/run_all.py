"""Run every benchmark in ``bench/`` and write the summary page ``bench/RESULTS.md``.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME,NAME]   # or: make bench [QUICK=1]
    .venv/bin/python bench/run_all.py --report-only                  # rebuild RESULTS.md only

Each bench script runs in turn as its own process (``python bench/bench_<name>.py``, with
``--quick`` passed through), in the order of ``BENCHES``; its output is shown and kept in
``build/bench/<name>.log``. A bench that fails does not stop the others: its exit status and wall
time are recorded in ``bench/results/suite.json`` with everyone else's. Then ``RESULTS.md`` is
written from every ``bench/results/<name>.json``: the machine, the date and the commit, one line
per bench (status, when its figures were measured, a link to its detailed report) and each
bench's headline figures, as ratios against the peer measured in the same run wherever there is
a peer. ``--report-only`` runs nothing and rebuilds ``RESULTS.md`` from the files already there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import BENCH_DIR, REPO_ROOT, RESULTS_DIR, describe_machine, format_header, record_end_load

BENCHES = {
    "lmnn": ("LMNN's fit time and 3-NN accuracy", "metric-learn, scikit-learn's NCA"),
    "losses": ("contrastive and triplet losses with mining, forward + backward", "pytorch-metric-learning"),
    "retrieval": ("recall@K on 50,000 embeddings", "faiss `IndexFlatL2`"),
    "dataset": ("the dataset build; the clip features; importing an audio folder", "librosa (features)"),
    "training": ("training throughput and where its time goes, CPU and CUDA when present", "—"),
    "explorer": (
        "the embedding explorer at 20,000 points: map time and quality, interaction delays",
        "scikit-learn's t-SNE",
    ),
    "notebooks": ("every notebook's wall time and peak memory in workshop mode", "the 2 GB budget"),
}
"""Bench name (``bench_<name>.py``, ``results/<name>.json``) -> (what it measures, its peer),
in running order: quick ones first, the notebooks (the longest) last."""
SUITE_FILE = RESULTS_DIR / "suite.json"
"""The last suite run: its command, machine, and each bench's exit status and wall time."""
SUMMARY_FILE = BENCH_DIR / "RESULTS.md"
LOG_DIR = REPO_ROOT / "build" / "bench"
RETRIEVAL_TARGET = 1.5
"""bench_retrieval.py's target: our R@K in at most 1.5 times faiss's time."""
NOTEBOOK_BUDGET_BYTES = 2 * 10**9
"""bench_notebooks.py's budget for each notebook's peak RSS (2 GB)."""
MB = 10**6


# --------------------------------------------------------------------------------------------
# Running the benches
# --------------------------------------------------------------------------------------------


def run_bench(name, quick):
    """Run ``bench_<name>.py`` as a subprocess, its output shown and written to its log.

    Returns:
        A dict: name, command, exit status, wall seconds, log path, and whether it wrote a
        fresh ``results/<name>.json``.
    """
    command = [sys.executable, str(BENCH_DIR / f"bench_{name}.py")] + (["--quick"] if quick else [])
    shown = " ".join(["python", f"bench/bench_{name}.py"] + command[2:])
    results_file = RESULTS_DIR / f"{name}.json"
    before = results_file.stat().st_mtime if results_file.exists() else None
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    print(f"\n==== {shown}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        for line in process.stdout:
            sys.stdout.write(line)
            log_file.write(line)
        status = process.wait()
    seconds = time.perf_counter() - start
    after = results_file.stat().st_mtime if results_file.exists() else None
    print(f"==== {shown}: exit status {status} after {seconds:.0f} s", flush=True)
    return {
        "name": name,
        "command": shown,
        "exit_status": status,
        "seconds": seconds,
        "log": str(log.relative_to(REPO_ROOT)),
        "wrote_results": after is not None and after != before,
    }


def run_suite(names, quick, command):
    """Run the benches in turn, recording each; write and return the suite record."""
    machine = describe_machine()
    suite = {"command": command, "quick": quick, "machine": machine, "benches": []}
    start = time.perf_counter()
    for name in names:
        suite["benches"].append(run_bench(name, quick))
    suite["total_seconds"] = time.perf_counter() - start
    record_end_load(machine)
    RESULTS_DIR.mkdir(exist_ok=True)
    SUITE_FILE.write_text(json.dumps(suite, indent=2) + "\n")
    return suite


# --------------------------------------------------------------------------------------------
# Reading the results
# --------------------------------------------------------------------------------------------


def load_json(path):
    """A JSON file's content, or None where it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def bench_command(report):
    """The command a results file was produced by (stored at the top or in its config)."""
    return report.get("command") or report.get("config", {}).get("command", "")


def seconds_text(seconds):
    """``"45 s"``, ``"12.3 min"`` or ``"1.2 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def load_text(machine):
    """``"1.3–1.9"``, the load at both ends of a run, starred when above the CPU count."""
    loads = [machine.get(f"load_average_1min_at_{end}") for end in ("start", "end")]
    known = [load for load in loads if load is not None]
    if not known:
        return "—"
    text = "–".join(f"{load:.1f}" for load in known)
    return text + (" (busy)" if max(known) > machine["cpu_count"] else "")


def status_text(name, run, report, suite):
    """What happened to a bench in the last suite run, and how old its figures are."""
    if report is None:
        status = "no results"
    elif run is None:
        status = "not in the last suite run" if suite else "—"
    elif run["exit_status"] != 0:
        status = f"**failed** (exit status {run['exit_status']}, log `{run['log']}`)"
    else:
        status = "ok"
    if run is not None and report is not None and not run["wrote_results"]:
        status += "; figures from an earlier run"
    return status


def format_overview(reports, suite):
    """One line per bench: what, against what, status, time, when and how, the details' link."""
    runs = {run["name"]: run for run in (suite or {}).get("benches", [])}
    lines = [
        "| bench | measures | against | status | wall time | figures from | mode | load | details |",
        "|---|---|---|---|---:|---|---|---|---|",
    ]
    for name, (measures, peer) in BENCHES.items():
        report, run = reports.get(name), runs.get(name)
        seconds = seconds_text(run["seconds"]) if run else "—"
        if report is None:
            when = mode = load = details = "—"
        else:
            machine = report["machine"]
            when = f"{machine['date'].replace('T', ' ')[:16]}, {machine['commit']}"
            mode = "quick" if "--quick" in bench_command(report) else "full"
            if name == "notebooks":
                mode = f"{report['config']['mode']}" + (
                    f", only `{report['config']['only']}`" if report["config"].get("only") else ""
                )
            load = load_text(machine)
            details = f"[results/{name}.md](results/{name}.md)"
        lines.append(
            f"| {name} | {measures} | {peer} | {status_text(name, run, report, suite)} "
            f"| {seconds} | {when} | {mode} | {load} | {details} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Each bench's headline figures
# --------------------------------------------------------------------------------------------


def ratio_text(value, digits=2):
    """A ratio, or a dash when it could not be computed."""
    return "—" if value is None else f"{value:.{digits}f}"


def lmnn_section(report):
    """Per dataset: our fit time, ours / each peer's time, and every method's 3-NN accuracy."""
    kinds = {"ours": "LMNN (mlcourse)", "metric-learn": "metric-learn", "nca": "NCA", "baseline": "no learning"}
    rows = {}
    for row in report["results"]:
        kind = next(kind for kind, mark in kinds.items() if mark in row["method"])
        rows[row["dataset"], kind] = row if row["status"] == "ok" else None

    def accuracy(dataset, kind):
        row = rows.get((dataset, kind))
        return "unavailable" if row is None else f"{row['accuracy']:.3f}"

    def time_ratio(dataset, peer):
        ours, other = rows.get((dataset, "ours")), rows.get((dataset, peer))
        return None if not ours or not other else ours["fit_time_s"] / other["fit_time_s"]

    lines = [
        "| dataset | our fit (s) | ours / metric-learn time | ours / NCA time "
        "| 3-NN accuracy: ours | metric-learn | NCA | no learning |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset in dict.fromkeys(row["dataset"] for row in report["results"]):
        ours = rows.get((dataset, "ours"))
        lines.append(
            f"| {dataset} | {ours['fit_time_s']:.3g} | {ratio_text(time_ratio(dataset, 'metric-learn'), 3)} "
            f"| {ratio_text(time_ratio(dataset, 'nca'))} | {accuracy(dataset, 'ours')} "
            f"| {accuracy(dataset, 'metric-learn')} | {accuracy(dataset, 'nca')} "
            f"| {accuracy(dataset, 'baseline')} |"
        )
    device = report["machine"].get("device", "cpu")
    return "\n".join(lines) + (
        f"\n\nOur LMNN ran on {device}. Fit times are medians of several fits; accuracies are "
        "5-fold CV means (wine, digits) or test-split scores (workshop)."
    )


def losses_section(report):
    """Ours / pml time for each loss (rows) and batch size (columns), and whether all agree."""
    results = report["results"]
    batches = sorted({row["batch_size"] for row in results})
    tasks = list(dict.fromkeys(row["task"] for row in results))
    times = {(row["task"], row["batch_size"]): row["ours_s"] / row["pml_s"] for row in results}
    lines = [
        "| loss | " + " | ".join(f"ours / pml time, B = {batch}" for batch in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for task in tasks:
        lines.append(f"| {task} | " + " | ".join(ratio_text(times.get((task, batch))) for batch in batches) + " |")

    def agrees(row):  # as bench_losses.agrees
        same_loss = row["loss_abs_diff"] <= 1e-5 * max(1.0, abs(row["loss_pml"]))
        same_grad = row["grad_max_abs_diff"] <= 1e-5 * max(1e-3, row["grad_max_abs"])
        return same_loss and same_grad and row["triplets_ours"] == row["triplets_pml"]

    same = sum(agrees(row) for row in results)
    return "\n".join(lines) + (
        f"\n\nSame loss, gradient and mined triplets as pml in {same} of {len(results)} "
        "comparisons. Median times of forward + backward, mining included."
    )


def retrieval_section(report):
    """Our R@K time over faiss's, against the target, and whether the recalls agree."""
    comparison, config = report["comparison"], report["config"]
    ours, peer = report["recall"]["ours"], report["recall"]["faiss"]
    timings = report["timings"]
    ratio = comparison["ours_over_faiss_time"]
    verdict = "within" if ratio <= RETRIEVAL_TARGET else "**outside**"
    return "\n".join(
        [
            "| task | ours (s) | faiss (s) | ours / faiss time: medians | best runs | target |",
            "|---|---:|---:|---:|---:|---|",
            f"| R@{{1, 2, 4, 8}} of {config['n_items']:,} embeddings "
            f"| {statistics.median(timings['ours_recall_s']):.2f} "
            f"| {statistics.median(timings['faiss_recall_s']):.2f} | {ratio:.2f} "
            f"| {comparison['ours_over_faiss_best_time']:.2f} | ≤ {RETRIEVAL_TARGET}: {verdict} |",
            "",
            f"R@1 {ours['1']:.4f} (ours), {peer['1']:.4f} (faiss): "
            f"{'the same' if comparison['same_recall'] else '**different**'} R@K from both. "
            f"Our mAP over the full ranking: {statistics.median(timings['ours_map_s']):.1f} s "
            "(no peer).",
        ]
    )


def dataset_section(report):
    """Build throughput per size, and our features' time over librosa's."""
    lines = [
        "| build | clips | workers | wall time (s) | clips/s | cache on disk (MB) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["builds"]:
        lines.append(
            f"| {row['size']} | {row['clips']:,} | {row['workers']} | {row['seconds']:.1f} "
            f"| {row['clips_per_second']:.0f} | {row['cache_bytes'] / MB:,.1f} "
            f"| {row['peak_rss_bytes'] / MB:,.0f} |"
        )
    features = report["features"]
    gaps = features["max_differences"]
    ratio = features["ours_over_librosa_time"]
    lines += [
        "",
        "| clip features (log-mel, chroma, 60 summary), one thread | ours: clips/s "
        "| librosa: clips/s | ours / librosa time |",
        "|---|---:|---:|---:|",
        f"| {features['clips']} {features['size']} clips | {features['ours_clips_per_second']:,.0f} "
        f"| {features['librosa_clips_per_second']:,.0f} | {ratio:.2f} |",
        "",
        f"Same features (log-mels within {gaps['logmel_db']:.1e} dB). Features are "
        f"{features['features_share_of_render_clips']:.0%} of a version's render-and-features "
        "time; the rest is rendering, which has no peer.",
    ]
    lines += [
        "",
        "| import of an audio folder | clips | decoded audio (MB) | wall time (s) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row['files']} files of {row['seconds_per_file']:.0f} s | {row['clips']:,} "
        f"| {row['decoded_audio_bytes'] / MB:,.0f} | {row['seconds']:.1f} "
        f"| {row['peak_rss_bytes'] / MB:,.0f} |"
        for row in report["imports"]
    ]
    return "\n".join(lines)


def training_section(report):
    """Clips/s per device and batch size (no peer: compare runs on the same machine)."""
    lines = [
        "| device | batch | clips/s | waiting for batches | device busy | busy ms / step | peak GPU memory (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        memory = row["peak_gpu_memory_mib"]
        lines.append(
            f"| {row['device']} | {row['batch_size']} | {row['clips_per_second']:.0f} "
            f"| {row['input_fraction']:.1%} | {row['compute_fraction']:.1%} "
            f"| {row['compute_ms_per_step']:.1f} "
            f"| {'—' if memory is None else f'{memory:.0f}'} |"
        )
    text = "\n".join(lines) + "\n\nNo peer library: compare runs on the same machine."
    if not any(row["device"] == "cuda" for row in report["rows"]):
        gpu = report["machine"].get("gpu")
        text += (
            " No CUDA GPU on this machine, so the CPU only."
            if not gpu
            else f" The {gpu} was not measured (run with `--device all`)."
        )
    return text


def explorer_section(report):
    """UMAP's time over t-SNE's, both maps' quality, and the browser's interaction delays."""
    seconds, quality = report["map_seconds"], report["quality"]
    lines = [
        f"| map of {report['config']['n_points']:,} points | time (s) | trustworthiness | class agreement |",
        "|---|---:|---:|---:|",
        f"| UMAP (the explorer's) | {seconds['umap_complete']:.1f} "
        f"| {quality['umap_complete']['trustworthiness']:.3f} "
        f"| {quality['umap_complete']['class_agreement']:.3f} |",
        f"| t-SNE (scikit-learn) | {seconds['tsne_complete']:.1f} "
        f"| {quality['tsne_complete']['trustworthiness']:.3f} "
        f"| {quality['tsne_complete']['class_agreement']:.3f} |",
        "",
        f"**UMAP / t-SNE time: {report['umap_over_tsne']:.2f}** (below 1, UMAP is faster).",
        "",
    ]
    browser = report.get("browser")
    if browser:
        labels = {
            "colour_change": "colour change",
            "hover": "hover",
            "click": "click",
            "switch_to_subspace": "switch of space",
        }
        delays = [
            f"{label} {statistics.median(browser[f'{name}_ms']):.0f} ms (max {max(browser[f'{name}_ms']):.0f})"
            for name, label in labels.items()
            if browser.get(f"{name}_ms")
        ]
        lines.append(f"Interaction delays in Chromium, medians: {', '.join(delays)}.")
    return "\n".join(lines)


def notebooks_section(report):
    """Each notebook's wall time and peak RSS against the 2 GB budget."""
    lines = ["| notebook | wall time (s) | peak RSS (MB) | peak / 2 GB | status |", "|---|---:|---:|---:|---|"]
    for row in report["notebooks"]:
        status = ("ok" if row["ok"] else "**failed**") + (", **over budget**" if row["over_budget"] else "")
        lines.append(
            f"| {row['name']} | {row['seconds']:.0f} | {row['peak_rss_bytes'] / MB:,.0f} "
            f"| {row['peak_rss_bytes'] / NOTEBOOK_BUDGET_BYTES:.2f} | {status} |"
        )
    summary = report["summary"]
    lines.append(
        f"| total | {summary['total_seconds']:.0f} | max "
        f"{summary['max_peak_rss_bytes'] / MB:,.0f} | {summary['max_peak_over_budget']:.2f} | |"
    )
    over = summary["over_budget"]
    every = "The notebook is" if summary["notebooks"] == 1 else f"All {summary['notebooks']} notebooks are"
    verdict = f"**Over budget: {', '.join(over)}.**" if over else f"{every} under the 2 GB budget."
    return "\n".join(lines) + (
        f"\n\n{verdict} Peak RSS: the kernel and its children, summed every "
        f"{report['config']['interval_s']} s (an upper bound); mode `{report['config']['mode']}`."
    )


SECTIONS = {
    "lmnn": ("LMNN against metric-learn and NCA", lmnn_section),
    "losses": ("Losses against pytorch-metric-learning", losses_section),
    "retrieval": ("Recall@K against faiss", retrieval_section),
    "dataset": ("Dataset build, and features against librosa", dataset_section),
    "training": ("Training throughput", training_section),
    "explorer": ("Explorer: UMAP against t-SNE", explorer_section),
    "notebooks": ("Notebooks: wall time and peak memory", notebooks_section),
}


# --------------------------------------------------------------------------------------------
# The summary page
# --------------------------------------------------------------------------------------------


def format_summary(reports, suite, command, machine):
    """The whole ``RESULTS.md``."""
    generated = datetime.datetime.now().isoformat(timespec="seconds")
    intro = [
        f"Generated {generated}. Every ratio below is **ours / "
        "peer**, of times measured in the same run of the same bench: below 1, ours is faster "
        "(the detailed reports of `lmnn` and `losses` give the inverse, peer / ours). Compare "
        "ratios, not absolute times across machines; a load above the CPU count ('busy') means "
        "other programs competed for the cores during that bench.",
    ]
    if suite:
        intro.append(
            f"Last suite run: `{suite['command']}`, {len(suite['benches'])} bench(es) in "
            f"{seconds_text(suite['total_seconds'])}; the machine above is that run's."
        )
    parts = [
        format_header("Benchmark results", command, machine),
        "\n\n".join(intro),
        "## The benches",
        format_overview(reports, suite),
    ]
    for name, (title, section) in SECTIONS.items():
        report = reports.get(name)
        parts.append(f"## {title}")
        if report is None:
            parts.append(f"No results yet: run `python bench/bench_{name}.py`.")
            continue
        try:
            body = section(report)
        except (KeyError, TypeError, ValueError, StopIteration) as error:
            body = (
                f"Could not read `results/{name}.json` ({type(error).__name__}: {error}): "
                f"it may come from an older version of the bench; run it again."
            )
        parts.append(f"{body}\n\nDetails: [results/{name}.md](results/{name}.md).")
    return "\n\n".join(parts) + "\n"


def write_summary(command, machine=None):
    """Read every results file and the last suite record, and write ``RESULTS.md``."""
    reports = {name: load_json(RESULTS_DIR / f"{name}.json") for name in BENCHES}
    reports = {name: report for name, report in reports.items() if report is not None}
    suite = load_json(SUITE_FILE)
    if machine is None:  # --report-only: the last suite run's machine, else this one now
        machine = suite["machine"] if suite else describe_machine()
        if not suite:
            record_end_load(machine)
    SUMMARY_FILE.write_text(format_summary(reports, suite, command, machine))
    print(f"Written to {SUMMARY_FILE.relative_to(REPO_ROOT)}")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_arguments():
    """``--quick``, ``--only``, ``--report-only``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every bench (smoke sizes, fewer repeats)")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated benches to run, among {', '.join(BENCHES)}")
    parser.add_argument(
        "--report-only", action="store_true", help="run nothing: rebuild RESULTS.md from bench/results/*.json"
    )
    arguments = parser.parse_args()
    if arguments.only:
        arguments.names = [name.strip() for name in arguments.only.split(",") if name.strip()]
        unknown = [name for name in arguments.names if name not in BENCHES]
        if unknown:
            parser.error(f"unknown bench(es) {', '.join(unknown)}: choose among {', '.join(BENCHES)}")
    else:
        arguments.names = list(BENCHES)
    return arguments


def main():
    """Run the benches (unless --report-only), write RESULTS.md; exit 1 if a bench failed."""
    arguments = parse_arguments()
    command = " ".join(["python", "bench/run_all.py", *sys.argv[1:]])
    if arguments.report_only:
        write_summary(command)
        return 0
    suite = run_suite(arguments.names, arguments.quick, command)
    write_summary(command, suite["machine"])
    failed = [run["name"] for run in suite["benches"] if run["exit_status"] != 0]
    print(
        f"\n{len(suite['benches'])} bench(es) in {seconds_text(suite['total_seconds'])}"
        + (f"; failed: {', '.join(failed)}" if failed else "; all ok")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
