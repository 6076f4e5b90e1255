"""grader.check(net, history=...) from a notebook: the hand-in it saves, its errors, its display,
and (slow) the sandboxed grade it runs, against grade_one on the same network saved by hand."""

from __future__ import annotations

import json
import linecache
import os
import re
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import grader
from grader.errors import GraderError
from grader.notebook import NotebookResult, save_hand_in
from grader.submission import inspect_submission
from tests.conftest import make_image_tree
from tests.test_batch import synthetic_results
from tests.test_runner import TUTORIAL_NET

IMPORTS_CELL = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\nNUM_CLASSES = 10\n"
# The PyTorch tutorial's network in a cell of its own, its output count a constant of the cell above.
NET_CELL = TUTORIAL_NET.partition("\n\n\n")[2].replace("nn.Linear(84, 10)", "nn.Linear(84, NUM_CLASSES)")
TRAIN_CELL = "net = Net()\nfor epoch in range(2):\n    pass  # the training loop: never run by the grader\n"


def run_cells(monkeypatch, *cells: str, keep_inputs: bool = True) -> types.ModuleType:
    """Run ``cells`` as IPython does: each compiled under its own file name registered in linecache,
    in the namespace of a fresh ``__main__`` that holds ``In`` (the session's inputs)."""
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    if keep_inputs:
        main.In = [""]
    for number, cell in enumerate(cells, start=1):
        name = f"/tmp/ipykernel_4242/{number:04d}.py"
        linecache.cache[name] = (len(cell), None, cell.splitlines(keepends=True), name)
        if keep_inputs:
            main.In.append(cell)
        exec(compile(cell, name, "exec"), vars(main))  # noqa: S102 - the test's own cells
    return main


def test_a_stock_network_is_handed_in_pickled_whole(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    folder = save_hand_in(net, tmp_path / "hand-in", history={"loss": [2.1, 1.4], "acc": [30.0, 52.5]})
    assert sorted(p.name for p in folder.iterdir()) == ["history.json", "model.pth"]
    with inspect_submission(folder) as inspected:
        assert inspected.form == "pickled-module" and inspected.classes == ()
        assert inspected.history["train_acc"] == [0.3, 0.525]  # read as a hand-in's history is


def test_a_notebook_class_is_handed_in_with_its_cells_definitions(monkeypatch, tmp_path):
    main = run_cells(monkeypatch, IMPORTS_CELL, NET_CELL, TRAIN_CELL)
    folder = save_hand_in(main.net, tmp_path / "hand-in")
    code = (folder / "model.py").read_text()
    assert "class Net(nn.Module)" in code and "NUM_CLASSES = 10" in code and "import torch.nn as nn" in code
    assert "for epoch" not in code  # training never travels with the hand-in
    with inspect_submission(folder) as inspected:
        assert [b.pickled for b in inspected.classes] == ["__main__.Net"]
        assert inspected.classes[0].origin == "model.py"


def test_a_script_class_without_session_inputs_is_found_through_its_file(monkeypatch, tmp_path):
    main = run_cells(monkeypatch, IMPORTS_CELL + NET_CELL + TRAIN_CELL, keep_inputs=False)
    folder = save_hand_in(main.net, tmp_path / "hand-in")
    with inspect_submission(folder) as inspected:
        assert [b.pickled for b in inspected.classes] == ["__main__.Net"]


def test_a_class_imported_from_a_module_travels_as_that_module(monkeypatch, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mymodels.py").write_text(IMPORTS_CELL + NET_CELL)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.delitem(sys.modules, "mymodels", raising=False)
    from mymodels import Net  # as a notebook cell imports the student's own file

    folder = save_hand_in(Net(), tmp_path / "hand-in")
    assert (folder / "submission.toml").read_text() == 'entry = "mymodels.py:Net"\n'
    with inspect_submission(folder) as inspected:
        assert [(b.pickled, b.origin) for b in inspected.classes] == [("mymodels.Net", "mymodels.py")]


def test_a_class_without_source_says_to_use_model_py(monkeypatch, tmp_path):
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec(compile(IMPORTS_CELL + NET_CELL, "<string>", "exec"), vars(main))  # noqa: S102 - no linecache entry
    with pytest.raises(GraderError) as caught:
        save_hand_in(main.Net(), tmp_path / "hand-in")
    assert "source of class Net was not found" in caught.value.message and "model.py" in caught.value.hint
    assert not (tmp_path / "hand-in" / "model.pth").exists()


def test_a_network_pickle_cannot_hold_says_what_to_change(tmp_path):
    net = nn.Sequential(nn.Linear(2, 2))
    net.score = lambda x: x  # an attribute a student attached: torch.save(net) fails on it too
    with pytest.raises(GraderError, match="cannot be saved whole with torch.save") as caught:
        save_hand_in(net, tmp_path / "hand-in")
    assert "lambdas" in caught.value.hint


def test_history_in_the_shapes_students_keep(tmp_path):
    per_epoch = [{"epoch": 1, "train_loss": torch.tensor(1.5), "test_acc": torch.tensor(0.41)},
                 {"epoch": 2, "train_loss": torch.tensor(0.9), "test_acc": torch.tensor(0.55)}]
    folder = save_hand_in(nn.Linear(2, 2), tmp_path / "a", history=per_epoch)
    assert json.loads((folder / "history.json").read_text())[1]["train_loss"] == pytest.approx(0.9)
    csv = tmp_path / "log.csv"
    csv.write_text("Epoch,Train Loss,Train Acc,Test Acc\n1,1.2,0.5,0.45\n")
    assert (save_hand_in(nn.Linear(2, 2), tmp_path / "b", history=csv) / "history.csv").is_file()
    with pytest.raises(GraderError, match=r"history\['loss'\] holds a value of type object"):
        save_hand_in(nn.Linear(2, 2), tmp_path / "c", history={"loss": [object()]})
    with pytest.raises(GraderError, match="needs the network"):
        save_hand_in({"fc.weight": torch.zeros(2, 2)}, tmp_path / "d")


def test_missing_data_names_the_fix(monkeypatch, tmp_path):
    from tests.test_report import english_words

    monkeypatch.delenv("GRADER_DATA", raising=False)
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(GraderError) as caught:
        grader.check(nn.Linear(2, 2))
    assert "no CIFAR-10 copy" in caught.value.message and "GRADER_DATA" in caught.value.hint
    assert caught.value.message == f"no CIFAR-10 copy: GRADER_DATA is not set and the grader cache " \
                                   f"({tmp_path / 'empty-cache'}) holds no download"  # as it always read
    with pytest.raises(GraderError) as caught:
        grader.check(nn.Linear(2, 2), lang="zh")  # the student's notebook is in Chinese
    assert caught.value.message.startswith("没有 CIFAR-10 数据：没有设置 GRADER_DATA，评分程序的缓存")
    assert caught.value.hint.startswith("请在调用 grader.check 之前设置 `os.environ['GRADER_DATA']")
    text = f"{caught.value.message}\n{caught.value.hint}".replace(str(tmp_path / "empty-cache"), "")
    assert english_words(re.sub(r"`[^`]*`", " ", text), {"CIFAR"}) == set()  # `code` aside


def test_a_partial_copy_names_the_notebooks_fix_in_its_language(tmp_path):
    """A student's own CIFAR-10 copy missing files: the fix is partial=True, not the CLI's --partial."""
    from tests.test_report import english_words

    data = make_image_tree(tmp_path / "tree", {"train": 1, "test": 1})
    with pytest.raises(GraderError) as caught:
        grader.check(nn.Linear(2, 2), data=data)
    assert "the train split has 10 images" in caught.value.message and "CIFAR-10 has 50000" in caught.value.message
    assert "partial=True" in caught.value.hint and "--partial" not in caught.value.hint
    with pytest.raises(GraderError) as caught:
        grader.check(nn.Linear(2, 2), data=data, lang="zh")
    assert "train 部分有 10 张图像" in caught.value.message and "每类 5000 张" in caught.value.message
    assert caught.value.hint.startswith("请补全缺少的文件，或在调用 grader.check 时传入 `partial=True`")
    text = re.sub(r"`[^`]*`", " ", f"{caught.value.message}\n{caught.value.hint}").replace(str(data), "")
    assert english_words(text, {"CIFAR", "train", "airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                "horse", "ship", "truck"}) == set()


def test_missing_sandbox_names_the_fix(monkeypatch, tmp_path):
    import grader.sandbox.bwrap as bwrap
    from tests.test_report import english_words

    monkeypatch.setattr(bwrap.shutil, "which", lambda name: None)
    data = make_image_tree(tmp_path / "tree", {"train": 1, "test": 1})
    with pytest.raises(GraderError) as caught:
        grader.check(nn.Linear(2, 2), data=data, partial=True)
    assert caught.value.message == "bubblewrap (bwrap) is not on PATH; submissions cannot be sandboxed"
    assert caught.value.hint.startswith("grader.check runs your network only in the sandbox")
    assert "apt-get install bubblewrap" in caught.value.hint
    with pytest.raises(GraderError) as caught:
        grader.check(nn.Linear(2, 2), data=data, partial=True, lang="zh")
    assert caught.value.message == "找不到 bubblewrap（bwrap）：无法在沙盒中运行提交的内容"
    assert caught.value.hint.startswith("grader.check 只在沙盒中运行你的网络")
    text = re.sub(r"`[^`]*`", " ", f"{caught.value.message}\n{caught.value.hint}")
    assert english_words(text, {"bubblewrap", "bwrap", "Debian", "Ubuntu", "Docker", "Colab"}) == set()


def test_the_display_shows_the_verdict_the_checks_and_the_report():
    result = NotebookResult.of(synthetic_results("notebook", 0.5), '<html><body><h1>R&amp;D "report"</h1></body></html>')
    assert result.accuracy == 0.5 and result.max_score == 3.0 and 0 < result.score < 3
    assert [c.name for c in result.checks] == [c.name for c in result.result.verdict.checks]
    html = result._repr_html_()
    assert result.verdict_line() in html and "Test accuracy 50.00%" in result.verdict_line()
    assert "test accuracy above 0.7" in html and "fails 0.7 &lt; x &lt;= 1" in html
    assert 'srcdoc="&lt;html&gt;&lt;body&gt;&lt;h1&gt;R&amp;amp;D &#34;report&#34;' in html  # escaped once, into the attribute
    zh = NotebookResult.of(synthetic_results("notebook", 0.83), None, lang="zh")
    assert "测试准确率 83.00%" in repr(zh) and "iframe" not in zh._repr_html_()
    error = NotebookResult.of(synthetic_results("notebook", None, error="model.pth is empty (0 bytes)"), None)
    assert error.accuracy is None and "Not graded: model.pth is empty" in error._repr_html_()


def test_the_zh_display_names_each_check_and_says_integritys_reasons_in_chinese():
    import dataclasses

    from grader.integrity.claims import Mismatch
    from grader.integrity.gate import NOT_BORNE_OUT
    from grader.results import Integrity

    claim = Mismatch("train_loss", 0.05, 1.93, 1.21)
    graded = synthetic_results("notebook", 0.83)
    checks = tuple(dataclasses.replace(c, passed=False, value=None, detail=NOT_BORNE_OUT.format(finding=claim.sentence()))
                   if "loss" in c.metric else c for c in graded.verdict.checks)
    lying = graded.replace(integrity=Integrity(mismatches=(claim,)),
                           verdict=dataclasses.replace(graded.verdict, checks=checks))
    zh = NotebookResult.of(lying, None, lang="zh")._repr_html_()
    assert "该声明与实测不符：训练日志声称最后一轮的训练损失为 0.050" in zh and "not borne out" not in zh
    assert all(c.name_zh in zh and c.name not in zh for c in checks if c.name_zh)
    assert "the claim is not borne out" in NotebookResult.of(lying, None)._repr_html_()


def test_the_zh_display_says_every_checks_detail_in_chinese():
    from tests.test_report import checks_of_every_kind, english_words, visible_text

    result = checks_of_every_kind()
    zh = visible_text(NotebookResult.of(result, None, lang="zh")._repr_html_())
    assert "70.00% 不满足条件 70% < x ≤ 100%" in zh and "fails" not in zh
    assert english_words(zh, {"grader", "check", "history", "json", "submission", "toml", "true", "x"}) == set()
    assert "0.7 fails 0.7 &lt; x &lt;= 1" in NotebookResult.of(result, None)._repr_html_()  # English: results.json's


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_image_tree(tmp_path_factory.mktemp("nb") / "tree", {"train": 1, "test": 3})


@pytest.mark.slow  # two sandboxed grades and a report: ~20 s on a loaded 2-core machine
@pytest.mark.parametrize("kind", ["notebook class", "stock Sequential"])
def test_check_grades_like_the_same_network_handed_in(kind, monkeypatch, tmp_path, tiny_data):
    from grader.data import load_cifar10
    from grader.pipeline import grade_one
    from grader.rubric import load_rubric

    torch.manual_seed(0)
    if kind == "notebook class":
        net = run_cells(monkeypatch, IMPORTS_CELL, NET_CELL, TRAIN_CELL).net
    else:
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    history = {"train_loss": [1.9, 1.2], "train_acc": [0.3, 0.6], "test_acc": [0.28, 0.5]}
    before, files = os.getcwd(), sorted(os.listdir(os.getcwd()))
    result = grader.check(net, history=history, data=tiny_data, partial=True)
    assert os.getcwd() == before and sorted(os.listdir(before)) == files  # nothing written where the student works

    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    if kind == "notebook class":
        (by_hand / "model.py").write_text(IMPORTS_CELL + NET_CELL)
    torch.save(net, by_hand / "model.pth")
    (by_hand / "history.json").write_text(json.dumps(history))
    expected = grade_one(by_hand, data=load_cifar10(tiny_data, expect_full=False), rubric=load_rubric().public())
    assert expected.graded and result.error is None
    assert result.accuracy == pytest.approx(expected.evaluation.accuracy)
    assert result.score == expected.verdict.score and result.max_score == expected.verdict.max_score
    assert [c.passed for c in result.checks] == [c.passed for c in expected.verdict.checks]
    assert result.verdict_line() in result._repr_html_() and "<iframe srcdoc=" in result._repr_html_()
