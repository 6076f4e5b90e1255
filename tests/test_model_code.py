"""Students' own network code read as text: the classes it defines, a notebook's definitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.submission.model_code import (ModelCode, bind_classes, defined_classes, notebook_model_code,
                                          notebook_source)


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook as Jupyter saves one: code cells as lists of lines, with outputs and metadata."""
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
                "cells": [{"cell_type": "code", "execution_count": i, "metadata": {}, "outputs": [],
                           "source": cell.splitlines(keepends=True)} for i, cell in enumerate(cells)]
                + [{"cell_type": "markdown", "metadata": {}, "source": ["# Results\n"]}]}
    path.write_text(json.dumps(notebook, ensure_ascii=False), encoding="utf-8")
    return path


HOMEWORK_CELLS = [
    "%matplotlib inline\n!pip install torchsummary\nimport torch\nimport torch.nn as nn\nfrom google.colab import drive",
    "NUM_CLASSES = 10\nHIDDEN = NUM_CLASSES * 40\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n"
    "trainset = torchvision.datasets.CIFAR10(root='./data', download=True)",
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(3 * 32 * 32, HIDDEN)\n        self.out = nn.Linear(HIDDEN, NUM_CLASSES)\n"
    "    def forward(self, x):\n        return self.out(torch.relu(self.fc(x.flatten(1))))",
    "net = Net().to(device)\nfor epoch in range(20):\n    train(net)\ntorch.save(net, 'models/HW2_CNN.pth')",
    "%%time\nthis is not python at all",
    "def train(net):\n    pass",
]


def test_a_notebook_keeps_definitions_and_what_they_read_never_training_or_io(tmp_path):
    source = notebook_source(write_notebook(tmp_path / "HW2.ipynb", HOMEWORK_CELLS))
    assert "class Net(nn.Module)" in source and "def train(net)" in source
    assert "NUM_CLASSES = 10" in source and "HIDDEN = NUM_CLASSES * 40" in source  # read, transitively
    assert "CIFAR10" not in source and "for epoch" not in source and "torch.save" not in source
    assert "matplotlib" not in source and "pip install" not in source and "not python" not in source
    assert "except ImportError" in source  # google.colab is missing in the sandbox: optional
    namespace: dict = {}
    exec(compile(source, "HW2.py", "exec"), namespace)  # the module the child imports
    assert namespace["Net"]().out.out_features == 10


def test_notebook_model_code_is_a_module_the_child_can_import(tmp_path):
    (tmp_path / "scratch").mkdir()
    code = notebook_model_code(write_notebook(tmp_path / "作业2.ipynb", HOMEWORK_CELLS), tmp_path / "scratch")
    assert code.classes == ("Net",) and code.module.isidentifier() and code.path.is_file()
    assert code.origin == "作业2.ipynb"


@pytest.mark.parametrize("text, words", [("{not json", "not a Jupyter notebook"), ('{"cells": 3}', "not a Jupyter")])
def test_a_broken_notebook_is_named(tmp_path, text, words):
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    with pytest.raises(GraderError, match=words):
        notebook_source(path)


def test_bindings_follow_the_resolution_order_and_refuse_the_rest(tmp_path):
    assert defined_classes("class A:\n    pass\nclass B(A):\n    pass\nA = 3\ndef f():\n    class C: pass") == ("A", "B")
    model = ModelCode(tmp_path / "model.py", "model", "model.py", ("Net", "Block"))
    notebook = ModelCode(tmp_path / "hw.py", "hw", "hw.ipynb", ("Net", "Other"))
    bindings, unresolved = bind_classes(
        ["__main__.Net", "model.Block", "__main__.Other", "torchvision.models.alexnet.AlexNet", "os.system",
         "hw.Block", "__main__.Missing"], [model, notebook])
    found = {b.pickled: (b.origin, b.module, b.name) for b in bindings}
    assert found["__main__.Net"] == ("model.py", "model", "Net")  # model.py first
    assert found["model.Block"] == ("model.py", "model", "Block")
    assert found["__main__.Other"] == ("hw.ipynb", "hw", "Other")
    assert found["torchvision.models.alexnet.AlexNet"] == ("torchvision", "torchvision.models.alexnet", "AlexNet")
    assert unresolved == ["os.system", "hw.Block", "__main__.Missing"]  # hw defines no Block
