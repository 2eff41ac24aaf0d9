"""Benchmark our LMNN against metric-learn's LMNN, scikit-learn's NCA and plain 3-NN.

One command measures, in one run and on the same standardised data, the wall time of ``fit``
and the accuracy of a 3-nearest-neighbour classifier in the learned space:

    .venv/bin/python bench/bench_lmnn.py [--quick] [--device cpu|cuda]

Datasets: scikit-learn's wine (178 x 13) and digits (1797 x 64), with 5-fold stratified
cross-validation for accuracy and one timed fit on the full data; and the course's workshop
summary features (2880 x 60 train, 720 test) for the ``instrument`` and ``genre`` concepts,
trained on the train split and scored on the test split. ``--quick`` runs wine and digits only,
with fewer timing repeats.

metric-learn 0.7.0 needs scikit-learn < 1.8, so it runs in a side environment
(``bench/.venv-metric-learn``, created on first use) through ``bench/metric_learn_runner.py``.
Results are printed and written to ``bench/results/lmnn.md`` and ``bench/results/lmnn.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.preprocessing import LabelEncoder, StandardScaler

from common import (
    BENCH_DIR,
    REPO_ROOT,
    command_line,
    describe_machine,
    format_header,
    make_parser,
    record_end_load,
    write_results,
)

CODE_FILES = ("mlcourse/linear.py",)
"""The file measured: its hash goes into the report, beside the commit."""
SIDE_ENV_DIR = BENCH_DIR / ".venv-metric-learn"
RUNNER = BENCH_DIR / "metric_learn_runner.py"
SIDE_ENV_REQUIREMENTS = ["metric-learn==0.7.0", "scikit-learn<1.8", "numpy", "scipy"]

N_NEIGHBORS = 3
"""k for LMNN's target neighbours and for the kNN classifier, for every method."""
N_FOLDS = 5
SEED = 0

OURS = "LMNN (mlcourse)"
METRIC_LEARN = "LMNN (metric-learn 0.7.0)"
NCA = "NCA (scikit-learn)"
BASELINE = "3-NN, no learning"
METHODS = (OURS, METRIC_LEARN, NCA, BASELINE)


# --------------------------------------------------------------------------------------------
# Data: every method sees the same standardised arrays
# --------------------------------------------------------------------------------------------


@dataclass
class Split:
    """One train/test split, standardised with a scaler fitted on its training part.

    X_train: (N, D) float64. y_train: (N,) int. X_test: (M, D) float64. y_test: (M,) int.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Benchmark:
    """A dataset, its accuracy splits and the training set whose fit is timed.

    ``timed_X``/``timed_y`` is an extra full-data fit (cross-validation); ``None`` means the
    fit on the single split's training part is the timed one.
    """

    name: str
    protocol: str
    splits: list[Split]
    timed_X: np.ndarray | None = None
    timed_y: np.ndarray | None = None

    def training_sets(self):
        """Every (X, y) to fit, the timed one last."""
        sets = [(split.X_train, split.y_train) for split in self.splits]
        if self.timed_X is not None:
            sets.append((self.timed_X, self.timed_y))
        return sets


def standardise_split(X_train, y_train, X_test, y_test):
    """A :class:`Split` with a StandardScaler fitted on the training part only."""
    scaler = StandardScaler().fit(X_train)
    return Split(scaler.transform(X_train), y_train, scaler.transform(X_test), y_test)


def cross_validation_benchmark(name, X, y):
    """Stratified, shuffled ``N_FOLDS``-fold CV for accuracy, plus one full-data fit to time."""
    X = np.asarray(X, dtype=np.float64)
    folds = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=SEED)
    splits = [standardise_split(X[train], y[train], X[test], y[test]) for train, test in folds.split(X, y)]
    protocol = f"{N_FOLDS}-fold stratified CV (seed {SEED}); fit timed on all {len(y)} samples"
    return Benchmark(name, protocol, splits, StandardScaler().fit_transform(X), y)


def workshop_benchmark(concept):
    """The course's workshop summary features: train on the train split, score on test."""
    from mlcourse.data import load_dataset

    train = load_dataset("workshop", split="train")
    test = load_dataset("workshop", split="test")
    labels = LabelEncoder().fit(np.concatenate([train.meta[concept], test.meta[concept]]))
    split = standardise_split(
        np.asarray(train.summary, dtype=np.float64),
        labels.transform(train.meta[concept]),
        np.asarray(test.summary, dtype=np.float64),
        labels.transform(test.meta[concept]),
    )
    protocol = f"train split ({len(split.y_train)}) -> test split ({len(split.y_test)}); fit timed on train"
    return Benchmark(f"workshop {concept}", protocol, [split])


def load_benchmarks(quick):
    """wine and digits; with the workshop's instrument and genre unless ``quick``."""
    benchmarks = [
        cross_validation_benchmark("wine", *load_wine(return_X_y=True)),
        cross_validation_benchmark("digits", *load_digits(return_X_y=True)),
    ]
    if not quick:
        benchmarks += [workshop_benchmark("instrument"), workshop_benchmark("genre")]
    return benchmarks


# --------------------------------------------------------------------------------------------
# Fitting: each method gives, per training set, a linear map and its fit times
# --------------------------------------------------------------------------------------------


@dataclass
class Fit:
    """One training set's result: the learned map ``components`` (D', D) and ``fit`` times."""

    components: np.ndarray
    seconds: list[float] = field(default_factory=list)
    converged: bool | None = None
    n_iter: int | None = None


class MethodUnavailable(Exception):
    """A method could not run here; the message says why."""


def time_local_fit(make_estimator, X, y, device):
    """Build a fresh estimator, fit it, and return it with the wall time of ``fit`` alone."""
    estimator = make_estimator()
    with warnings.catch_warnings():
        # Convergence is recorded in the table; the warning would only repeat it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return estimator, seconds


def fit_local_method(make_estimator, has_converged, training_sets, repeats, device="cpu"):
    """Fit an in-process estimator on every set; the last (timed) set ``repeats`` times."""
    fits = []
    for index, (X, y) in enumerate(training_sets):
        n_fits = repeats if index == len(training_sets) - 1 else 1
        seconds = []
        for _ in range(n_fits):
            estimator, elapsed = time_local_fit(make_estimator, X, y, device)
            seconds.append(elapsed)
        fits.append(Fit(estimator.components_, seconds, has_converged(estimator), estimator.n_iter_))
    return fits


def fit_ours(training_sets, repeats, device):
    """``mlcourse.linear.LMNN`` with its defaults and k = 3, on ``device``."""
    try:
        from mlcourse.linear import LMNN
    except ImportError as error:
        raise MethodUnavailable(f"mlcourse.linear.LMNN cannot be imported ({error})") from error

    def make_estimator():
        return LMNN(n_neighbors=N_NEIGHBORS, device=device, random_state=SEED)

    return fit_local_method(make_estimator, lambda model: bool(model.converged_), training_sets, repeats, device)


def fit_nca(training_sets, repeats):
    """scikit-learn's NCA with its defaults (``max_iter=50``, ``tol=1e-5``)."""

    def make_estimator():
        return NeighborhoodComponentsAnalysis(random_state=SEED)

    # L-BFGS stops at max_iter when no tolerance was met; sklearn only warns when verbose.
    return fit_local_method(make_estimator, lambda model: model.n_iter_ < model.max_iter, training_sets, repeats)


def fit_baseline(training_sets):
    """No learning: the identity map, and no fit to time."""
    return [Fit(np.eye(X.shape[1])) for X, _ in training_sets]


# --------------------------------------------------------------------------------------------
# metric-learn in its side environment
# --------------------------------------------------------------------------------------------


def side_env_python():
    """The Python interpreter inside the side environment."""
    if os.name == "nt":
        return SIDE_ENV_DIR / "Scripts" / "python.exe"
    return SIDE_ENV_DIR / "bin" / "python"


def side_env_works():
    """Whether the side environment imports metric-learn 0.7.0."""
    if not side_env_python().exists():
        return False
    check = [str(side_env_python()), "-c", "import metric_learn, sklearn; assert metric_learn.__version__ == '0.7.0'"]
    return subprocess.run(check, capture_output=True).returncode == 0


def last_lines(text, n_lines=3):
    """The last (error) lines of a command's output, with this checkout's path replaced by '.'."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # pip's warnings come before its errors: show the errors when there are some.
    lines = [line for line in lines if line.startswith("ERROR")] or lines
    return " | ".join(lines[-n_lines:]).replace(str(REPO_ROOT), ".")


def create_side_env():
    """Create ``bench/.venv-metric-learn`` with metric-learn 0.7.0, unless it already works.

    Raises:
        MethodUnavailable: If venv or pip fails; the message has pip's last lines.
    """
    if side_env_works():
        return
    print(
        f"Creating metric-learn's side environment bench/{SIDE_ENV_DIR.name} ({' '.join(SIDE_ENV_REQUIREMENTS)}) ...",
        flush=True,
    )
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(SIDE_ENV_DIR)],
        [str(side_env_python()), "-m", "pip", "install", "--quiet", *SIDE_ENV_REQUIREMENTS],
    ]
    for command in steps:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise MethodUnavailable(
                f"could not create the side environment: `{' '.join(command[1:4])} ...` exited "
                f"with {result.returncode}: {last_lines(result.stderr or result.stdout)}"
            )
    if not side_env_works():
        raise MethodUnavailable("the side environment was created but cannot import metric-learn 0.7.0")


def write_jobs(path, training_sets, repeats):
    """Write the training sets for the runner (see ``metric_learn_runner.py``)."""
    arrays = {"n_sets": len(training_sets), "n_neighbors": N_NEIGHBORS, "random_state": SEED, "repeats": repeats}
    for i, (X, y) in enumerate(training_sets):
        arrays[f"X_{i}"], arrays[f"y_{i}"] = X, y
    np.savez(path, **arrays)


def fit_metric_learn(training_sets, repeats):
    """metric-learn 0.7.0's LMNN with its defaults and k = 3, run in the side environment.

    The side environment must exist (see :func:`create_side_env`).

    Returns:
        ``(fits, report)``: a :class:`Fit` per training set, and the runner's versions and
        what metric-learn printed.
    """
    with tempfile.TemporaryDirectory() as folder:
        jobs, result = Path(folder) / "jobs.npz", Path(folder) / "result.json"
        write_jobs(jobs, training_sets, repeats)
        # Output is not captured: the runner's progress lines show as it goes.
        runner = subprocess.run([str(side_env_python()), str(RUNNER), str(jobs), str(result)])
        if runner.returncode != 0 or not result.exists():
            raise MethodUnavailable(
                f"the metric-learn runner exited with {runner.returncode} (its error is printed above)"
            )
        report = json.loads(result.read_text())
    fits = [Fit(np.array(fit["components"]), fit["seconds"], fit["converged"], fit["n_iter"]) for fit in report["fits"]]
    printed = sorted({line for fit in report["fits"] for line in fit["printed"]})
    return fits, {"versions": report["versions"], "printed": printed}


def find_unavailable_methods():
    """Create metric-learn's side environment once; return ``{method: reason}`` if it fails."""
    try:
        create_side_env()
    except MethodUnavailable as error:
        print(f"metric-learn is unavailable, the other methods still run: {error}", flush=True)
        return {METRIC_LEARN: str(error)}
    return {}


# --------------------------------------------------------------------------------------------
# Measuring: kNN accuracy in the learned space, and one result row per dataset and method
# --------------------------------------------------------------------------------------------


def knn_accuracy(components, split):
    """Accuracy of a ``N_NEIGHBORS``-NN classifier on ``split``'s test part, after ``x -> L x``.

    Args:
        components: (D', D) linear map ``L``. split: a standardised :class:`Split`.

    Returns:
        The fraction of test samples classified correctly, in [0, 1].
    """
    knn = KNeighborsClassifier(n_neighbors=N_NEIGHBORS)
    knn.fit(split.X_train @ components.T, split.y_train)
    return float(knn.score(split.X_test @ components.T, split.y_test))


def summarise_fits(benchmark, method, fits):
    """One result row: the timed fit's median time and convergence, the mean split accuracy."""
    accuracies = [knn_accuracy(fit.components, split) for fit, split in zip(fits, benchmark.splits)]
    timed = fits[-1]
    return {
        "dataset": benchmark.name,
        "method": method,
        "status": "ok",
        "fit_time_s": statistics.median(timed.seconds) if timed.seconds else None,
        "fit_times_s": timed.seconds,
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "split_accuracies": accuracies,
        "converged": timed.converged,
        "n_iter": None if timed.n_iter is None else int(timed.n_iter),
        "splits_converged": [fit.converged for fit in fits[: len(benchmark.splits)]],
    }


def run_method(method, benchmark, repeats, device):
    """Fit ``method`` on every training set of ``benchmark`` and summarise it in a row."""
    training_sets = benchmark.training_sets()
    printed = None
    if method == OURS:
        fits = fit_ours(training_sets, repeats[OURS], device)
    elif method == METRIC_LEARN:
        fits, printed = fit_metric_learn(training_sets, repeats[METRIC_LEARN])
    elif method == NCA:
        fits = fit_nca(training_sets, repeats[NCA])
    else:
        fits = fit_baseline(training_sets)
    row = summarise_fits(benchmark, method, fits)
    if printed is not None:
        row["side_environment"] = printed
    return row


def run_benchmark(benchmark, repeats, device, unavailable):
    """Every method on one dataset, one row each; a method that cannot run gets its reason."""
    rows = []
    for method in METHODS:
        print(f"[{benchmark.name}] {method} ...", flush=True)
        try:
            if method in unavailable:
                raise MethodUnavailable(unavailable[method])
            row = run_method(method, benchmark, repeats, device)
        except MethodUnavailable as error:
            row = {"dataset": benchmark.name, "method": method, "status": "unavailable", "reason": str(error)}
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def ratio(numerator, denominator):
    """``numerator / denominator``, or None when either is missing."""
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def compare_with_peers(rows, dataset):
    """Time ratios (peer / ours) and accuracy differences (ours - peer) for one dataset."""
    results = {row["method"]: row for row in rows if row["dataset"] == dataset and row["status"] == "ok"}

    def value(method, key):
        return results[method][key] if method in results else None

    def difference(peer):
        ours, other = value(OURS, "accuracy"), value(peer, "accuracy")
        return None if ours is None or other is None else ours - other

    return {
        "dataset": dataset,
        "metric_learn_time_over_ours": ratio(value(METRIC_LEARN, "fit_time_s"), value(OURS, "fit_time_s")),
        "nca_time_over_ours": ratio(value(NCA, "fit_time_s"), value(OURS, "fit_time_s")),
        "accuracy_ours_minus_metric_learn": difference(METRIC_LEARN),
        "accuracy_ours_minus_nca": difference(NCA),
        "accuracy_ours_minus_baseline": difference(BASELINE),
    }


# --------------------------------------------------------------------------------------------
# Reporting: the same tables on screen, in lmnn.md and in lmnn.json
# --------------------------------------------------------------------------------------------


def format_number(value, pattern):
    """``value`` formatted with ``pattern``, or an em dash when there is none."""
    return "—" if value is None else format(value, pattern)


def format_converged(row):
    """'yes'/'no' for the timed fit, with the count over the CV folds when there are several."""
    if row["converged"] is None:
        return "—"
    text = "yes" if row["converged"] else "no"
    folds = row["splits_converged"]
    if len(folds) > 1:
        text += f" (folds {sum(folds)}/{len(folds)})"
    return text


def format_fit_time(row):
    """The median fit time, and the best one when there were several fits."""
    text = format_number(row["fit_time_s"], ".3g")
    if len(row["fit_times_s"]) > 1:
        text += f" (best {min(row['fit_times_s']):.3g})"
    return text


def format_row(row):
    """A markdown table row: dataset | method | fit time | kNN accuracy | converged | iterations."""
    if row["status"] != "ok":
        cells = [row["dataset"], row["method"], "unavailable", "—", "—", "—"]
    else:
        accuracy = format_number(row["accuracy"], ".3f")
        if len(row["split_accuracies"]) > 1:
            accuracy += f" ± {row['accuracy_std']:.3f}"
        cells = [
            row["dataset"],
            row["method"],
            format_fit_time(row),
            accuracy,
            format_converged(row),
            format_number(row["n_iter"], "d"),
        ]
    return "| " + " | ".join(cells) + " |"


def format_results_table(rows):
    """The main table, one row per dataset and method."""
    lines = [
        "| dataset | method | fit time (s) | kNN accuracy | converged | iterations |",
        "|---|---|---:|---:|---|---:|",
    ]
    return "\n".join(lines + [format_row(row) for row in rows])


def format_comparison_table(comparisons):
    """Ratios against our LMNN (time: peer / ours) and accuracy differences (ours - peer)."""
    lines = [
        "| dataset | metric-learn time / ours | NCA time / ours | accuracy: ours − metric-learn "
        "| ours − NCA | ours − 3-NN |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for item in comparisons:
        cells = [
            item["dataset"],
            format_number(item["metric_learn_time_over_ours"], ".1f"),
            format_number(item["nca_time_over_ours"], ".1f"),
            format_number(item["accuracy_ours_minus_metric_learn"], "+.3f"),
            format_number(item["accuracy_ours_minus_nca"], "+.3f"),
            format_number(item["accuracy_ours_minus_baseline"], "+.3f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_device(machine):
    """The machine line saying where our LMNN ran, and why not where it was asked to."""
    device = machine["device"]
    if device == "cuda":
        device += f" ({machine['gpu']})"
    if machine["requested_device"] != machine["device"]:
        device += f" ({machine['requested_device']} was asked for but is not available)"
    return f"Our LMNN's device: {device}"


def format_notes(report):
    """How each number was measured, what could not run, and what metric-learn printed."""
    repeats = report["config"]["repeats"]
    notes = [
        f"- k = {N_NEIGHBORS} for LMNN's target neighbours and for the kNN classifier; features "
        "standardised (StandardScaler fitted on the training part) and given to every method in "
        "float64; our LMNN computes in float32 on every device, the others in float64.",
        f"- Fit time: wall time of `fit` alone, median of {repeats[OURS]} fits for our LMNN, "
        f"{repeats[NCA]} for NCA, {repeats[METRIC_LEARN]} for metric-learn (the best of several "
        "in brackets); every time is in lmnn.json.",
        "- Library defaults: ours `max_iter=200, tol=1e-5, init='pca'`; metric-learn "
        "`max_iter=1000, learn_rate=1e-7, convergence_tol=1e-3, init='auto'`; NCA `max_iter=50, "
        "tol=1e-5, init='auto'`. 'converged' means stopping before that cap.",
    ]
    notes += [f"- {name}: {protocol}" for name, protocol in report["protocols"].items()]
    reasons = {(row["method"], row["reason"]) for row in report["results"] if row["status"] != "ok"}
    notes += [f"- {method} unavailable: {reason}" for method, reason in sorted(reasons)]
    side = report.get("metric_learn_environment")
    if side:
        versions = ", ".join(f"{name} {version}" for name, version in side["versions"].items())
        printed = "; ".join(f"`{line}`" for line in side["printed"]) or "nothing"
        notes.append(f"- metric-learn ran with {versions}; during `fit` it printed or warned: {printed}")
    return "\n".join(notes)


def format_report(report):
    """The whole markdown report."""
    machine = report["machine"]
    return (
        "\n\n".join(
            [
                format_header("LMNN benchmark", report["config"]["command"], machine, notes=[describe_device(machine)]),
                "## Fit time and 3-NN accuracy",
                format_results_table(report["results"]),
                "## Against our LMNN",
                "Time ratios above 1 mean our LMNN is faster; accuracy differences are in accuracy "
                "units (0.010 = one percentage point), positive when ours is more accurate.",
                format_comparison_table(report["comparisons"]),
                "## How it was measured",
                format_notes(report),
            ]
        )
        + "\n"
    )


def collect_side_environment(rows):
    """metric-learn's versions and printed lines, merged over datasets, or None."""
    reports = [row.pop("side_environment") for row in rows if "side_environment" in row]
    if not reports:
        return None
    printed = sorted({line for item in reports for line in item["printed"]})
    return {"versions": reports[0]["versions"], "printed": printed}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


FULL_REPEATS = {OURS: 5, NCA: 3, METRIC_LEARN: 1}
QUICK_REPEATS = {OURS: 3, NCA: 1, METRIC_LEARN: 1}


def parse_arguments():
    """``--quick`` and ``--device``."""
    parser = make_parser(__doc__, "wine and digits only, fewer timing repeats (a smoke check)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where our LMNN runs (default: cpu)")
    return parser.parse_args()


def resolve_device(requested):
    """``requested``, or the CPU (with a message) when CUDA is asked for and missing."""
    if requested == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available here: our LMNN runs on the CPU.", flush=True)
        return "cpu"
    return requested


def main():
    """Run every method on every dataset, print the tables and write them to bench/results/."""
    arguments = parse_arguments()
    device = resolve_device(arguments.device)
    repeats = QUICK_REPEATS if arguments.quick else FULL_REPEATS
    unavailable = find_unavailable_methods()
    benchmarks = load_benchmarks(arguments.quick)
    machine = describe_machine(
        code_files=CODE_FILES,
        versions={"scikit-learn": sklearn.__version__},
        extra={"device": device, "requested_device": arguments.device},
    )
    rows = []
    for benchmark in benchmarks:
        rows += run_benchmark(benchmark, repeats, device, unavailable)
    record_end_load(machine)
    report = {
        "config": {
            "command": command_line(),
            "quick": arguments.quick,
            "n_neighbors": N_NEIGHBORS,
            "n_folds": N_FOLDS,
            "seed": SEED,
            "repeats": repeats,
        },
        "machine": machine,
        "protocols": {benchmark.name: benchmark.protocol for benchmark in benchmarks},
        "results": rows,
        "comparisons": [compare_with_peers(rows, benchmark.name) for benchmark in benchmarks],
        "metric_learn_environment": collect_side_environment(rows),
    }
    markdown = format_report(report)
    print("\n" + markdown)
    write_results("lmnn", markdown, report)


if __name__ == "__main__":
    main()
