"""A small airbench-style CIFAR-10 network (trained with `grader train --recipe fast`).

Input: (n, 3, 32, 32), pixels / 255 normalised per channel (see submission.toml [input]).
Output: (n, 10) logits.
"""

import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU(),
    )


def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 24, 2), nn.GELU(),      # 32 -> 31, whitening filters
        block(24, 32), block(32, 64), block(64, 128),   # 31 -> 15 -> 7 -> 3
        nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(128, 10, bias=False), Scale(1 / 9),
    )
