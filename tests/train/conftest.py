"""Fixtures of the grader.train tests: the tiny image tree, and one torch thread per module."""

from __future__ import annotations

import os

import pytest
import torch

from grader.data import load_cifar10
from tests.train.tiny import make_tiny_tree


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny batches gain nothing from a second thread, and two pytest workers on two cores would
    each spin two threads against the other's (a step then takes 10x longer)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tree(tmp_path_factory):
    """make_tiny_tree's images (read only)."""
    return make_tiny_tree(tmp_path_factory.mktemp("data") / "tree")


@pytest.fixture(scope="session")
def data(tree, tmp_path_factory):
    """``tree`` loaded, converted into the session's cache (set up before tests/conftest.py's
    per-test cache, so it names the same folder itself)."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("GRADER_CACHE"):
            patch.setenv("GRADER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return load_cifar10(tree, expect_full=False)
