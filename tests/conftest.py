"""Shared fixtures: small generated CIFAR-10-shaped data, and the shared real copy when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from grader.data import CLASSES

SHARED_COPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session converts into its own cache, never the user's."""
    if not os.environ.get("GRADER_CACHE"):
        monkeypatch.setenv("GRADER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def make_image_tree(root: Path, per_class: dict[str, int] | None = None, *, seed: int = 0,
                    fmt: str = "png") -> Path:
    """Write a tiny ``train/<class>/``, ``test/<class>/`` tree of random 32x32 RGB images."""
    from PIL import Image

    per_class = per_class or {"train": 3, "test": 2}
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.{fmt}")
    return root


@pytest.fixture
def image_tree(tmp_path) -> Path:
    return make_image_tree(tmp_path / "tree")


@pytest.fixture(scope="session")
def shared_copy() -> Path:
    """The real CIFAR-10 JPEG copy: $GRADER_DATA if set, else ../shared/data beside the repo."""
    path = Path(os.environ.get("GRADER_DATA") or SHARED_COPY)
    if not path.exists():
        pytest.skip(f"the shared CIFAR-10 copy is absent ({path}); set GRADER_DATA to run this")
    return path


def pytest_configure(config):
    """One torch thread per xdist worker: two workers on two cores, each spinning two threads
    against the other's, make a tiny step ten times slower."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
