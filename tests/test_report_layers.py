"""The report's condensed layer table, on layer lists as grader.runner.describe writes them."""

from __future__ import annotations

import pytest
import torch.nn as nn

from grader.report.layers import condense
from grader.runner.describe import describe_model
from grader.runner.loaders import HOMEWORK_INPUT
from grader.runner.network import Loaded


def layers_of(net: nn.Module) -> list[dict]:
    net = net.eval()
    return describe_model(Loaded(net, net, "state-dict", dict(HOMEWORK_INPUT)))["layers"]


class Block(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Stages(nn.Module):
    """A stem, a stage of three identical blocks, one wider block, a pooled linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stage = nn.Sequential(Block(8, 8), Block(8, 8), Block(8, 8), Block(8, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.pool(self.stage(self.stem(x))).flatten(1))


def test_identical_sibling_blocks_share_one_row():
    layers = layers_of(Stages())
    rows = condense(layers)
    assert [r.names for r in rows] == ["stem", "stage.0–2", "stage.3", "pool", "fc"]
    repeated = rows[1]
    assert repeated.types == "3 × [Conv2d → BatchNorm2d → ReLU]" and repeated.layers == 9
    assert repeated.parameters == 3 * (8 * 8 * 9 + 8 + 16) and repeated.output_shape == (8, 32, 32)
    assert rows[2].types == "Conv2d → BatchNorm2d → ReLU" and rows[2].output_shape == (16, 32, 32)
    assert sum(r.parameters for r in rows) == sum(layer["parameters"] for layer in layers)
    assert sum(r.layers for r in rows) == len(layers)


def test_a_flat_sequential_condenses_into_stages():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 15 * 15, 10))
    rows = condense(layers_of(net))
    assert [(r.names, r.types) for r in rows] == [("0–4", "Conv2d → ReLU ×2 → MaxPool2d → Flatten"),
                                                   ("5", "Linear")]


@pytest.mark.parametrize("layers", [[], [{"name": "0", "type": "Conv2d", "output_shape": None, "parameters": None}]])
def test_layers_without_shapes_or_counts_still_condense(layers):
    """TorchScript layers carry no output shapes; a hand-edited results.json may lack counts."""
    rows = condense(layers)
    assert len(rows) == len(layers) and all(r.output_shape is None and r.parameters == 0 for r in rows)
