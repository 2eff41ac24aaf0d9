"""Fit metric-learn's LMNN on training sets read from an .npz file, and time each fit.

metric-learn 0.7.0 (its last release) does not work with scikit-learn >= 1.8, so this script
runs in a side environment (``bench/.venv-metric-learn``, created by ``bench_lmnn.py``). It
imports only numpy and metric-learn, and talks to ``bench_lmnn.py`` through files:

    python bench/metric_learn_runner.py JOBS.npz RESULT.json

``JOBS.npz`` holds ``n_sets``, ``n_neighbors``, ``random_state``, ``repeats`` and, for each
``i < n_sets``, a standardised training set ``X_<i>`` (N, D) and its integer labels ``y_<i>`` (N,).
The last set is the timed one: it is fitted ``repeats`` times. ``RESULT.json`` gets the
library versions and, per set, the learned ``components`` (D', D), the fit times in seconds,
``n_iter``, ``converged`` and whatever metric-learn printed or warned during the fit.

Progress goes to stderr, one line per fit.
"""

import contextlib
import io
import json
import sys
import time
import warnings

import metric_learn
import numpy as np
import sklearn
from metric_learn import LMNN

MAX_ITER = 1000
"""metric-learn 0.7.0's default iteration cap, stated here so that `converged` can use it."""


def fit_once(X, y, n_neighbors, random_state):
    """Fit one LMNN with metric-learn's defaults (learn_rate, tolerances, ``max_iter=1000``).

    Args:
        X: (N, D) float array, standardised. y: (N,) integer labels.
        n_neighbors: target neighbours per point (metric-learn 0.7 calls it ``n_neighbors``).
        random_state: seed for the initialisation.

    Returns:
        ``(model, seconds, printed)``: the fitted model, the wall time of ``fit`` alone, and
        the lines it printed or warned (unique, in order).
    """
    model = LMNN(n_neighbors=n_neighbors, max_iter=MAX_ITER, random_state=random_state)
    output = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(output):
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    lines = output.getvalue().splitlines()
    lines += [f"{w.category.__name__}: {w.message}" for w in caught]
    return model, seconds, list(dict.fromkeys(lines))


def fit_set(X, y, n_neighbors, random_state, repeats):
    """Fit one training set ``repeats`` times; report the last model and every fit time."""
    seconds, printed = [], []
    for _ in range(repeats):
        model, elapsed, lines = fit_once(X, y, n_neighbors, random_state)
        seconds.append(elapsed)
        printed += [line for line in lines if line not in printed]
    return {
        "components": model.components_.tolist(),
        "seconds": seconds,
        "n_iter": int(model.n_iter_),
        # metric-learn loops `for it in range(2, max_iter)` and keeps n_iter_ = max_iter - 1
        # when its convergence test never passed (it prints nothing unless verbose=True).
        "converged": bool(model.n_iter_ < MAX_ITER - 1),
        "printed": printed,
    }


def main(jobs_path, result_path):
    """Fit every training set of ``jobs_path`` and write the results to ``result_path``."""
    jobs = np.load(jobs_path)
    n_sets = int(jobs["n_sets"])
    fits = []
    for i in range(n_sets):
        X, y = jobs[f"X_{i}"], jobs[f"y_{i}"]
        repeats = int(jobs["repeats"]) if i == n_sets - 1 else 1
        fit = fit_set(X, y, int(jobs["n_neighbors"]), int(jobs["random_state"]), repeats)
        fits.append(fit)
        print(
            f"  metric-learn LMNN: set {i + 1}/{n_sets} ({X.shape[0]} x {X.shape[1]}): "
            f"{min(fit['seconds']):.2f} s, {fit['n_iter']} iterations",
            file=sys.stderr,
            flush=True,
        )
    versions = {
        "metric_learn": metric_learn.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    with open(result_path, "w") as file:
        json.dump({"versions": versions, "fits": fits}, file)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python metric_learn_runner.py JOBS.npz RESULT.json")
    main(sys.argv[1], sys.argv[2])
