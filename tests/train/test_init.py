"""grader.train.init: the recipe's network, initialised from the seed and whitened from the data."""

from __future__ import annotations

from dataclasses import replace

import torch

from grader.train.init import new_model
from tests.train.tiny import TINY_FAST


def test_whitening_sample_is_spread_over_the_classes(monkeypatch):
    import grader.train.init as init

    seen = {}
    monkeypatch.setattr(init, "set_whitening", lambda net, x, eps: seen.setdefault("x", x))
    # stored class by class, as an image tree is: image i of class c has every pixel = c
    train_x = torch.arange(10, dtype=torch.uint8).repeat_interleave(50).view(500, 1, 1, 1).expand(500, 3, 32, 32)
    new_model(replace(TINY_FAST, whiten_samples=40, input_mean=(0.0,) * 3, input_std=(1.0,) * 3),
              train_x, seed=0, device=torch.device("cpu"))
    classes = (seen["x"][:, 0, 0, 0] * 255).round().unique()
    assert len(seen["x"]) == 40 and len(classes) >= 8  # not the first 40 images, all of class 0
