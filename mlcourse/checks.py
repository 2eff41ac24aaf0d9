"""What the package's modules share: argument checks, the device rule, the block budget.

Argument checks with errors a learner can act on, the one rule for ``device=None``, seeded
generators, and the memory budget of blockwise computations.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_BYTES = 64 * 2**20
"""Memory budget of one block of a blockwise computation: the (rows, gallery) scores of a
neighbour search, the (anchor, positive) pairs of a triplet miner, the anchors of the LMNN loss.
It changes the memory used, never the result."""


def require_positive_int(value, name):
    """Raise a ValueError unless ``value`` is an int (not a bool) of at least 1.

    Args:
        value: The argument to check.
        name: Its name, for the message.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def seeded_generator(seed):
    """A CPU ``torch.Generator`` seeded with ``seed``, or None (torch's global generator) for None.

    For a random start with a ``seed=None`` argument: pass the result as ``generator=``.
    """
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def choose_device(device=None, like=None):
    """The device to compute on: one rule for every ``device=`` of the course.

    * A named device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``):
      that one, checked to exist on this machine.
    * ``None``, with ``like`` a tensor or a module: where ``like`` already is, so nothing is
      copied to another device behind your back (a trained model, embeddings on a GPU).
    * ``None`` otherwise: the best this machine has, CUDA, else Apple's MPS, else the CPU.

    Args:
        device: ``None`` for automatic, or a device as above.
        like: Optional tensor or ``torch.nn.Module`` whose device ``None`` stands for.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: If the named device is not available on this machine.

    Taught in notebooks/03_siamese_contrastive.ipynb
    """
    if device is not None:
        return named_device(device)
    if isinstance(like, torch.Tensor):
        return like.device
    if isinstance(like, torch.nn.Module):
        parameter = next(like.parameters(), None)
        if parameter is not None:
            return parameter.device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def named_device(device):
    """The ``torch.device`` a user named, checked to exist on this machine.

    :func:`choose_device` decides what ``None`` means; this handles every other value.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or a ``torch.device``.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: If the name is not a device, or that device is not available here.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'cpu', 'cuda', 'mps', a torch.device or None, got {device!r}") from error
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if device.type in available and not available[device.type]():
        raise ValueError(f"device={device.type!r} is not available on this machine: use 'cpu' or None")
    return device
