"""Whole networks of the students' own classes: the class comes from model.py, a notebook, the
TA's --model-code or torchvision, and the pickle loads only what that code defines.

Hand-ins are made as students make them: a script defining ``class Net`` run as ``__main__``
that calls ``torch.save(net, ...)``, a notebook saved as Jupyter writes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grader.pipeline import grade_one
from grader.rubric import load_rubric
from tests.fixtures.make_submissions import tiny_data
from tests.test_model_code import write_notebook

NET_CLASS = '''import torch
import torch.nn as nn
import torch.nn.functional as F

HIDDEN = 32


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(8 * 8 * 8, HIDDEN)
        self.out = nn.Linear(HIDDEN, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        return self.out(F.relu(self.fc(torch.flatten(x, 1))))
'''
SAVE = '''
if __name__ == "__main__":
    import os, sys
    torch.manual_seed(int(sys.argv[2]))
    net = Net()
    os.makedirs(os.path.dirname(sys.argv[1]) or ".", exist_ok=True)
    if sys.argv[3] == "whole":
        torch.save(net, sys.argv[1])
    else:
        torch.save(net.state_dict(), sys.argv[1])
'''


def run_script(tmp_path: Path, target: Path, *, seed: int = 0, what: str = "whole", code: str = NET_CLASS) -> Path:
    """Run the student's training script as ``__main__``: it saves the network to ``target``."""
    script = tmp_path / f"train_{target.stem}_{what}.py"
    script.write_text(code + SAVE)
    subprocess.run([sys.executable, str(script), str(target), str(seed), what], check=True, cwd=tmp_path)
    return target


@pytest.fixture(scope="module")
def data():
    return tiny_data(30, seed=3)


def logits_of(result):
    return result.evaluation.confusion_matrix, result.evaluation.accuracy, result.evaluation.loss


def test_a_whole_pickled_net_with_its_model_py_grades_like_its_state_dict(tmp_path, data):
    whole = tmp_path / "whole"
    run_script(tmp_path, whole / "models" / "HW2_CNN.pth")
    (whole / "model.py").write_text(NET_CLASS)
    plain = tmp_path / "plain"
    run_script(tmp_path, plain / "weights.pth", what="state_dict")
    (plain / "model.py").write_text(NET_CLASS + "\n\ndef build_model():\n    return Net()\n")
    a, b = grade_one(whole, data=data, sandbox=False), grade_one(plain, data=data, sandbox=False)
    assert a.graded and b.graded, (a.error, b.error)
    assert a.submission.format == "pickled-module"
    assert logits_of(a) == logits_of(b)
    assert any("Net from model.py" in note for note in a.submission.notes)


def test_the_class_comes_from_the_notebook_handed_in(tmp_path, data):
    folder = tmp_path / "hand-in"
    run_script(tmp_path, folder / "HW2_CNN.pth")
    cells = ["%matplotlib inline\n" + NET_CLASS.split("\n\n\n")[0], NET_CLASS.split("\n\n\n")[1],
             "net = Net()\nfor epoch in range(20):\n    pass\ntorch.save(net, 'HW2_CNN.pth')"]
    write_notebook(folder / "HW2.ipynb", cells)
    result = grade_one(folder, data=data, sandbox=True)
    assert result.graded, result.error
    assert any("Net from HW2.ipynb" in note for note in result.submission.notes)


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_bare_checkpoint_takes_code_only_from_the_ta(tmp_path, data):
    checkpoint = run_script(tmp_path, tmp_path / "class" / "bob.pth")
    (tmp_path / "class" / "model.py").write_text(NET_CLASS)  # another student's file beside it
    refused = grade_one(checkpoint, data=data, sandbox=False)
    assert not refused.graded and "no code handed in defines Net" in refused.error
    assert "class Net(nn.Module):" in refused.error and "paste your class definition here" in refused.error
    ta_code = tmp_path / "ta" / "net.py"
    ta_code.parent.mkdir()
    ta_code.write_text(NET_CLASS)
    rubric = load_rubric().with_model_code(ta_code)
    graded = grade_one(checkpoint, data=data, rubric=rubric, sandbox=False)
    assert graded.graded, graded.error
    state = run_script(tmp_path, tmp_path / "class" / "carol.pth", what="state_dict")
    assert "without the code" in grade_one(state, data=data, sandbox=False).error
    (tmp_path / "ta" / "net.py").write_text(NET_CLASS + "\n\ndef build_model():\n    return Net()\n")
    assert grade_one(state, data=data, rubric=rubric, sandbox=False).graded


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_pickled_torchvision_model_grades(tmp_path, data):
    from torchvision.models import squeezenet1_1

    torch.manual_seed(0)
    torch.save(squeezenet1_1(num_classes=10), tmp_path / "squeeze.pth")
    result = grade_one(tmp_path / "squeeze.pth", data=data, sandbox=False)
    assert result.graded, result.error
    assert result.submission.format == "pickled-module"


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_an_alias_is_not_a_class_and_runs_nothing(tmp_path, data):
    folder = tmp_path / "evil"
    run_script(tmp_path, folder / "model.pth")
    marker = tmp_path / "ran"
    # Net is defined as a class, so the pre-check lets the name through; then rebound to a function.
    (folder / "model.py").write_text(NET_CLASS + f"\n\nimport os\nNet = lambda *a: os.system('touch {marker}')\n")
    result = grade_one(folder, data=data, sandbox=False)
    assert not result.graded and "not an nn.Module class" in result.error
    assert not marker.exists()


def test_a_notebook_cell_that_calls_os_system_runs_only_in_the_sandbox(tmp_path, data):
    folder = tmp_path / "hand-in"
    run_script(tmp_path, folder / "model.pth")
    marker = Path("/tmp") / f"grader-test-marker-{tmp_path.name}"
    marker.unlink(missing_ok=True)
    evil = NET_CLASS.replace("class Net(nn.Module):", f"import os\nos.system('touch {marker}')\n\n\nclass Net(nn.Module):\n"
                             f"    os.system('touch {marker}')")
    write_notebook(folder / "HW2.ipynb", [evil])
    result = grade_one(folder, data=data, sandbox=True)
    assert result.graded, result.error
    assert not marker.exists()  # the class body ran, in the sandbox's own /tmp


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_model_code_on_the_command_line_grades_a_class_folder_of_bare_pickles(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main
    from tests.conftest import make_image_tree

    subs = tmp_path / "class"
    for i, name in enumerate(("alice", "bob")):
        run_script(tmp_path, subs / f"{name}.pth", seed=i)
    ta_code = tmp_path / "net.py"
    ta_code.write_text(NET_CLASS)
    tree = make_image_tree(tmp_path / "data", {"train": 1, "test": 2})
    ran = CliRunner().invoke(main, ["batch", str(subs), "--out", str(tmp_path / "out"), "--jobs", "1", "--no-pdf",
                                    "--data", str(tree), "--partial", "--model-code", str(ta_code)])
    assert ran.exit_code == 0, ran.output
    rows = (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    assert [row.split(",")[:2] for row in rows] == [["alice", "graded"], ["bob", "graded"]]
