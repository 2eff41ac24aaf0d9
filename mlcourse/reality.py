"""A metric learning reality check: every loss on one backbone, one budget, one protocol.

Musgrave, Belongie & Lim ("A metric learning reality check", ECCV 2020) retrained the losses of
a decade of papers under one protocol: the same network, the same batches and number of steps,
hyper-parameters chosen on validation data only, and several seeds of the chosen setting. Most
of the gains the papers had claimed over the classic contrastive and triplet losses vanished.
This module runs such a comparison on the course's data, with a backbone small enough that
dozens of training runs fit in a workshop:

* :func:`~mlcourse.data.features.pooled_features` turns each split's log-mel spectrograms into pooled vectors
  (:func:`mlcourse.data.features.pool_log_mel`), standardised with the *training* statistics;
* :func:`train_loss` trains a fresh :class:`mlcourse.models.ResidualMLP` on them with one loss,
  on :class:`mlcourse.data.samplers.ClassBalancedBatches`, with the course's one loop
  :func:`mlcourse.train.train`: every loss gets the same batches (for a seed) and steps;
* :func:`retrieval_scores` embeds a split and scores it with
  :func:`mlcourse.metrics.retrieval_accuracies` (cosine distance, a query's own group left
  out unless told otherwise);
* :func:`grid_search` trains every setting of every loss's grid once and scores it on the
  validation and the test pieces; :func:`choose` picks each loss's setting on one split;
* :func:`seed_runs` trains the chosen settings with several seeds and scores them on the test
  pieces, and :func:`mean_and_spread` sums the runs up per loss (:func:`as_text` writes the
  result as ``mean ± std``).

The losses, the network and the metrics come from the course's vocabulary modules; nothing here
defines one of its own.

Taught in notebooks/10_reality_check.ipynb
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from .checks import require_positive_int
from .data.samplers import ClassBalancedBatches
from .metrics import retrieval_accuracies
from .models import ResidualMLP
from .train import embed, train

__all__ = [
    "METRICS",
    "as_text",
    "choose",
    "grid_search",
    "mean_and_spread",
    "retrieval_scores",
    "seed_runs",
    "torch_threads",
    "train_loss",
]

METRICS = ("mean_average_precision_at_r", "r_precision", "precision_at_1")
"""The metrics of the comparison, MAP@R first (the one that chooses the settings)."""


@contextmanager
def torch_threads(threads):
    """Run a block with ``threads`` CPU threads in torch, and restore the number afterwards.

    Args:
        threads: A positive int, or None to leave the number as it is.

    Example:
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True

    Taught in notebooks/10_reality_check.ipynb
    """
    if threads is not None:
        require_positive_int(threads, "threads")
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(before)


def train_loss(
    make_loss,
    features,
    labels,
    *,
    steps,
    classes_per_batch,
    samples_per_class,
    seed=0,
    hidden=128,
    lr=1e-3,
    device="cpu",
    threads=1,
    batch_labels=None,
):
    """Train a fresh :class:`~mlcourse.models.ResidualMLP` with one loss, the same way for every loss.

    The seed fixes everything that is random: the network's first layer, the loss's own
    parameters (proxies, class vectors) and the batches. Two losses trained with one seed
    therefore start from the same network and see the same batches, in the same order.

    Args:
        make_loss: Called with no argument, returns the loss, e.g.
            ``functools.partial(SupConLoss, temperature=0.1)``; called after the seed is set.
        features: (N, F) float array of the training inputs (:func:`~mlcourse.data.features.pooled_features`).
        labels: (N,) int class codes, what the loss is given (or (N, T) multi-hot tags, for a
            multi-label loss, with ``batch_labels``).
        steps: Number of optimisation steps (batches), a positive int.
        classes_per_batch, samples_per_class: P and K of the
            :class:`~mlcourse.data.samplers.ClassBalancedBatches`.
        seed: Seed of the network, the loss and the batches.
        hidden: Width of the network's hidden layer.
        lr: Adam's learning rate, for the network and the loss's parameters alike.
        device: Where to train; the CPU by default (a small network: moving it is not worth it).
        threads: torch's CPU threads during the run (restored afterwards), or None to leave
            them as they are. A network this small trains fastest on one thread: handing each
            small matrix product to several threads costs more than it saves, and much more
            when other programs compete for the cores.
        batch_labels: (N,) int class codes the batches balance, when they are not ``labels``.

    Returns:
        ``(model, history)``: the trained network, in eval mode, and its
        :class:`~mlcourse.train.TrainingHistory` (``history.total_seconds`` is the training time).

    Raises:
        ValueError: If ``steps`` is not a positive int, or on what the sampler or
            :func:`~mlcourse.train.train` refuse.

    Taught in notebooks/10_reality_check.ipynb
    """
    require_positive_int(steps, "steps")
    torch.manual_seed(seed)
    model = ResidualMLP(np.shape(features)[1], hidden=hidden)
    loss_fn = make_loss()
    balanced = labels if batch_labels is None else batch_labels
    sampler = ClassBalancedBatches(balanced, classes_per_batch, samples_per_class, batches_per_epoch=steps, seed=seed)
    with torch_threads(threads):
        history = train(
            model, loss_fn, features, labels, sampler, epochs=1, lr=lr, seed=seed, device=device, progress=False
        )
    return model, history


def retrieval_scores(model, features, labels, groups=None, distance="cosine", threads=1):
    """:func:`~mlcourse.metrics.retrieval_accuracies` of a split, embedded by ``model``.

    Every clip of the split is a query and the others are its gallery; with ``groups`` (the
    clips' pieces), the clips of a query's own group are left out of its gallery.

    Args:
        model: A network, or None to score the features themselves.
        features: (N, F) inputs of the split.
        labels: (N,) labels.
        groups: Optional (N,) group of each clip.
        distance: One of :data:`mlcourse.distances.DISTANCES`; cosine by default, since every
            loss of the comparison judges directions only.
        threads: torch's CPU threads meanwhile, as in :func:`train_loss`.

    Returns:
        The dict of :func:`~mlcourse.metrics.retrieval_accuracies`.

    Taught in notebooks/10_reality_check.ipynb
    """
    with torch_threads(threads):
        embeddings = torch.as_tensor(np.asarray(features)) if model is None else embed(model, features)
        return retrieval_accuracies(embeddings, labels, distance=distance, groups=groups)


def _check_losses(losses):
    if not isinstance(losses, dict) or not losses:
        raise ValueError("losses must be a non-empty dict {name: (make_loss, parameter, values)}")
    for name, entry in losses.items():
        if not (isinstance(entry, tuple) and len(entry) == 3 and callable(entry[0]) and isinstance(entry[1], str)):
            raise ValueError(f"losses[{name!r}] must be (make_loss, parameter name, values), got {entry!r}")
        if len(entry[2]) == 0:
            raise ValueError(f"losses[{name!r}] has no value to try for {entry[1]!r}")


def grid_search(fit, losses, splits, *, seed=0, metric="mean_average_precision_at_r"):
    """Train every setting of every loss once and score it on every split.

    Args:
        fit: ``fit(make_loss, seed=...) -> (model, history)``, e.g. :func:`train_loss` with the
            training data and budget bound by ``functools.partial``.
        losses: ``{name: (make_loss, parameter, values)}``: the loss of setting ``v`` is
            ``make_loss(**{parameter: v})``.
        splits: ``{split name: (features, labels, groups)}``, e.g. the validation and the test
            pieces; each setting's model is scored on each of them.
        seed: The seed of every run of the grid.
        metric: The key of :func:`~mlcourse.metrics.retrieval_accuracies` to keep.

    Returns:
        A DataFrame, one row per (loss, setting) in the order given: columns ``loss``,
        ``parameter``, ``value``, one column per split (its ``metric``) and ``seconds`` (the
        training time).

    Raises:
        ValueError: If ``losses`` is not a dict of ``(make_loss, parameter, values)``.

    Taught in notebooks/10_reality_check.ipynb
    """
    _check_losses(losses)
    rows = []
    for name, (make_loss, parameter, values) in losses.items():
        for value in values:
            model, history = fit(lambda: make_loss(**{parameter: value}), seed=seed)
            scores = {split: retrieval_scores(model, *data)[metric] for split, data in splits.items()}
            rows.append(
                {"loss": name, "parameter": parameter, "value": value, **scores, "seconds": history.total_seconds}
            )
    return pd.DataFrame(rows)


def choose(grid, split):
    """Each loss's best setting on one split of a :func:`grid_search` table.

    Args:
        grid: The table of :func:`grid_search`.
        split: The column to maximise, e.g. ``"valid"`` (honest) or ``"test"`` (leaky).

    Returns:
        ``{loss: value}`` in the order of the table; the first of equal scores wins.

    Example:
        >>> grid = pd.DataFrame({"loss": ["a", "a", "b"], "value": [0.1, 0.2, 1.0],
        ...                      "valid": [0.5, 0.4, 0.3], "test": [0.4, 0.6, 0.2]})
        >>> choose(grid, "valid"), choose(grid, "test")
        ({'a': 0.1, 'b': 1.0}, {'a': 0.2, 'b': 1.0})

    Taught in notebooks/10_reality_check.ipynb
    """
    if split not in grid.columns:
        raise ValueError(f"the grid has no column {split!r}: its columns are {list(grid.columns)}")
    best = grid.loc[grid.groupby("loss", sort=False)[split].idxmax()]
    return dict(zip(best["loss"], best["value"]))


def seed_runs(fit, losses, chosen, seeds, data):
    """Train each loss's chosen setting with every seed and score it on one split.

    Args:
        fit: As in :func:`grid_search`.
        losses: As in :func:`grid_search`.
        chosen: ``{loss: value}`` from :func:`choose`; only these losses are trained.
        seeds: The seeds, e.g. ``range(1, 4)``.
        data: ``(features, labels, groups)`` of the split to score, e.g. the test pieces.

    Returns:
        ``(runs, models)``: a DataFrame with one row per (loss, seed), columns ``loss``,
        ``seed``, the :data:`METRICS` and ``seconds``; and ``{(loss, seed): model}``.

    Raises:
        ValueError: If a chosen loss is not in ``losses``, or ``seeds`` is empty.

    Taught in notebooks/10_reality_check.ipynb
    """
    _check_losses(losses)
    unknown = set(chosen) - set(losses)
    if unknown:
        raise ValueError(f"chosen names losses that are not in losses: {sorted(unknown)}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed (three or more to see the spread)")
    rows, models = [], {}
    for name, value in chosen.items():
        make_loss, parameter, _ = losses[name]
        for seed in seeds:
            model, history = fit(lambda: make_loss(**{parameter: value}), seed=seed)
            scores = retrieval_scores(model, *data)
            rows.append(
                {"loss": name, "seed": seed, **{m: scores[m] for m in METRICS}, "seconds": history.total_seconds}
            )
            models[name, seed] = model
    return pd.DataFrame(rows), models


def mean_and_spread(runs, columns=METRICS + ("seconds",), by="loss"):
    """The mean and the standard deviation over the seeds of each loss's runs.

    Args:
        runs: The table of :func:`seed_runs` (or any table with a ``loss`` column).
        columns: The columns to sum up.
        by: What a group of runs shares: a column or index level name, or a list of them.

    Returns:
        A DataFrame indexed by ``by`` (in the order of ``runs``) with, for each column ``c``,
        ``c`` (the mean) and ``c std`` (the sample standard deviation, ``ddof=1``; 0 for a
        single run).

    Example:
        >>> runs = pd.DataFrame({"loss": ["a", "a", "b"], "x": [1.0, 3.0, 5.0]})
        >>> mean_and_spread(runs, ["x"]).round(3).to_dict("index")
        {'a': {'x': 2.0, 'x std': 1.414}, 'b': {'x': 5.0, 'x std': 0.0}}

    Taught in notebooks/10_reality_check.ipynb
    """
    columns = list(columns)
    grouped = runs.groupby(by, sort=False)[columns]
    table = pd.concat([grouped.mean(), grouped.std(ddof=1).fillna(0.0).add_suffix(" std")], axis=1)
    return table[[c for column in columns for c in (column, f"{column} std")]]


def as_text(summary, digits=3):
    """A :func:`mean_and_spread` table as text, each column as ``mean ± std``.

    Args:
        summary: The table of :func:`mean_and_spread`.
        digits: Decimals of both numbers.

    Returns:
        A DataFrame of strings with one column per summed-up column (the ``... std`` ones
        folded into it), for display.

    Example:
        >>> summary = pd.DataFrame({"x": [0.5], "x std": [0.0125]}, index=pd.Index(["a"], name="loss"))
        >>> as_text(summary).loc["a", "x"]
        '0.500 ± 0.013'

    Taught in notebooks/10_reality_check.ipynb
    """
    columns = [c for c in summary.columns if not c.endswith(" std")]
    return pd.DataFrame(
        {c: [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(summary[c], summary[f"{c} std"])] for c in columns},
        index=summary.index,
    )
