"""Shared fixtures: the smoke dataset, built once by `make test` before pytest runs."""

import pytest

from mlcourse.data import build_dataset, load_dataset


@pytest.fixture(scope="session")
def smoke():
    """The smoke dataset (built here if `make test` has not built it yet)."""
    build_dataset("smoke", quiet=True)
    return load_dataset("smoke")
