"""Linear metric learning: Fisher's LDA and Large Margin Nearest Neighbours (LMNN).

Both methods learn a linear map ``L`` of shape ``(n_components, n_features)``. Euclidean
distance after the map is a Mahalanobis distance before it:

    ||L x_i - L x_j||^2 = (x_i - x_j)^T M (x_i - x_j),   with M = L^T L.

* :class:`LDA` (Fisher, 1936) finds the directions along which the classes are far apart
  relative to their own spread, in closed form (a generalized eigenproblem).
* :class:`LMNN` (Weinberger & Saul, 2009) learns ``L`` by L-BFGS so that each point's
  *target neighbours* (its nearest same-class points) end up closer than every *impostor*
  (a differently labelled point) by a margin. :func:`find_target_neighbors` and
  :func:`lmnn_loss` are its two ingredients, usable on their own.

Two helpers for fitting: :func:`has_target_neighbors` marks the points LMNN can use (their
class is larger than k), and :func:`fit_timed` fits any estimator, on a random sample of the
data if asked, and times the fit.

Both are scikit-learn transformers, so they fit in a pipeline:

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> knn = make_pipeline(StandardScaler(), LMNN(n_neighbors=3), KNeighborsClassifier(3))

LDA is taught in notebooks/01_distances_and_lda.ipynb, LMNN in notebooks/02_lmnn.ipynb.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.linalg
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from .checks import BLOCK_BYTES, choose_device, require_positive_int

__all__ = [
    "LDA",
    "LMNN",
    "class_covariances",
    "find_target_neighbors",
    "fit_timed",
    "has_target_neighbors",
    "lmnn_loss",
]


INITS = ("pca", "lda", "identity", "random")
"""The named initialisations of :class:`LMNN` (an explicit array is also accepted)."""


# --------------------------------------------------------------------------------------------
# Fisher's linear discriminant analysis
# --------------------------------------------------------------------------------------------


class LDA(TransformerMixin, BaseEstimator):
    """Fisher's linear discriminant analysis, as a supervised projection.

    LDA looks for directions ``w`` along which the class means are spread out (between-class
    covariance ``S_b``) while each class stays compact (within-class covariance ``S_w``): it
    maximises ``(w^T S_b w) / (w^T S_w w)``. The maximisers are the eigenvectors of the
    generalized symmetric eigenproblem ``S_b w = lambda S_w w``, sorted by decreasing
    ``lambda``. ``S_b`` has rank at most ``n_classes - 1``, so that is how many useful
    directions there are.

    Args:
        n_components: How many discriminant directions to keep, at most
            ``min(n_classes - 1, n_features)``. ``None`` keeps all of them.
        reg: Added to the diagonal of ``S_w`` so that it is invertible even when some
            features are constant or collinear (blank pixels, duplicated descriptors).

    Attributes:
        mean_: (n_features,) mean of the training data; :meth:`transform` centres with it.
        classes_: (n_classes,) the class labels seen in ``fit``.
        components_: (n_components, n_features) the discriminant directions as rows, scaled
            so that the within-class variance along each is 1 (``w^T (S_w + reg I) w = 1``).
        eigenvalues_: (n_components,) between- over within-class variance along each
            direction, decreasing.
        explained_variance_ratio_: (n_components,) each eigenvalue divided by the sum of the
            ``min(n_classes - 1, n_features)`` largest ones.
        n_features_in_: Number of features seen in ``fit``.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> LDA(n_components=2).fit_transform(X, y).shape
        (150, 2)

    Taught in notebooks/01_distances_and_lda.ipynb
    """

    def __init__(self, n_components=None, reg=1e-6):
        self.n_components = n_components
        self.reg = reg

    def fit(self, X, y):
        """Find the discriminant directions of labelled data.

        Args:
            X: (n_samples, n_features) array of finite numbers.
            y: (n_samples,) class labels, at least two distinct ones.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If ``X`` is not 2-D or holds NaN/inf, ``X`` and ``y`` differ in length,
                there is only one class, or ``n_components`` is more than LDA can give.

        Taught in notebooks/01_distances_and_lda.ipynb
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, class_index = np.unique(y, return_inverse=True)
        _require_two_classes(self.classes_, "LDA")
        if not self.reg >= 0:
            raise ValueError(f"reg must be a number >= 0, got {self.reg!r}")
        max_components = min(len(self.classes_) - 1, X.shape[1])
        n_components = self._checked_n_components(max_components, X.shape[1])

        self.mean_ = X.mean(axis=0)
        within, between = class_covariances(X, class_index)
        regularised_within = within + self.reg * np.eye(X.shape[1])
        # eigh returns eigenvalues in increasing order; the best directions are the last ones.
        eigenvalues, eigenvectors = scipy.linalg.eigh(between, regularised_within)
        eigenvalues = eigenvalues[::-1][:max_components]
        directions = _flip_signs(eigenvectors[:, ::-1][:, :max_components].T)

        self.components_ = directions[:n_components]
        self.eigenvalues_ = eigenvalues[:n_components]
        total = eigenvalues.sum()
        ratio = eigenvalues / total if total > 0 else np.zeros_like(eigenvalues)
        self.explained_variance_ratio_ = ratio[:n_components]
        return self

    def transform(self, X):
        """Project data onto the discriminant directions.

        Args:
            X: (n_samples, n_features) array.

        Returns:
            (n_samples, n_components) array ``(X - mean_) @ components_.T``.

        Taught in notebooks/01_distances_and_lda.ipynb
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.mean_) @ self.components_.T

    def _checked_n_components(self, max_components, n_features):
        if self.n_components is None:
            return max_components
        require_positive_int(self.n_components, "n_components")
        if self.n_components > max_components:
            raise ValueError(
                f"n_components={self.n_components} is too large: LDA finds at most "
                f"min(n_classes - 1, n_features) = {max_components} discriminant directions "
                f"here ({len(self.classes_)} classes, {n_features} features). "
                f"Use n_components <= {max_components}, or None for all of them."
            )
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def class_covariances(X, class_index):
    """Within-class and between-class covariance matrices of labelled data.

    Both are scatter matrices divided by the number of samples, so they do not grow with
    the data set; each class counts in proportion to its size.

    Args:
        X: (N, D) float array.
        class_index: (N,) int array, the class of each row as 0 .. n_classes - 1.

    Returns:
        ``(within, between)``, two (D, D) arrays:
        ``within = 1/N sum_c sum_{i in c} (x_i - mu_c)(x_i - mu_c)^T`` and
        ``between = 1/N sum_c n_c (mu_c - mu)(mu_c - mu)^T``.

    Taught in notebooks/01_distances_and_lda.ipynb
    """
    overall_mean = X.mean(axis=0)
    within = np.zeros((X.shape[1], X.shape[1]))
    between = np.zeros_like(within)
    for label in np.unique(class_index):
        members = X[class_index == label]
        class_mean = members.mean(axis=0)
        centred = members - class_mean
        within += centred.T @ centred
        offset = class_mean - overall_mean
        between += len(members) * np.outer(offset, offset)
    return within / len(X), between / len(X)


def _flip_signs(directions):
    """Make each row's largest entry (in magnitude) positive.

    An eigenvector is only defined up to its sign, and different LAPACK builds pick different
    ones; fixing the sign makes the projection the same on every machine.
    """
    largest = directions[np.arange(len(directions)), np.abs(directions).argmax(axis=1)]
    return directions * np.where(largest < 0, -1.0, 1.0)[:, None]


# --------------------------------------------------------------------------------------------
# Large Margin Nearest Neighbours: target neighbours and the loss
# --------------------------------------------------------------------------------------------


def find_target_neighbors(X, y, n_neighbors=3):
    """The target neighbours of LMNN: each point's nearest points of its own class.

    Neighbours are found once, with Euclidean distance in the input space, and stay fixed
    while LMNN learns its map. A point is never its own target neighbour.

    Args:
        X: (N, D) array.
        y: (N,) class labels.
        n_neighbors: k, the number of target neighbours per point.

    Returns:
        (N, k) int64 array: row ``i`` holds the indices of the k nearest points with label
        ``y[i]``, nearest first.

    Raises:
        ValueError: If ``n_neighbors`` is not a positive integer, or a class has
            ``n_neighbors`` points or fewer (a point would not have enough same-class
            neighbours); the message names the class.

    Taught in notebooks/02_lmnn.ipynb
    """
    X, y = np.asarray(X), np.asarray(y)
    require_positive_int(n_neighbors, "n_neighbors")
    _require_class_sizes(y, n_neighbors)
    targets = np.empty((len(X), n_neighbors), dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        # kneighbors() without query points leaves each point out of its own neighbour list.
        search = NearestNeighbors(n_neighbors=n_neighbors).fit(X[members])
        targets[members] = members[search.kneighbors(return_distance=False)]
    return targets


def lmnn_loss(
    L,
    X,
    y,
    targets,
    margin=1.0,
    push_weight=0.5,
    *,
    return_active=False,
    anchors_per_block=None,
):
    """The LMNN objective of Weinberger & Saul, differentiable with respect to ``L``.

    With ``d(a, b) = ||L (x_a - x_b)||^2`` and ``mu = push_weight``::

        (1 - mu) * sum_{i, j in targets(i)} d(i, j)                                   (pull)
        +    mu  * sum_{i, j in targets(i), l: y_l != y_i} [margin + d(i, j) - d(i, l)]_+  (push)

    The pull term draws target neighbours in; the push term penalises every impostor ``l``
    that comes within ``margin`` of the target distance. The impostors are searched among
    all differently labelled points at every call, because they change as ``L`` changes.

    How it is computed: each squared distance is linear in an outer product,
    ``d(a, b) = trace(L (x_a - x_b)(x_a - x_b)^T L^T)``, and once we know which triplets are
    active (hinge > 0) the push term is a weighted sum of such distances. So the active
    triplets are found without gradient tracking, ``B`` anchors at a time (``B`` chosen so
    that a block needs at most 64 MB), and their outer products are summed into a ``(D, D)``
    matrix ``S``. The loss is then a constant plus ``trace(L S L^T)``: the same value, and
    autograd gives its gradient ``2 L S``, the LMNN (sub)gradient, without keeping any
    ``N x N`` tensor alive for the backward pass.

    Args:
        L: (d, D) float tensor, the linear map (``requires_grad=True`` to get a gradient).
        X: (N, D) float tensor, same dtype and device as ``L``.
        y: (N,) integer class labels, a tensor or an array.
        targets: (N, k) int tensor or array from :func:`find_target_neighbors`.
        margin: The safety margin between target distances and impostor distances.
        push_weight: mu in [0, 1], the weight of the push term against the pull term.
        return_active: Also return the number of active (margin-violating) triplets.
        anchors_per_block: Anchors per block; ``None`` picks the largest block within budget.

    Returns:
        A scalar tensor, the loss; or ``(loss, n_active)`` with ``n_active`` an int when
        ``return_active`` is true.

    Example:
        >>> X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.5, 1.0]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> targets = find_target_neighbors(X.numpy(), y.numpy(), n_neighbors=1)
        >>> float(lmnn_loss(torch.eye(2), X, y, targets))
        7.0

    Taught in notebooks/02_lmnn.ipynb
    """
    y = torch.as_tensor(y, device=X.device)
    targets = torch.as_tensor(targets, dtype=torch.long, device=X.device)
    _require_loss_shapes(L, X, y, targets)
    # Distances do not change when every point moves by the same vector; centring keeps the
    # sums of outer products below small, which matters in float32.
    X = X - X.mean(dim=0)
    pull_first, pull_second = _target_pairs(targets, torch.arange(len(X), device=X.device))
    push_first, push_second, push_counts, n_active = _active_triplet_pairs(
        L.detach(), X, y, targets, margin, anchors_per_block
    )
    # One scatter for both terms: pull pairs weigh (1 - mu), push pairs mu times their counts.
    pull_weights = torch.full_like(pull_first, 1 - push_weight, dtype=X.dtype)
    scatter = _pair_scatter(
        X,
        torch.cat([pull_first, push_first]),
        torch.cat([pull_second, push_second]),
        torch.cat([pull_weights, push_weight * push_counts]),
    )
    loss = push_weight * margin * n_active + _trace_of_projection(L, scatter)
    return (loss, n_active) if return_active else loss


@torch.no_grad()
def _active_triplet_pairs(L, X, y, targets, margin, anchors_per_block):
    """The pairs whose distances make up the push term, with signed counts as weights.

    Over the active triplets (i, j, l), the push term is ``sum (margin + d(i, j) - d(i, l))``:
    a pair (i, j) counts once per impostor that beats it (weight +1 each), a pair (i, l) once
    per target neighbour it beats (weight -1 each).

    Args:
        L: (d, D) tensor. X: (N, D) tensor. y: (N,) labels. targets: (N, k) long tensor.
        margin: float. anchors_per_block: int, or None for :func:`_anchors_per_block`.

    Returns:
        ``(first, second, counts, n_active)``: (P,) long tensors of row indices, (P,) signed
        counts in the dtype of ``X``, and the number of active triplets, an int.
    """
    n_samples, n_neighbors = targets.shape
    block = anchors_per_block or _anchors_per_block(n_samples)
    embedded = X @ L.T
    firsts, seconds, counts = [], [], []
    n_active = 0
    for start in range(0, n_samples, block):
        anchors = torch.arange(start, min(start + block, n_samples), device=X.device)
        pair_anchor, pair_impostor, active = _active_triplets(embedded, y, targets, anchors, margin)
        n_active += int(active.sum())
        target_counts = X.new_zeros(len(anchors), n_neighbors)
        target_counts.index_add_(0, pair_anchor, active.to(X.dtype))
        target_first, target_second = _target_pairs(targets, anchors)
        firsts += [target_first, anchors[pair_anchor]]
        seconds += [target_second, pair_impostor]
        counts += [target_counts.flatten(), -active.sum(dim=1).to(X.dtype)]
    return torch.cat(firsts), torch.cat(seconds), torch.cat(counts), n_active


def _active_triplets(embedded, y, targets, anchors, margin):
    """The triplets (i, j, l) of one block of anchors with ``margin + d(i, j) - d(i, l) > 0``.

    Args:
        embedded: (N, d) tensor, the points after the map.
        y: (N,) labels. targets: (N, k) long tensor. anchors: (B,) indices i of this block.
        margin: float.

    Returns:
        ``(pair_anchor, pair_impostor, active)`` for the P pairs (i, l) where ``l`` is an
        impostor within reach of at least one of i's targets: ``pair_anchor`` (P,) positions
        of i in ``anchors``, ``pair_impostor`` (P,) indices l, and ``active`` (P, k) bool,
        true where the triplet (i, targets[i, m], l) has a positive hinge.
    """
    anchor_points = embedded[anchors]
    target_distances = (anchor_points[:, None, :] - embedded[targets[anchors]]).pow(2).sum(-1)
    # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b: all (B, N) distances without a (B, N, d) tensor.
    # The anchor's own squared norm is left out of this (B, N) matrix and added back to the
    # few pairs kept below, which saves a pass over it.
    squared_norms = embedded.pow(2).sum(dim=1)
    partial_distances = torch.addmm(squared_norms, anchor_points, embedded.T, alpha=-2)
    # Only points nearer than the farthest target plus the margin can violate a hinge; they
    # are a small fraction of all pairs, so we keep just those.
    reach = margin + target_distances.max(dim=1).values - squared_norms[anchors]
    pair_anchor, pair_impostor = torch.nonzero(partial_distances < reach[:, None], as_tuple=True)
    impostor = y[anchors[pair_anchor]] != y[pair_impostor]
    pair_anchor, pair_impostor = pair_anchor[impostor], pair_impostor[impostor]
    impostor_distances = partial_distances[pair_anchor, pair_impostor] + squared_norms[anchors[pair_anchor]]
    active = impostor_distances[:, None] < margin + target_distances[pair_anchor]
    return pair_anchor, pair_impostor, active


def _target_pairs(targets, anchors):
    """The pairs (i, j) with j a target neighbour of i, for the given anchors, flattened.

    Returns:
        ``(first, second)``: two (B k,) long tensors, anchor indices and neighbour indices.
    """
    neighbours = targets[anchors]
    return anchors.repeat_interleave(neighbours.shape[1]), neighbours.flatten()


def _pair_scatter(X, first, second, weights):
    """``sum_p w_p (x_a - x_b)(x_a - x_b)^T`` with ``a = first[p]``, ``b = second[p]``.

    Summing one (D, D) outer product per pair costs ``P D^2``. Expanding each product
    instead, ``(x_a - x_b)(x_a - x_b)^T = x_a x_a^T + x_b x_b^T - x_a x_b^T - x_b x_a^T``,
    the sum is ``X^T diag(degree) X - C - C^T`` with ``C = X^T W X``, where ``W[a, b]`` adds
    up the weights of the pairs (a, b) and ``degree[i]`` those of the pairs that contain
    ``i``. ``W X`` is a weighted sum of rows, so the whole costs ``P D + N D^2``: much less
    when there are many more pairs than points. Rows are gathered in chunks so that they
    stay within :data:`BLOCK_BYTES` however many pairs there are.

    Args:
        X: (N, D). first, second: (P,) long tensors of row indices. weights: (P,).

    Returns:
        (D, D) tensor.
    """
    degree = X.new_zeros(len(X)).index_add_(0, first, weights).index_add_(0, second, weights)
    partner_sums = torch.zeros_like(X)  # row a: sum of w_p x_b over the pairs (a, b)
    chunk = max(1, BLOCK_BYTES // (X.shape[1] * X.element_size()))
    for start in range(0, len(first), chunk):
        pairs = slice(start, start + chunk)
        partner_sums.index_add_(0, first[pairs], X[second[pairs]] * weights[pairs, None])
    cross = X.T @ partner_sums
    return (X.T * degree) @ X - cross - cross.T


def _trace_of_projection(L, scatter):
    """``trace(L S L^T)``: the weighted sum of squared distances that ``S`` summarises."""
    return ((L @ scatter) * L).sum()


def _anchors_per_block(n_samples):
    """How many anchors :func:`lmnn_loss` handles at once, within :data:`BLOCK_BYTES`.

    A block holds a (B, N) distance matrix and a (B, N) mask, 9 or 5 bytes per (anchor,
    point) in float64 or float32, plus about 80 bytes per candidate pair (i, l) within reach,
    usually a few percent of them. Budgeting 32 bytes per (anchor, point) leaves room for
    candidates up to a sixth of all pairs.
    """
    return max(1, BLOCK_BYTES // (32 * n_samples))


# --------------------------------------------------------------------------------------------
# Large Margin Nearest Neighbours: the estimator
# --------------------------------------------------------------------------------------------


class LMNN(TransformerMixin, BaseEstimator):
    """Large Margin Nearest Neighbours (Weinberger & Saul, 2009) as a scikit-learn transformer.

    LMNN learns a linear map ``L`` so that, after the map, each point's ``n_neighbors``
    target neighbours (nearest same-class points, fixed in advance) are close, and every
    differently labelled point is farther than them by at least ``margin``. That is what a
    k-nearest-neighbour classifier needs, with no assumption that classes are Gaussian.
    It minimises :func:`lmnn_loss` with L-BFGS, on a GPU when there is one.

    Args:
        n_neighbors: Target neighbours per point (the k of the kNN you plan to use).
        n_components: Output dimension d; ``None`` keeps ``n_features``.
        init: Starting map: ``"pca"`` (principal axes), ``"lda"`` (Fisher directions, needs
            ``n_components <= n_classes - 1``), ``"identity"``, ``"random"`` (seeded by
            ``random_state``), or an array of shape ``(n_components, n_features)``.
        margin: Required gap between target and impostor squared distances.
        push_weight: mu in [0, 1], the weight of the impostor (push) term.
        max_iter: Most L-BFGS iterations.
        tol: Convergence tolerance on the loss relative to its starting value (and on the
            gradient and the step, in the same units).
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``; ``None`` uses the best
            available (see :func:`mlcourse.checks.choose_device`). The fit computes in float32
            on every device.
        random_state: Seed (int, ``numpy.random.RandomState`` or None) for ``init="random"``.
        verbose: Show a progress bar with the loss and the number of active triplets.

    Attributes:
        components_: (n_components, n_features) float64 array, the learned map ``L``.
        classes_: (n_classes,) the class labels seen in ``fit``.
        n_iter_: Number of L-BFGS iterations run.
        loss_history_: The loss at every evaluation L-BFGS made, line-search trials included.
        converged_: Whether a tolerance was met before ``max_iter``.
        n_features_in_: Number of features seen in ``fit``.

    Example:
        >>> from sklearn.datasets import load_wine
        >>> from sklearn.preprocessing import StandardScaler
        >>> X, y = load_wine(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> LMNN(n_neighbors=3, n_components=2).fit_transform(X, y).shape
        (178, 2)

    Taught in notebooks/02_lmnn.ipynb
    """

    def __init__(
        self,
        n_neighbors=3,
        n_components=None,
        init="pca",
        margin=1.0,
        push_weight=0.5,
        max_iter=200,
        tol=1e-5,
        device=None,
        random_state=None,
        verbose=False,
    ):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.init = init
        self.margin = margin
        self.push_weight = push_weight
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Learn the map ``L`` from labelled data.

        Args:
            X: (n_samples, n_features) array of finite numbers (standardise it first: LMNN's
                margin is in the units of X).
            y: (n_samples,) class labels; every class needs ``n_neighbors + 1`` samples.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: On NaN/inf, a single class, a class too small for ``n_neighbors``,
                ``n_components`` larger than ``n_features``, or an unknown ``init``/``device``.

        Warns:
            ConvergenceWarning: If ``max_iter`` iterations ran without meeting ``tol``.

        Taught in notebooks/02_lmnn.ipynb
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, class_index = np.unique(y, return_inverse=True)
        _require_two_classes(self.classes_, "LMNN")
        self._check_parameters()
        targets = find_target_neighbors(X, y, self.n_neighbors)
        initial_map = self._initial_map(X, y)

        device = choose_device(self.device)
        # float32 on every device: twice as fast as float64 on a CPU, far faster on a GPU (MPS
        # has no float64), and it learns the same map (tests/test_linear.py checks that).
        L, history, n_iter, converged = _minimise_lmnn_loss(
            torch.tensor(initial_map, dtype=torch.float32, device=device),
            torch.tensor(X, dtype=torch.float32, device=device),
            torch.tensor(class_index, device=device),
            torch.tensor(targets, device=device),
            self.margin,
            self.push_weight,
            self.max_iter,
            self.tol,
            self.verbose,
        )
        self.components_ = L.cpu().numpy().astype(np.float64)
        self.loss_history_, self.n_iter_, self.converged_ = history, n_iter, converged
        if not converged:
            warnings.warn(
                f"LMNN stopped after {n_iter} L-BFGS iterations ({len(history)} loss "
                f"evaluations) without converging (max_iter={self.max_iter}, tol={self.tol}): "
                "raise max_iter, or raise tol if the loss has levelled off (see loss_history_).",
                ConvergenceWarning,
            )
        return self

    def transform(self, X):
        """Map data with the learned ``L``.

        Args:
            X: (n_samples, n_features) array.

        Returns:
            (n_samples, n_components) array ``X @ components_.T``.

        Taught in notebooks/02_lmnn.ipynb
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.components_.T

    def _check_parameters(self):
        require_positive_int(self.n_neighbors, "n_neighbors")
        require_positive_int(self.max_iter, "max_iter")
        if not self.margin > 0:
            raise ValueError(f"margin must be a number > 0, got {self.margin!r}")
        if not 0 <= self.push_weight <= 1:
            raise ValueError(f"push_weight must be a number in [0, 1], got {self.push_weight!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")

    def _n_components(self, n_features):
        if self.n_components is None:
            return n_features
        require_positive_int(self.n_components, "n_components")
        if self.n_components > n_features:
            raise ValueError(
                f"n_components={self.n_components} is larger than the number of features "
                f"({n_features}): LMNN learns a map to at most as many dimensions as it is "
                f"given. Use n_components <= {n_features}, or None."
            )
        return self.n_components

    def _initial_map(self, X, y):
        """The starting ``L``: a (n_components, n_features) array chosen by ``init``."""
        if not isinstance(self.init, str):
            return self._checked_init_array(X.shape[1])
        n_components = self._n_components(X.shape[1])
        if self.init == "pca":
            return PCA(n_components=n_components, svd_solver="full").fit(X).components_
        if self.init == "lda":
            return _lda_initial_map(X, y, n_components)
        if self.init == "identity":
            return np.eye(n_components, X.shape[1])
        if self.init == "random":
            rows = check_random_state(self.random_state).standard_normal((n_components, X.shape[1]))
            return rows / np.linalg.norm(rows, axis=1, keepdims=True)
        raise ValueError(
            f"init must be one of {', '.join(map(repr, INITS))} or an array of shape "
            f"(n_components, n_features), got {self.init!r}"
        )

    def _checked_init_array(self, n_features):
        initial_map = np.asarray(self.init, dtype=np.float64)
        n_rows = len(initial_map) if initial_map.ndim == 2 else 0
        expected_rows = n_rows if self.n_components is None else self.n_components
        if initial_map.shape != (expected_rows, n_features) or not 1 <= n_rows <= n_features:
            raise ValueError(
                f"init as an array must have shape (n_components, n_features) with "
                f"n_components <= n_features = {n_features}"
                + ("" if self.n_components is None else f" and n_components = {self.n_components}")
                + f", got shape {initial_map.shape}"
            )
        return initial_map

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _lda_initial_map(X, y, n_components):
    """LDA's directions as LMNN's start; LDA has at most ``n_classes - 1`` of them."""
    max_components = min(len(np.unique(y)) - 1, X.shape[1])
    if n_components > max_components:
        raise ValueError(
            f"init='lda' gives at most min(n_classes - 1, n_features) = {max_components} "
            f"directions, but n_components={n_components}: set n_components <= "
            f"{max_components}, or use init='pca'."
        )
    return LDA(n_components=n_components).fit(X, y).components_


def _minimise_lmnn_loss(L, X, y, targets, margin, push_weight, max_iter, tol, verbose):
    """Run L-BFGS with a strong Wolfe line search on :func:`lmnn_loss`.

    Args:
        L: (d, D) starting map. X: (N, D). y: (N,) long. targets: (N, k) long; all on one device.
        margin, push_weight: as in :func:`lmnn_loss`. max_iter, tol, verbose: as in :class:`LMNN`.

    Returns:
        ``(L, loss_history, n_iter, converged)`` with ``L`` the final (d, D) tensor.
    """
    # L-BFGS flattens the gradient with view(), which needs a contiguous parameter.
    L = L.clone(memory_format=torch.contiguous_format).requires_grad_(True)
    loss_arguments = (X, y, targets, margin, push_weight)
    with torch.no_grad():
        # Dividing by the starting loss makes tol relative: the loss is a sum over N k pairs.
        scale = max(float(lmnn_loss(L, *loss_arguments)), torch.finfo(X.dtype).tiny)
    max_evaluations = 2 * max_iter
    optimizer = torch.optim.LBFGS(
        [L],
        max_iter=max_iter,
        max_eval=max_evaluations,
        tolerance_grad=tol,
        tolerance_change=tol,
        line_search_fn="strong_wolfe",
    )
    history = []
    progress = tqdm(total=max_iter, desc="LMNN", unit="iter", disable=not verbose)

    def closure():
        optimizer.zero_grad()
        loss, n_active = lmnn_loss(L, *loss_arguments, return_active=True)
        (loss / scale).backward()
        history.append(loss.item())
        progress.update(_lbfgs_iterations(optimizer) - progress.n)
        progress.set_postfix(loss=f"{history[-1]:.4g}", active_triplets=n_active, refresh=False)
        return loss / scale

    optimizer.step(closure)
    progress.close()
    n_iter = _lbfgs_iterations(optimizer)
    # L-BFGS also stops when it runs out of loss evaluations, which is not convergence either.
    converged = n_iter < max_iter and len(history) < max_evaluations
    return L.detach(), history, n_iter, converged


def _lbfgs_iterations(optimizer):
    """How many iterations torch's L-BFGS has begun (it counts them on its one parameter)."""
    parameter = optimizer.param_groups[0]["params"][0]
    return int(optimizer.state[parameter].get("n_iter", 0))


# --------------------------------------------------------------------------------------------
# Fitting: which points LMNN can use, and how long a fit takes
# --------------------------------------------------------------------------------------------


def has_target_neighbors(y, n_neighbors=3):
    """Which points LMNN can fit on: those whose class has more than ``n_neighbors`` points.

    Each point needs ``n_neighbors`` target neighbours of its own class besides itself, so
    :class:`LMNN` refuses a class of ``n_neighbors`` points or fewer. Fit on
    ``X[mask], y[mask]`` to leave such classes out.

    Args:
        y: (N,) class labels (an array, a list or a pandas Series).
        n_neighbors: k, the target neighbours per point.

    Returns:
        (N,) bool array, True for the points of the classes with ``n_neighbors + 1`` points
        or more.

    Example:
        >>> has_target_neighbors(["a", "a", "b", "a"], n_neighbors=2)
        array([ True,  True, False,  True])

    Taught in notebooks/02_lmnn.ipynb
    """
    require_positive_int(n_neighbors, "n_neighbors")
    _, class_index, sizes = np.unique(np.asarray(y), return_inverse=True, return_counts=True)
    return sizes[class_index.reshape(-1)] > n_neighbors


def fit_timed(model, X, y, *, max_samples=None, seed=0):
    """Fit a scikit-learn estimator and measure the wall time of the fit.

    Methods that compare every pair of points (scikit-learn's NCA holds N x N matrices) can
    be given a random sample of the data instead of all of it.

    Args:
        model: An unfitted estimator with ``fit(X, y)``, e.g. :class:`LMNN`.
        X: (N, D) array.
        y: (N,) labels.
        max_samples: Fit on at most this many points, drawn at random without replacement
            (kept in their order); None fits on all of them.
        seed: Seed of the draw (an int, for ``numpy.random.default_rng``).

    Returns:
        ``(model, seconds)``: the fitted estimator and the seconds its ``fit`` took.

    Taught in notebooks/02_lmnn.ipynb
    """
    X, y = np.asarray(X), np.asarray(y)
    if max_samples is not None:
        require_positive_int(max_samples, "max_samples")
        if len(X) > max_samples:
            chosen = np.sort(np.random.default_rng(seed).choice(len(X), max_samples, replace=False))
            X, y = X[chosen], y[chosen]
    start = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Checks shared by the estimators
# --------------------------------------------------------------------------------------------


def _require_two_classes(classes, estimator_name):
    if len(classes) < 2:
        raise ValueError(
            f"{estimator_name} needs at least 2 classes to tell apart, but y has only one "
            f"class ({classes[0]}). Check that y holds the labels you meant."
        )


def _require_class_sizes(y, n_neighbors):
    """Every class needs n_neighbors + 1 points: each point plus its target neighbours."""
    labels, sizes = np.unique(y, return_counts=True)
    for label, size in zip(labels, sizes):
        if size > n_neighbors:
            continue
        advice = f"lower n_neighbors to {size - 1} or less" if size > 1 else "remove that class or give it more samples"
        raise ValueError(
            f"class {label} has only {size} sample(s), but n_neighbors={n_neighbors} needs "
            f"at least {n_neighbors + 1} per class (each point and its target neighbours of "
            f"the same class): {advice}."
        )


def _require_loss_shapes(L, X, y, targets):
    if X.ndim != 2 or L.ndim != 2 or L.shape[1] != X.shape[1]:
        raise ValueError(f"L must have shape (d, D) and X shape (N, D), got L {tuple(L.shape)} and X {tuple(X.shape)}")
    if y.shape != (len(X),) or targets.ndim != 2 or len(targets) != len(X):
        raise ValueError(
            f"y must have shape (N,) and targets (N, k) with N = {len(X)} rows of X, got "
            f"y {tuple(y.shape)} and targets {tuple(targets.shape)}"
        )
