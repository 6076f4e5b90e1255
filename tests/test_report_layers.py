"""The report's condensed layer table, on layer lists as grader.runner.describe writes them."""

from __future__ import annotations

import pytest
import torch.nn as nn

from grader.report.layers import CLASS_NAME_CHARS, condense
from grader.runner.describe import describe_model
from grader.runner.loaders import HOMEWORK_INPUT
from grader.runner.network import Loaded
from tests.fixtures.make_submissions import RESNET20_PY


def described(net: nn.Module) -> dict:
    net = net.eval()
    return describe_model(Loaded(net, net, "state-dict", dict(HOMEWORK_INPUT)))


def layers_of(net: nn.Module) -> list[dict]:
    return described(net)["layers"]


def resnet20() -> nn.Module:
    namespace: dict = {}
    exec(compile(RESNET20_PY, "model.py", "exec"), namespace)
    return namespace["ResNet20"]()


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


def test_a_resnet_names_its_repeated_blocks_by_their_class():
    info = described(resnet20())
    rows = condense(info["layers"], info["blocks"])
    assert [(r.names, r.types) for r in rows] == [
        ("conv1–bn1", "Conv2d → BatchNorm2d"), ("layer1.0–2", "3 × BasicBlock"), ("layer2.0", "BasicBlock"),
        ("layer2.1–2", "2 × BasicBlock"), ("layer3.0", "BasicBlock"), ("layer3.1–2", "2 × BasicBlock"),
        ("pool", "AdaptiveAvgPool2d"), ("linear", "Linear")]
    assert rows[1].parameters == 3 * (2 * 16 * 16 * 9 + 2 * 32) and rows[1].layers == 15
    assert sum(r.parameters for r in rows) == sum(layer["parameters"] for layer in info["layers"])
    # results written before blocks were recorded: the same rows, named by their layers
    assert [r.types for r in condense(info["layers"])][1] == "3 × [Conv2d → BatchNorm2d → Conv2d → BatchNorm2d]"


def test_blocks_that_are_plain_sequentials_keep_their_layer_types():
    net = nn.Sequential(*(nn.Sequential(nn.Conv2d(8 if i else 3, 8, 3, padding=1), nn.ReLU()) for i in range(3)),
                        nn.Flatten(), nn.Linear(8 * 32 * 32, 10))
    info = described(net)
    assert info["blocks"] == {"0": "Sequential", "1": "Sequential", "2": "Sequential"}
    rows = condense(info["layers"], info["blocks"])
    assert [(r.names, r.types) for r in rows] == [("0", "Conv2d → ReLU"), ("1–2", "2 × [Conv2d → ReLU]"),
                                                   ("3", "Flatten"), ("4", "Linear")]


def test_own_classes_name_blocks_and_part_identical_siblings():
    """Sibling blocks with the same layers but another class are two rows; a class name is the
    student's text: cut to a bound, on one line; a name that is not text is not used."""
    layers = layers_of(Stages())
    rows = condense(layers, {"stage": "Sequential", "stage.0": "Block", "stage.1": "Block", "stage.2": "Other\nBlock",
                             "stage.3": "B" * (CLASS_NAME_CHARS + 20)})
    assert [(r.names, r.types) for r in rows][1:4] == [
        ("stage.0–1", "2 × Block"), ("stage.2", "Other Block"), ("stage.3", "B" * (CLASS_NAME_CHARS - 1) + "…")]
    rows = condense(layers, {"stage.0": 7, "stage.1": None, "stage.2": ["Block"]})
    assert rows[1].names == "stage.0–2" and rows[1].types == "3 × [Conv2d → BatchNorm2d → ReLU]"
