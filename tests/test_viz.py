"""The course's plots: what they draw is the data they were given."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mlcourse.train import TrainingHistory
from mlcourse.viz import plot_similarity_matrices, plot_triplet_training, show_side_by_side

matplotlib.use("Agg")


def test_triplet_training_plot_draws_the_running_means_and_the_validation_curve():
    rng = np.random.default_rng(0)
    stats = [
        {"loss": rng.random(), "active_share_of_valid": rng.random(), "mean_hinge_of_valid": rng.random()}
        for _ in range(12)
    ]
    history = TrainingHistory(step_stats=stats, evaluations=[{"valid mAP": 0.1}, {"valid mAP": 0.3}])
    figure = plot_triplet_training({"model": history}, margin=0.5, baseline=0.2, smooth=4)
    loss_axes, hidden_axes, valid_axes = figure.axes
    table = pd.DataFrame(stats)
    np.testing.assert_allclose(loss_axes.lines[0].get_ydata(), table.loss.rolling(4, min_periods=1).mean())
    np.testing.assert_allclose(
        hidden_axes.lines[1].get_ydata(), table.mean_hinge_of_valid.rolling(4, min_periods=1).mean() / 0.5
    )
    np.testing.assert_allclose(valid_axes.lines[0].get_ydata(), [0.1, 0.3])
    np.testing.assert_allclose(valid_axes.lines[1].get_ydata(), [0.2, 0.2])


def test_similarity_matrices_are_drawn_with_one_tick_per_group_and_lines_between_groups():
    rng = np.random.default_rng(1)
    groups = np.array(["a", "a", "b", "b", "b", "c"])
    matrices = {"first": rng.random((6, 6)), "second": rng.random((6, 6))}
    figure = plot_similarity_matrices(matrices, groups, title="versions")
    image_axes = [ax for ax in figure.axes if ax.get_title() in matrices]
    assert [ax.get_title() for ax in image_axes] == ["first", "second"]
    for ax, matrix in zip(image_axes, matrices.values()):
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
        np.testing.assert_allclose(ax.get_yticks(), [0.5, 3.0, 5.0])
        np.testing.assert_array_equal(ax.images[0].get_array(), matrix)
        lines = sorted({line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1]})
        assert lines == [1.5, 4.5]
    plt.close(figure)


def test_side_by_side_keeps_each_figures_pixels():
    figures = [plt.figure(figsize=(2, 1), dpi=50), plt.figure(figsize=(3, 2), dpi=50)]
    row = show_side_by_side(figures)
    assert row.get_size_inches()[0] == pytest.approx(5) and row.get_size_inches()[1] == pytest.approx(2)
    assert [ax.images[0].get_array().shape[:2] for ax in row.axes] == [(50, 100), (100, 150)]
    plt.close(row)


def test_triplet_gaps_are_drawn_with_each_kinds_share_and_range():
    import matplotlib.pyplot as plt
    import pytest

    from mlcourse.viz import plot_triplet_gaps

    gaps = np.array([-0.3, -0.1, 0.0, 0.05, 0.1, 0.2, 0.25, 0.6, 0.9, 1.2])
    ax = plot_triplet_gaps(gaps, margin=0.2, title="a batch")
    assert ax.get_title() == "a batch: 10 triplets"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["hard 30%", "semi-hard 30%", "easy 40%"]
    assert sum(patch.get_height() for patch in ax.patches[3:]) == len(gaps)  # the histogram's bars
    assert ax.get_xlim() == pytest.approx((-0.3, 1.2))
    plt.close(ax.figure)
