"""grader.integrity.memorisation: perturbed copies, and the flag a memorised test set raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.integrity.memorisation import memorisation_flag, perturb


def test_memorisation_flags_a_lookup_table_not_a_robust_classifier():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 200)
    table = {img.tobytes(): y for img, y in zip(images, labels)}  # memorised test set

    def lookup(batch):
        return np.array([table.get(img.tobytes(), 0) for img in batch])

    copies = perturb(images, seed=1)
    assert copies.shape == images.shape and copies.dtype == np.uint8
    assert np.array_equal(copies, perturb(images, seed=1))
    assert all(np.any(copy != image) for copy, image in zip(copies, images))  # no copy is exact
    clean, perturbed = (lookup(images) == labels).mean(), (lookup(copies) == labels).mean()
    assert "memorisation" in memorisation_flag(clean, perturbed)
    assert memorisation_flag(0.93, 0.90) is None  # a normal network keeps its accuracy
    assert memorisation_flag(0.30, 0.05) is None  # too weak for a drop to mean anything
    with pytest.raises(ValueError):
        memorisation_flag(93.0, 90.0)


def test_the_projects_own_whitened_network_is_not_flagged(shared_copy):
    """The fast recipe's network (a frozen whitening layer, which amplifies pixel noise) keeps
    its accuracy on the perturbed copies: the probe must not accuse an honest network."""
    import importlib.util

    import torch

    from grader.data import load_cifar10
    from grader.runner.network import to_input

    folder = Path(__file__).resolve().parents[1] / "submissions" / "s2400002"
    spec = importlib.util.spec_from_file_location("s2400002_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build_model().eval()
    net.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    net_input = {"scale": 1.0, "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616]}
    data = load_cifar10(shared_copy)
    pick = np.random.default_rng(0).choice(len(data.test_labels), 1000, replace=False)  # all classes
    images, labels = data.test_images[pick], data.test_labels[pick]

    def accuracy(batch: np.ndarray) -> float:
        with torch.inference_mode():
            return float((net(to_input(batch, net_input)).argmax(1).numpy() == labels).mean())

    clean, perturbed = accuracy(images), accuracy(perturb(images, seed=0))
    assert clean > 0.75
    assert clean - perturbed < 0.05, (clean, perturbed)
    assert memorisation_flag(clean, perturbed) is None
