"""One rule for device=None, and the checks every function shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcourse.checks import choose_device
from mlcourse.metrics import nearest_neighbors
from mlcourse.train import embed


def best_available():
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps") if torch.backends.mps.is_available() else torch.device("cpu")


def test_none_means_where_the_input_is_else_the_best_available():
    assert choose_device() == best_available()
    assert choose_device(like=np.zeros(3)) == best_available()
    assert choose_device(like=torch.zeros(3)) == torch.device("cpu")
    assert choose_device(like=torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert choose_device(like=torch.nn.ReLU()) == best_available()  # a module without parameters
    assert choose_device("cpu", like=torch.zeros(3)) == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be"):
        choose_device("abacus")


def test_embed_and_the_metrics_follow_the_rule():
    model = torch.nn.Linear(4, 2)
    assert embed(model, np.ones((3, 4), dtype=np.float32)).device == torch.device("cpu")
    assert next(model.parameters()).device == torch.device("cpu")  # the model stayed where it was
    distances, _ = nearest_neighbors(torch.eye(3), k=1)
    assert isinstance(distances, np.ndarray)
