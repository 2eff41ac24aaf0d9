"""The course's plots: what they draw is the data they were given."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd

from mlcourse.train import TrainingHistory
from mlcourse.viz import plot_triplet_training

matplotlib.use("Agg")


def test_triplet_training_plot_draws_the_running_means_and_the_validation_curve():
    rng = np.random.default_rng(0)
    stats = [{"loss": rng.random(), "active_share_of_valid": rng.random(), "mean_hinge_of_valid": rng.random()}
             for _ in range(12)]
    history = TrainingHistory(step_stats=stats, evaluations=[{"valid mAP": 0.1}, {"valid mAP": 0.3}])
    figure = plot_triplet_training({"model": history}, margin=0.5, baseline=0.2, smooth=4)
    loss_axes, hidden_axes, valid_axes = figure.axes
    table = pd.DataFrame(stats)
    np.testing.assert_allclose(loss_axes.lines[0].get_ydata(), table.loss.rolling(4, min_periods=1).mean())
    np.testing.assert_allclose(hidden_axes.lines[1].get_ydata(),
                               table.mean_hinge_of_valid.rolling(4, min_periods=1).mean() / 0.5)
    np.testing.assert_allclose(valid_axes.lines[0].get_ydata(), [0.1, 0.3])
    np.testing.assert_allclose(valid_axes.lines[1].get_ydata(), [0.2, 0.2])
