"""The reality check's machinery: features, one training run, the grid, the seeds, the summaries."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch

from mlcourse import reality
from mlcourse.data.features import pooled_features
from mlcourse.losses import ContrastiveLoss, ProxyNCALoss, SupConLoss
from mlcourse.metrics import retrieval_accuracies
from mlcourse.models import ResidualMLP
from mlcourse.reality import (
    METRICS,
    as_text,
    choose,
    grid_search,
    mean_and_spread,
    retrieval_scores,
    seed_runs,
    torch_threads,
    train_loss,
)
from mlcourse.train import embed

RNG = np.random.default_rng(0)
# Twelve items in three classes of four, two items per group (piece).
FEATURES = RNG.normal(size=(12, 6)).astype(np.float32)
LABELS = np.repeat(np.arange(3), 4)
GROUPS = np.repeat(np.arange(6), 2)


def _map_at_r_by_hand(embeddings, labels, groups):
    """MAP@R by cosine, a query's own group left out, from the definition, one query at a time."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = []
    for query in range(len(labels)):
        gallery = np.flatnonzero(groups != groups[query])
        similarity = unit[gallery] @ unit[query]
        ranked = gallery[sorted(range(len(gallery)), key=lambda i: (-similarity[i], i))]
        relevant = labels[ranked] == labels[query]
        r = int(relevant.sum())
        if r == 0:
            continue
        precision_sum = sum(relevant[: i + 1].sum() / (i + 1) for i in range(r) if relevant[i])
        scores.append(precision_sum / r)
    return float(np.mean(scores))


# --- one training run --------------------------------------------------------------------------


def _captured_runs(make_losses, seeds):
    """The network's start, the loss and the batches of each train_loss call, training skipped."""
    captured = []

    def fake_train(model, loss_fn, features, labels, sampler, **options):
        captured.append(
            {
                "start": {k: v.clone() for k, v in model.state_dict().items()},
                "loss": loss_fn,
                "batches": [batch.copy() for batch in sampler],
                "options": options,
                "threads": torch.get_num_threads(),
            }
        )
        return SimpleNamespace(total_seconds=0.0)

    with mock.patch.object(reality, "train", fake_train):
        for make_loss, seed in zip(make_losses, seeds):
            train_loss(make_loss, FEATURES, LABELS, steps=3, classes_per_batch=3, samples_per_class=2, seed=seed)
    return captured


def test_one_seed_gives_every_loss_the_same_start_and_batches():
    first, second, other = _captured_runs(
        [partial(ProxyNCALoss, 3, 6), partial(ProxyNCALoss, 3, 6), SupConLoss], seeds=[5, 7, 5]
    )
    assert all(torch.equal(first["start"][k], other["start"][k]) for k in first["start"])
    assert all(np.array_equal(x, y) for x, y in zip(first["batches"], other["batches"], strict=True))
    assert not torch.equal(first["start"]["expand.weight"], second["start"]["expand.weight"])
    assert not all(np.array_equal(x, y) for x, y in zip(first["batches"], second["batches"]))
    # the loss's own parameters are seeded too
    again = _captured_runs([partial(ProxyNCALoss, 3, 6)], seeds=[5])[0]
    assert torch.equal(again["loss"].proxies, first["loss"].proxies)
    assert not torch.equal(second["loss"].proxies, first["loss"].proxies)


def test_a_run_has_the_asked_steps_and_batches_and_one_epoch():
    (run,) = _captured_runs([SupConLoss], seeds=[0])
    assert len(run["batches"]) == 3
    for batch in run["batches"]:
        assert len(batch) == 6 and sorted(np.bincount(LABELS[batch], minlength=3)) == [2, 2, 2]
    assert run["options"]["epochs"] == 1 and run["options"]["progress"] is False
    assert run["threads"] == 1


def test_train_loss_trains_a_residual_mlp_and_restores_the_threads():
    before = torch.get_num_threads()
    model, history = train_loss(
        partial(ContrastiveLoss, distance="cosine"),
        FEATURES,
        LABELS,
        steps=4,
        classes_per_batch=3,
        samples_per_class=2,
        seed=1,
        hidden=8,
    )
    assert isinstance(model, ResidualMLP) and not model.training
    assert len(history.step_losses) == 4 and history.total_seconds > 0
    assert torch.get_num_threads() == before
    # the correction starts at zero and has moved: the network is no longer the identity
    assert not torch.allclose(embed(model, FEATURES), torch.as_tensor(FEATURES))


def test_train_loss_and_torch_threads_reject_bad_counts():
    with pytest.raises(ValueError, match="steps"):
        train_loss(SupConLoss, FEATURES, LABELS, steps=0, classes_per_batch=3, samples_per_class=2)
    with pytest.raises(ValueError, match="threads"), torch_threads(0):
        pass


def test_torch_threads_restores_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


# --- scoring -----------------------------------------------------------------------------------


def test_retrieval_scores_match_a_map_at_r_by_hand():
    scores = retrieval_scores(None, FEATURES, LABELS, GROUPS)
    assert scores["mean_average_precision_at_r"] == pytest.approx(_map_at_r_by_hand(FEATURES, LABELS, GROUPS))
    assert scores == retrieval_accuracies(FEATURES, LABELS, distance="cosine", groups=GROUPS)


def test_retrieval_scores_embed_with_the_model():
    torch.manual_seed(0)
    model = ResidualMLP(6, hidden=4)
    torch.nn.init.normal_(model.correct.weight)
    embedded = embed(model, FEATURES).numpy()
    scores = retrieval_scores(model, FEATURES, LABELS, GROUPS)
    assert scores["mean_average_precision_at_r"] == pytest.approx(_map_at_r_by_hand(embedded, LABELS, GROUPS))
    # without groups, every other item is in the gallery
    assert retrieval_scores(model, FEATURES, LABELS)["mean_average_precision_at_r"] == pytest.approx(
        _map_at_r_by_hand(embedded, LABELS, np.arange(12))
    )


# --- the grid and the seeds --------------------------------------------------------------------


class _FakeFit:
    """A ``fit`` that trains nothing: it records each loss and returns the identity network."""

    def __init__(self):
        self.calls = []

    def __call__(self, make_loss, seed):
        loss = make_loss()
        self.calls.append((loss, seed))
        return ResidualMLP(6, hidden=2), SimpleNamespace(total_seconds=0.5 + seed)


LOSSES = {
    "contrastive": (partial(ContrastiveLoss, distance="cosine"), "neg_margin", (0.5, 1.0)),
    "SupCon": (SupConLoss, "temperature", (0.1, 0.2, 0.5)),
}


def test_grid_search_trains_each_setting_once_and_scores_every_split():
    fit = _FakeFit()
    splits = {"valid": (FEATURES, LABELS, GROUPS), "test": (FEATURES[::-1].copy(), LABELS, GROUPS)}
    grid = grid_search(fit, LOSSES, splits, seed=3)
    assert list(grid.columns) == ["loss", "parameter", "value", "valid", "test", "seconds"]
    assert list(zip(grid.loss, grid.value)) == [
        ("contrastive", 0.5),
        ("contrastive", 1.0),
        ("SupCon", 0.1),
        ("SupCon", 0.2),
        ("SupCon", 0.5),
    ]
    assert [loss.neg_margin for loss, _ in fit.calls[:2]] == [0.5, 1.0]
    assert [loss.temperature for loss, _ in fit.calls[2:]] == [0.1, 0.2, 0.5]
    assert {seed for _, seed in fit.calls} == {3} and (grid.seconds == 3.5).all()
    # the identity network: each split's score is the features' own
    assert grid.valid.iloc[0] == pytest.approx(_map_at_r_by_hand(FEATURES, LABELS, GROUPS))
    assert grid.test.iloc[0] == pytest.approx(_map_at_r_by_hand(FEATURES[::-1], LABELS, GROUPS))


def test_choose_takes_the_best_setting_of_each_loss_on_one_split():
    grid = pd.DataFrame(
        {
            "loss": ["a", "a", "a", "b", "b"],
            "value": [1, 2, 3, 10, 20],
            "valid": [0.2, 0.5, 0.5, 0.9, 0.1],
            "test": [0.7, 0.1, 0.2, 0.0, 0.3],
        }
    )
    assert choose(grid, "valid") == {"a": 2, "b": 10}  # equal scores: the first
    assert choose(grid, "test") == {"a": 1, "b": 20}
    with pytest.raises(ValueError, match="no column"):
        choose(grid, "train")


def test_seed_runs_train_each_chosen_setting_with_every_seed():
    fit = _FakeFit()
    runs, models = seed_runs(fit, LOSSES, {"SupCon": 0.2, "contrastive": 1.0}, range(1, 4), (FEATURES, LABELS, GROUPS))
    assert list(zip(runs.loss, runs.seed)) == [
        ("SupCon", 1),
        ("SupCon", 2),
        ("SupCon", 3),
        ("contrastive", 1),
        ("contrastive", 2),
        ("contrastive", 3),
    ]
    assert list(runs.columns) == ["loss", "seed", *METRICS, "seconds"]
    assert [loss.temperature for loss, _ in fit.calls[:3]] == [0.2] * 3
    assert set(models) == {(name, seed) for name in ("SupCon", "contrastive") for seed in (1, 2, 3)}
    expected = retrieval_accuracies(FEATURES, LABELS, distance="cosine", groups=GROUPS)
    for metric in METRICS:
        assert runs[metric].to_numpy() == pytest.approx(expected[metric])
    np.testing.assert_allclose(runs.seconds, [1.5, 2.5, 3.5] * 2)


def test_the_grid_and_the_seeds_reject_bad_arguments():
    fit = _FakeFit()
    with pytest.raises(ValueError, match="non-empty dict"):
        grid_search(fit, {}, {"valid": (FEATURES, LABELS, GROUPS)})
    with pytest.raises(ValueError, match="make_loss, parameter name, values"):
        grid_search(fit, {"a": (SupConLoss, "temperature")}, {"valid": (FEATURES, LABELS, GROUPS)})
    with pytest.raises(ValueError, match="no value"):
        grid_search(fit, {"a": (SupConLoss, "temperature", ())}, {"valid": (FEATURES, LABELS, GROUPS)})
    with pytest.raises(ValueError, match="not in losses"):
        seed_runs(fit, LOSSES, {"triplet": 0.2}, [1], (FEATURES, LABELS, GROUPS))
    with pytest.raises(ValueError, match="seeds is empty"):
        seed_runs(fit, LOSSES, {"SupCon": 0.2}, [], (FEATURES, LABELS, GROUPS))
    assert fit.calls == []


# --- summaries ---------------------------------------------------------------------------------


def test_mean_and_spread_match_numpy():
    runs = pd.DataFrame(
        {"loss": ["b", "b", "b", "a", "a"], "x": [1.0, 2.0, 6.0, 0.5, 0.5], "y": [3.0, 3.0, 3.0, 1.0, 2.0]}
    )
    summary = mean_and_spread(runs, ["x", "y"])
    assert list(summary.index) == ["b", "a"] and list(summary.columns) == ["x", "x std", "y", "y std"]
    for name in ("a", "b"):
        for column in ("x", "y"):
            values = runs.loc[runs.loss == name, column].to_numpy()
            assert summary.loc[name, column] == pytest.approx(np.mean(values))
            assert summary.loc[name, f"{column} std"] == pytest.approx(np.std(values, ddof=1))
    single = mean_and_spread(pd.DataFrame({"loss": ["a"], "x": [0.3]}), ["x"])
    assert single.loc["a", "x std"] == 0.0


def test_as_text_writes_mean_plus_minus_std():
    summary = mean_and_spread(pd.DataFrame({"loss": ["a", "a"], "x": [0.25, 0.75]}), ["x"])
    text = as_text(summary, digits=2)
    assert list(text.columns) == ["x"] and text.loc["a", "x"] == f"0.50 ± {np.std([0.25, 0.75], ddof=1):.2f}"


# --- on the course's data ----------------------------------------------------------------------


def test_a_short_grid_runs_on_the_smoke_dataset(smoke):
    split = smoke.meta.split.to_numpy()
    train_set, test_set = smoke.subset(split == "train"), smoke.subset(split == "test")
    classes = np.unique(train_set.meta.instrument)
    codes = np.searchsorted(classes, train_set.meta.instrument.to_numpy())
    train_x, test_x = pooled_features(train_set.logmel, test_set.logmel)
    fit = partial(
        train_loss, features=train_x, labels=codes, steps=2, classes_per_batch=len(classes), samples_per_class=4
    )
    test = (test_x, test_set.meta.instrument.to_numpy(), test_set.meta.piece_id.to_numpy())
    grid = grid_search(fit, {"SupCon": (SupConLoss, "temperature", (0.1, 0.5))}, {"test": test})
    assert grid.test.between(0, 1).all() and (grid.seconds > 0).all()
