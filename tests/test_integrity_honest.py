"""Honest hand-ins must never be flagged: the project's example submissions on the real data,
and a network from outside this project, handed in as students hand in pretrained CIFAR ResNets:
a ``model.py`` in the style of the public CIFAR ResNet repositories (BasicBlocks with a padding
shortcut, a ``linear`` head), expecting ImageNet-normalised inputs, saved in torch's legacy format as ``{'state_dict': <DataParallel keys>, 'best_prec1': ...}``, with its own
normalisation declared in ``submission.toml``. It must be graded as it is, with none of the
integrity flags; declared wrongly, it must get the diagnosis that restores it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from grader.pipeline import grade_one
from tests.test_integrity_cheats import CENTRES, INTEGRITY_FLAGS, data  # noqa: F401  (a module-scoped fixture)

MODEL_PY = '''
import torch.nn as nn
import torch.nn.functional as F


class PadShortcut(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.extra = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra, self.extra))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = PadShortcut(cout) if stride != 1 or cin != cout else nn.Sequential()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks=1, width=8, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            layers = [BasicBlock(cin, cout, 1 if i == 0 else 2)] + [BasicBlock(cout, cout) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet8():
    return ResNet(blocks=1)
'''

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
IMAGENET_TOML = f"[input]\nscale = 1.0\nmean = {IMAGENET['mean']}\nstd = {IMAGENET['std']}\n"


def the_students_network(folder: Path) -> torch.nn.Module:
    """The student's ``resnet8()`` from their model.py, with the weights a trained network reaches
    on the generated data (nearest class colour, read from the normalised red channel), set
    directly instead of by hours of CPU: the stem keeps the red channel (shifted positive for the
    ReLU), every block passes its shortcut through (its last BatchNorm scaled to 0), and the head
    compares the pooled red level with each class's, in ImageNet-normalised units."""
    spec = importlib.util.spec_from_file_location("thirdparty_model", folder / "model.py")
    code = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = code
    spec.loader.exec_module(code)
    net = code.resnet8().eval()
    shift = 3.0  # normalised red levels lie in -2.2..2.3
    centres = (CENTRES - IMAGENET["mean"][0]) / IMAGENET["std"][0] + shift
    with torch.no_grad():
        net.conv1.weight.zero_()
        net.conv1.weight[0, 0, 1, 1] = 1.0
        net.bn1.bias.zero_()
        net.bn1.bias[0] = shift
        for block in (*net.layer1, *net.layer2, *net.layer3):
            block.bn2.weight.zero_()
            block.bn2.bias.zero_()
        red = sum(stage[0].shortcut.extra for stage in (net.layer2, net.layer3))  # padded in front twice
        net.linear.weight.zero_()
        net.linear.weight[:, red] = 50 * 2 * centres
        net.linear.bias.copy_(-50 * centres**2)
    return net


def honest_history(net: torch.nn.Module, data) -> dict:
    """What the student's log says: the network's own accuracy, a little worse in train mode."""
    mean, std = (torch.tensor(IMAGENET[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        x = (torch.from_numpy(data.test_images).permute(0, 3, 1, 2).float() / 255 - mean) / std
        test_acc = float((net(x).argmax(1).numpy() == data.test_labels).mean())
    return {"train_loss": [1.1, 0.3], "train_acc": [0.7, test_acc - 0.02], "test_acc": [0.8, test_acc]}


@pytest.fixture(scope="module")
def resnet_folder(tmp_path_factory, data) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("thirdparty") / "s2409901"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL_PY)
    net = the_students_network(folder)
    wrapped = torch.nn.DataParallel(net)  # what the repositories' trainers save: keys under "module."
    torch.save({"state_dict": wrapped.state_dict(), "best_prec1": 99.0}, folder / "model_best.pth.tar",
               _use_new_zipfile_serialization=False)
    history = honest_history(net, data)
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "submission.toml").write_text('entry = "model.py:resnet8"\nweights = "model_best.pth.tar"\n'
                                            'history = "history.json"\n\n' + IMAGENET_TOML)
    return folder


def test_a_third_party_resnet_with_its_own_normalisation_raises_no_flag(resnet_folder, data):  # noqa: F811
    result = grade_one(resnet_folder, data=data, sandbox=False)
    assert result.graded, result.error
    assert result.evaluation.accuracy > 0.9 and result.submission.format == "state-dict"
    assert not INTEGRITY_FLAGS & set(result.flags), result.flags
    assert not result.integrity.diagnosis
    assert any("module." in note for note in result.submission.notes)  # DataParallel's prefix, stripped


@pytest.mark.slow  # a second whole grade; a Normalize network's diagnosis is tested in test_integrity_cheats
def test_the_same_resnet_declared_as_plain_pixels_gets_its_normalisation_back(resnet_folder, data, tmp_path):  # noqa: F811
    """The student forgot ``[input]``: scored as 0..1 pixels it falls apart, and the diagnosis
    names ImageNet's mean and std as the fix, or as scoring the same as the fix it names (this
    network reads only the red channel, where CIFAR-10's mean and std are close to ImageNet's)."""
    import shutil

    bare = tmp_path / "s2409901"
    shutil.copytree(resnet_folder, bare)
    toml = (bare / "submission.toml").read_text()
    (bare / "submission.toml").write_text(toml[:toml.index("[input]")])
    result = grade_one(bare, data=data, sandbox=False)
    assert result.evaluation.accuracy < 0.5 and "input-convention" in result.flags
    best = result.integrity.diagnosis[0]
    assert best.accuracy > 0.9
    assert "mean = [0.485, 0.456, 0.406]" in best.fix or "ImageNet mean and std" in best.also, best


@pytest.fixture(scope="module")
def real_data(shared_copy):
    from grader.data import load_cifar10

    return load_cifar10(shared_copy)


@pytest.mark.slow  # five whole grades on the real data; run with make test-all
@pytest.mark.parametrize("name", ["s2400001.pth", "s2400002", "s2400004", "s2400005.zip", "s2400006"])
def test_the_example_submissions_raise_no_integrity_flag(name, real_data):
    """Every gradable example (the homework network, the fast recipe, a pickled own class, a zip,
    a continued run with its log) graded as a TA grades it: sandboxed, on the shared copy."""
    result = grade_one(Path(__file__).resolve().parents[1] / "submissions" / name, data=real_data)
    assert result.graded, result.error
    assert not INTEGRITY_FLAGS & set(result.flags), (name, result.flags)
    assert not result.integrity.diagnosis and result.integrity.training.count == 1000
