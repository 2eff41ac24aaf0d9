"""mlcourse.linear: LDA against scikit-learn, LMNN's loss against loops, LMNN's accuracy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlcourse.linear import (
    LDA,
    LMNN,
    _minimise_lmnn_loss,
    find_target_neighbors,
    fit_timed,
    has_target_neighbors,
    lmnn_loss,
)

LOADERS = {"iris": load_iris, "wine": load_wine, "digits": load_digits}


def load(name):
    return LOADERS[name](return_X_y=True)


def three_blobs(n_per_class=10, n_features=4, seed=0):
    """Three well separated, shuffled classes: a small problem every estimator can fit."""
    rng = np.random.default_rng(seed)
    centres = 4 * rng.standard_normal((3, n_features))
    X = np.concatenate([c + rng.standard_normal((n_per_class, n_features)) for c in centres])
    y = np.repeat([0, 1, 2], n_per_class)
    order = rng.permutation(len(y))
    return X[order], y[order]


def knn_accuracy(steps, X, y, n_neighbors=3):
    """5-fold cross-validated kNN accuracy after the given pipeline steps."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    pipeline = make_pipeline(*steps, KNeighborsClassifier(n_neighbors))
    return cross_val_score(pipeline, X, y, cv=folds).mean()


# --------------------------------------------------------------------------------------------
# LDA
# --------------------------------------------------------------------------------------------


def without_constant_features(X_train, X_test):
    """scikit-learn's eigen solver needs an invertible S_w; blank pixels in digits break it."""
    varying = X_train.std(axis=0) > 0
    return X_train[:, varying], X_test[:, varying]


@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
def test_lda_spans_the_same_subspace_as_scikit_learn(name):
    X, y = load(name)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    X_train, X_test = without_constant_features(X_train, X_test)
    ours = LDA().fit(X_train, y_train)
    theirs = LinearDiscriminantAnalysis(solver="eigen").fit(X_train, y_train)
    n_components = len(np.unique(y)) - 1
    assert ours.components_.shape == (n_components, X_train.shape[1])

    angles = scipy.linalg.subspace_angles(ours.components_.T, theirs.scalings_[:, :n_components])
    assert angles.max() < 1e-3
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, theirs.explained_variance_ratio_[:n_components], atol=1e-4
    )
    accuracies = [
        KNeighborsClassifier(1).fit(lda.transform(X_train), y_train).score(lda.transform(X_test), y_test)
        for lda in (ours, theirs)
    ]
    assert abs(accuracies[0] - accuracies[1]) <= 0.01


def test_lda_regularisation_copes_with_constant_features():
    X, y = load("digits")  # raw digits: several pixels are blank in every image
    projected = LDA(n_components=2).fit_transform(X, y)
    assert projected.shape == (len(X), 2)
    assert np.isfinite(projected).all()


def test_lda_solves_the_generalized_eigenproblem():
    X, y = load("wine")
    lda = LDA().fit(X, y)
    class_index = np.unique(y, return_inverse=True)[1]
    within = sum(np.mean(class_index == c) * np.cov(X[class_index == c].T, bias=True) for c in range(3))
    overall = np.cov(X.T, bias=True)
    between = overall - within
    regularised_within = within + lda.reg * np.eye(X.shape[1])
    for w, eigenvalue in zip(lda.components_, lda.eigenvalues_):
        np.testing.assert_allclose(between @ w, eigenvalue * regularised_within @ w, rtol=1e-6, atol=1e-9)
        assert w @ regularised_within @ w == pytest.approx(1.0)
    assert np.all(np.diff(lda.eigenvalues_) <= 0)
    assert lda.explained_variance_ratio_.sum() == pytest.approx(1.0)


def test_lda_transform_centres_then_projects():
    X, y = load("iris")
    lda = LDA(n_components=1).fit(X, y)
    np.testing.assert_allclose(lda.transform(X), (X - X.mean(axis=0)) @ lda.components_.T)
    np.testing.assert_array_equal(lda.classes_, [0, 1, 2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_components": 3}, r"n_components=3 is too large.*at most .* = 2.*n_components <= 2"),
        ({"y": np.zeros(150)}, r"at least 2 classes.*only one class"),
        ({"X_has_nan": True}, r"Input X contains NaN"),
        ({"y": np.zeros(10)}, r"inconsistent numbers of samples"),
        ({"X": np.ones(150)}, r"Expected 2D array, got 1D array"),
    ],
)
def test_lda_rejects_bad_input_with_a_clear_message(change, message):
    change = dict(change)
    X, y = load("iris")
    X = change.pop("X", X)
    if change.pop("X_has_nan", False):
        X[3, 1] = np.nan
    y = change.pop("y", y)
    with pytest.raises(ValueError, match=message):
        LDA(**change).fit(X, y)


# --------------------------------------------------------------------------------------------
# Target neighbours and the LMNN loss
# --------------------------------------------------------------------------------------------


def test_find_target_neighbors_matches_a_brute_force_loop():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, size=40)
    expected = []
    for i in range(len(X)):
        same_class = [j for j in range(len(X)) if y[j] == y[i] and j != i]
        by_distance = sorted(same_class, key=lambda j: np.sum((X[i] - X[j]) ** 2))
        expected.append(by_distance[:3])
    np.testing.assert_array_equal(find_target_neighbors(X, y, n_neighbors=3), expected)


def test_find_target_neighbors_names_a_class_too_small():
    X = np.arange(14.0).reshape(7, 2)
    y = np.array(["a", "a", "a", "a", "b", "b", "b"])
    with pytest.raises(ValueError, match=r"class b has only 3 sample.*lower n_neighbors to 2"):
        find_target_neighbors(X, y, n_neighbors=3)


@pytest.mark.parametrize("n_neighbors", [1, 2, 3, 5])
def test_has_target_neighbors_marks_the_classes_larger_than_k(n_neighbors):
    y = np.array(list("aaaabbbccddddddeffg"))
    class_sizes = {label: list(y).count(label) for label in y}
    expected = [class_sizes[label] > n_neighbors for label in y]
    mask = has_target_neighbors(y, n_neighbors)
    np.testing.assert_array_equal(mask, expected)
    X = np.random.default_rng(0).standard_normal((len(y), 2))
    assert find_target_neighbors(X[mask], y[mask], n_neighbors).shape == (mask.sum(), n_neighbors)


class RecordingEstimator:
    """Keeps what fit was given."""

    def fit(self, X, y):
        self.X_, self.y_ = X, y
        return self


def test_fit_timed_fits_on_everything_by_default_and_times_the_fit():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    model, seconds = fit_timed(RecordingEstimator(), X, y)
    np.testing.assert_array_equal(model.X_, X)
    np.testing.assert_array_equal(model.y_, y)
    assert 0 <= seconds < 1


def test_fit_timed_fits_on_a_seeded_sample_kept_in_order():
    X, y = np.arange(40.0).reshape(20, 2), np.arange(20)
    model, _ = fit_timed(RecordingEstimator(), X, y, max_samples=6, seed=3)
    expected = np.sort(np.random.default_rng(3).choice(20, 6, replace=False))
    np.testing.assert_array_equal(model.y_, expected)
    np.testing.assert_array_equal(model.X_, X[expected])
    again, _ = fit_timed(RecordingEstimator(), X, y, max_samples=6, seed=3)
    np.testing.assert_array_equal(again.y_, model.y_)
    everything, _ = fit_timed(RecordingEstimator(), X, y, max_samples=20)
    np.testing.assert_array_equal(everything.y_, y)


def lmnn_loss_by_loops(L, X, y, targets, margin, push_weight):
    """LMNN's loss, its gradient in L and its active-triplet count, one triplet at a time."""
    loss, gradient, n_active = 0.0, np.zeros_like(L), 0
    for i in range(len(X)):
        for j in targets[i]:
            to_target = X[i] - X[j]
            target_distance = np.sum((L @ to_target) ** 2)
            loss += (1 - push_weight) * target_distance
            gradient += (1 - push_weight) * 2 * L @ np.outer(to_target, to_target)
            for l in range(len(X)):  # noqa: E741 (i, j, l as in Weinberger & Saul)
                if y[l] == y[i]:
                    continue
                to_impostor = X[i] - X[l]
                hinge = margin + target_distance - np.sum((L @ to_impostor) ** 2)
                if hinge > 0:
                    n_active += 1
                    loss += push_weight * hinge
                    target_outer = np.outer(to_target, to_target)
                    impostor_outer = np.outer(to_impostor, to_impostor)
                    gradient += push_weight * 2 * L @ (target_outer - impostor_outer)
    return loss, gradient, n_active


def tiny_lmnn_problem(seed, n_components=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 3))
    y = np.repeat([0, 1, 2], 4)
    L = rng.standard_normal((n_components, 3))
    return L, X, y, find_target_neighbors(X, y, n_neighbors=2)


@pytest.mark.parametrize(
    ("seed", "n_components", "margin", "push_weight"), [(0, 3, 1.0, 0.5), (1, 2, 2.0, 0.3), (2, 3, 0.5, 0.9)]
)
def test_lmnn_loss_and_gradient_match_explicit_loops(seed, n_components, margin, push_weight):
    L, X, y, targets = tiny_lmnn_problem(seed, n_components)
    expected_loss, expected_gradient, expected_active = lmnn_loss_by_loops(L, X, y, targets, margin, push_weight)
    n_triplets = len(X) * targets.shape[1] * 8  # 8 differently labelled points per anchor
    assert 0 < expected_active < n_triplets, "the problem must exercise the hinge's both sides"

    L_tensor = torch.tensor(L, requires_grad=True)
    loss, n_active = lmnn_loss(
        L_tensor, torch.tensor(X), torch.tensor(y), targets, margin=margin, push_weight=push_weight, return_active=True
    )
    loss.backward()
    assert n_active == expected_active
    assert loss.item() == pytest.approx(expected_loss, rel=1e-10)
    np.testing.assert_allclose(L_tensor.grad.numpy(), expected_gradient, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("anchors_per_block", [1, 7, 64])
def test_lmnn_loss_blockwise_equals_one_block(anchors_per_block):
    rng = np.random.default_rng(3)
    X, y = torch.tensor(rng.standard_normal((120, 5))), torch.tensor(rng.integers(0, 3, 120))
    targets = find_target_neighbors(X.numpy(), y.numpy(), n_neighbors=3)
    L = torch.tensor(rng.standard_normal((4, 5)))

    def loss_and_gradient(block):
        L_leaf = L.clone().requires_grad_(True)
        loss, n_active = lmnn_loss(L_leaf, X, y, targets, return_active=True, anchors_per_block=block)
        loss.backward()
        return loss.item(), L_leaf.grad, n_active

    whole_loss, whole_gradient, whole_active = loss_and_gradient(len(X))
    block_loss, block_gradient, block_active = loss_and_gradient(anchors_per_block)
    assert whole_active > 0
    assert block_active == whole_active
    assert block_loss == pytest.approx(whole_loss, rel=1e-12)
    torch.testing.assert_close(block_gradient, whole_gradient, rtol=1e-10, atol=1e-10)


def test_lmnn_loss_float32_agrees_with_float64():
    L, X, y, targets = tiny_lmnn_problem(seed=4)
    loss64 = lmnn_loss(torch.tensor(L), torch.tensor(X), torch.tensor(y), targets)
    loss32 = lmnn_loss(
        torch.tensor(L, dtype=torch.float32), torch.tensor(X, dtype=torch.float32), torch.tensor(y), targets
    )
    assert loss32.dtype == torch.float32
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-5)


def test_lmnn_loss_rejects_mismatched_shapes():
    L, X, y, targets = tiny_lmnn_problem(seed=0)
    with pytest.raises(ValueError, match=r"L must have shape \(d, D\)"):
        lmnn_loss(torch.tensor(L[:, :2]), torch.tensor(X), torch.tensor(y), targets)
    with pytest.raises(ValueError, match=r"targets \(N, k\)"):
        lmnn_loss(torch.tensor(L), torch.tensor(X), torch.tensor(y), targets[:5])


# --------------------------------------------------------------------------------------------
# LMNN: what it learns
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wine", "digits"])
def test_lmnn_lifts_3nn_accuracy(name):
    X, y = load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with_lmnn = knn_accuracy([StandardScaler(), LMNN(n_neighbors=3)], X, y)
    without_lmnn = knn_accuracy([StandardScaler()], X, y)
    assert with_lmnn >= 0.98
    assert with_lmnn >= without_lmnn


def test_lmnn_lowers_its_loss_and_records_progress():
    X, y = three_blobs(n_per_class=15, n_features=6, seed=5)
    lmnn = LMNN(n_neighbors=3, init="random", random_state=0, device="cpu").fit(X, y)
    assert lmnn.converged_
    assert 1 <= lmnn.n_iter_ <= lmnn.max_iter
    assert all(isinstance(value, float) for value in lmnn.loss_history_)
    assert min(lmnn.loss_history_) < lmnn.loss_history_[0]
    assert lmnn.components_.shape == (6, 6)
    np.testing.assert_allclose(lmnn.transform(X), X @ lmnn.components_.T)


@pytest.mark.parametrize("init", ["pca", "lda", "identity", "random"])
def test_lmnn_accepts_every_named_init(init):
    X, y = three_blobs()
    lmnn = LMNN(n_components=2, init=init, random_state=0).fit(X, y)
    assert lmnn.transform(X).shape == (len(X), 2)


def test_lmnn_accepts_an_init_array_and_starts_from_it():
    X, y = three_blobs()
    start = np.random.default_rng(0).standard_normal((2, X.shape[1]))
    lmnn = LMNN(init=start, max_iter=1, device="cpu")
    with pytest.warns(ConvergenceWarning):
        lmnn.fit(X, y)
    assert lmnn.components_.shape == (2, X.shape[1])
    expected_start = lmnn_loss(torch.tensor(start), torch.tensor(X), torch.tensor(y), find_target_neighbors(X, y, 3))
    assert lmnn.loss_history_[0] == pytest.approx(expected_start.item(), rel=1e-5)  # float32 fit


# --------------------------------------------------------------------------------------------
# LMNN: behaving like a scikit-learn estimator
# --------------------------------------------------------------------------------------------


@parametrize_with_checks(
    [LDA(), LMNN()],
    expected_failed_checks=lambda estimator: (
        {
            "check_fit2d_1feature": "its 10 random samples in 3 classes leave a class with fewer "
            "than n_neighbors + 1 = 4 samples, which LMNN refuses with its own message"
        }
        if isinstance(estimator, LMNN)
        else {}
    ),
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [LDA(n_components=1, reg=1e-3), LMNN(n_neighbors=2, init="identity", margin=2.0)])
def test_clone_and_get_params_round_trip(estimator):
    copy = clone(estimator)
    assert copy is not estimator
    assert copy.get_params() == estimator.get_params()
    assert type(estimator)(**estimator.get_params()).get_params() == estimator.get_params()


def test_lmnn_in_a_pipeline_with_cross_val_score():
    X, y = load("wine")
    pipeline = make_pipeline(StandardScaler(), LMNN(), KNeighborsClassifier())
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.9


def test_lmnn_is_deterministic_on_the_cpu():
    X, y = three_blobs(n_per_class=20, n_features=5)
    first = LMNN(init="random", random_state=7, device="cpu").fit(X, y).components_
    second = LMNN(init="random", random_state=7, device="cpu").fit(X, y).components_
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lmnn_fits_float32_and_float64(dtype):
    X, y = three_blobs(n_per_class=20, n_features=5)
    lmnn = LMNN(device="cpu").fit(X.astype(dtype), y)
    assert lmnn.components_.dtype == np.float64
    assert np.isfinite(lmnn.transform(X.astype(dtype))).all()


def test_lmnn_fit_in_float32_learns_the_float64_map():
    # LMNN fits in float32; the same minimisation in float64 must end at the same map.
    X, y = three_blobs(n_per_class=20, n_features=5)
    in_float32 = LMNN(device="cpu").fit(X, y)
    targets = find_target_neighbors(X, y, n_neighbors=3)
    initial_map = PCA(svd_solver="full").fit(X).components_
    in_float64, *_ = _minimise_lmnn_loss(
        torch.tensor(initial_map),
        torch.tensor(X),
        torch.tensor(y),
        torch.tensor(targets),
        margin=1.0,
        push_weight=0.5,
        max_iter=200,
        tol=1e-5,
        verbose=False,
    )
    np.testing.assert_allclose(in_float32.components_, in_float64.numpy(), atol=1e-2)


def test_lmnn_warns_when_max_iter_is_too_small():
    X, y = load("wine")
    X = StandardScaler().fit_transform(X)
    with pytest.warns(ConvergenceWarning, match=r"after \d L-BFGS iterations.*raise max_iter"):
        lmnn = LMNN(max_iter=2).fit(X, y)
    assert lmnn.n_iter_ <= 2
    assert not lmnn.converged_


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X_has_nan": True}, r"Input X contains NaN"),
        ({"y": np.zeros(30)}, r"at least 2 classes.*only one class"),
        ({"n_neighbors": 10}, r"class \d has only 10 sample.*lower n_neighbors to 9"),
        ({"n_components": 5}, r"n_components=5 is larger than the number of features \(4\)"),
        ({"init": "lda", "n_components": 3}, r"init='lda' gives at most .* = 2.*init='pca'"),
        ({"init": "svd"}, r"init must be one of 'pca', 'lda', 'identity', 'random'"),
        ({"init": np.ones((2, 3))}, r"init as an array must have shape"),
        ({"n_neighbors": 0}, r"n_neighbors must be a positive integer"),
        ({"push_weight": 1.5}, r"push_weight must be a number in \[0, 1\]"),
        ({"device": "tpu-ish"}, r"device must be 'cpu', 'cuda', 'mps'"),
    ],
)
def test_lmnn_rejects_bad_input_with_a_clear_message(change, message):
    change = dict(change)
    X, y = three_blobs()
    if change.pop("X_has_nan", False):
        X[0, 0] = np.nan
    y = change.pop("y", y)
    with pytest.raises(ValueError, match=message):
        LMNN(**change).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is missing")
def test_lmnn_says_when_cuda_is_missing():
    X, y = three_blobs()
    with pytest.raises(ValueError, match=r"device='cuda' is not available.*use 'cpu'"):
        LMNN(device="cuda").fit(X, y)


def test_lmnn_fits_on_an_explicit_cpu_device():
    X, y = three_blobs()
    by_name = LMNN(device="cpu").fit(X, y).components_
    by_device = LMNN(device=torch.device("cpu")).fit(X, y).components_
    np.testing.assert_array_equal(by_name, by_device)


def test_lmnn_transform_checks_the_number_of_features():
    X, y = three_blobs()
    lmnn = LMNN().fit(X, y)
    with pytest.raises(ValueError, match=r"X has 3 features, but LMNN is expecting 4"):
        lmnn.transform(X[:, :3])
