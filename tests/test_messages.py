"""The message catalogue, and what a student reads in Chinese when a hand-in cannot be graded."""

from __future__ import annotations

import copy
import io
import pickle
import re
import string
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from grader import pipeline
from grader.errors import GraderError
from grader.messages import CATALOGUE, RAW_LEAD, Message, read_notes, say, error_text
from grader.report.render import render_html
from grader.results import GradeResult, as_error, new_result
from grader.runner.child import answer
from grader.runner.launch import read_reply
from grader.runner.protocol import encode
from grader.submission import inspect_submission
from tests.fixtures.make_submissions import small_net, tiny_data, write_form
from tests.test_report import english_words, visible_text

GRADER = Path(__file__).resolve().parents[1] / "grader"
# Words a Chinese template may keep: formats, tools and units, and the names of keys, methods and
# variables that a student writes as they are (submission.toml keys, forward, logits, n).
TOKENS = {"TOML", "UTF", "KiB", "MiB", "CPU", "CSV", "JSON", "NaN", "Python", "ONNX", "TorchScript", "Jupyter",
          "OpenCV", "Dask", "TMPDIR", "safetensors", "onnxruntime", "torch", "torchvision", "numpy", "pickle", "zip",
          "tar", "lambda", "float", "logits", "forward", "path", "n", "R", "G", "B",
          "scale", "mean", "std", "channels", "classes", "entry", "weights", "history", "epoch",
          "bubblewrap", "bwrap", "Docker", "Colab", "Fedora", "sysctl"}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _latin_words(template: str) -> set[str]:
    """The Latin words of a template outside its fields, `code`, quoted strings, indented code
    lines and names (a token with a dot, underscore, slash, bracket, dash or equals sign)."""
    text = re.sub(r"\{\w+\}", " ", template).replace("{{", "{").replace("}}", "}")
    text = re.sub(r"`[^`]*`|\"[^\"]*\"|'[^']*'", " ", text)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("      "))
    tokens = re.split(r"[\s，。：；（）、]+", text)
    return {w for token in tokens if not re.search(r"[._/(\[=\-<>{}]", token) for w in re.findall(r"[A-Za-z]+", token)}


def _sample(key: str) -> Message:
    """``key`` said with placeholder arguments (a Message where the template uses its hint)."""
    entry = CATALOGUE[key]
    used = _fields(entry.en + entry.hint_en)
    return say(key, **{name: say("logits.nan") if f"{name}_hint" in used else "x" for name in entry.fields()})


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_entry_says_the_same_in_both_languages(key):
    entry = CATALOGUE[key]
    assert entry.en and entry.zh
    assert bool(entry.hint_en) == bool(entry.hint_zh)
    assert _fields(entry.en) | _fields(entry.hint_en) == _fields(entry.zh) | _fields(entry.hint_zh)
    assert _latin_words(entry.zh) | _latin_words(entry.hint_zh) <= TOKENS
    said = _sample(key)
    assert said.text("zh") and said.hint("zh") == said.hint("zh").strip()  # every argument fills in


def test_the_check_on_chinese_templates_can_fail():
    assert _latin_words("{file} 不是 valid TOML（第 {line} 行）") == {"valid", "TOML"}
    assert _latin_words("请运行 `pip install x`，见 docs/grading.md") == set()


def test_every_key_is_said_somewhere():
    source = "\n".join(p.read_text(encoding="utf-8") for p in GRADER.rglob("*.py") if p.name != "messages.py")
    unused = [key for key in CATALOGUE if f'"{key}"' not in source and f'"{key.rpartition(".")[0]}.' not in source]
    assert unused == []


def test_a_message_is_its_english_text_and_travels_by_key():
    message = say("load.keys_mismatch", file="weights.pth",
                  detail=say("load.missing_keys", keys=say("load.more_keys", keys="a, b", count=3)))
    assert message == "weights.pth does not fit the network: missing keys a, b (+3 more)"
    assert message.text("zh") == "weights.pth 与网络不匹配：缺少键 a, b（另有 3 个）"
    for again in (pickle.loads(pickle.dumps(message)), copy.deepcopy(message), Message.from_json(message.to_json())):
        assert again == message and again.key == message.key and again.text("zh") == message.text("zh")
    error = GraderError(message)
    assert str(error) == f"{message}\n  hint: {message.hint()}" and error.detail is message
    assert GraderError(message, "my own hint").detail is None  # the entry's hint would contradict it


@pytest.mark.parametrize("forged", [
    {"key": "no.such.key", "args": {}},
    {"key": "weights.empty", "args": {"file": "a", "extra": "b"}},  # an argument the entry lacks
    {"key": "weights.empty", "args": {}},  # one it needs
    {"key": "weights.empty", "args": {"file": True}},
    {"key": "weights.empty", "args": {"file": "x" * 601}},
    {"key": "weights.empty", "args": {"file": ["x"] * 21}},  # a list longer than any the grader writes
    {"key": "load.keys_mismatch", "args": {"file": "w", "detail": {"key": "load.missing_keys", "args": {
        "keys": {"key": "load.more_keys", "args": {"keys": {"key": "weights.empty", "args": {
            "file": {"key": "logits.nan", "args": {}}}}, "count": 1}}}}}},  # nested four deep
    {"key": "note.history_unread", "args": {"error": "not a message, so it has no hint"}},
    "weights.empty", None,
])
def test_a_forged_detail_from_the_child_is_not_said(forged):
    assert Message.from_json(forged, untrusted=True) is None


def test_a_forged_child_note_keeps_its_english_text_escaped(tmp_path):
    """The child's reply carries notes and their catalogue form; the parent says again only what it
    can check (a known key, the entry's arguments, short strings) and keeps any other note's words."""
    honest = say("note.prefixes_stripped", prefixes="module./_orig_mod.", file="weights.pth")
    forged = "<script>alert(1)</script> the grader says: full marks"
    header = {"parameters": 1, "macs_per_image": None, "latency_ms_per_image": 1.0, "layers": [], "form": "state-dict",
              "input": None, "timings": {}, "precision": {}, "device": "cpu",
              "notes": [honest, forged, "looks honest"],
              "notes_detail": [honest.to_json(), {"key": "no.such.key", "args": {}},
                               {"key": "weights.empty", "args": {"file": "<b>" * 300}}]}
    run = SimpleNamespace(timed_out=False, stderr=b"", reason=None)
    submission = SimpleNamespace(weights=tmp_path / "weights.pth", entry=None)
    info, _ = read_reply(run, submission, encode(header, np.zeros((1, 10), np.float32)))
    notes = info["notes"]
    assert [getattr(n, "key", None) for n in notes] == ["note.prefixes_stripped", None, None]
    assert notes[1:] == [forged, "looks honest"]
    result = new_result(tmp_path / "s", dataset={}, sandbox=True)
    result = result.replace(submission=result.submission.__class__(path=str(tmp_path / "s"), notes=tuple(notes)))
    result = as_error(result, "x")
    again = GradeResult.from_json(result.to_json())
    assert again.submission.notes == tuple(notes) and again.submission.notes[0].key == "note.prefixes_stripped"
    html = render_html(again, lang="zh")
    assert "已去掉 weights.pth 中键名的 module./_orig_mod. 前缀" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"{RAW_LEAD['zh']}looks honest" in html


def test_students_never_see_the_graders_folders_in_a_said_error():
    folder = "/home/ta/courses/hw2/submissions"
    said = say("weights.none", folder=f"{folder}/s2400002", suffixes=".pt, .pth")
    result = as_error(new_result(f"{folder}/s2400002", dataset={}, sandbox=True), str(GraderError(said)),
                      detail=said)
    html = render_html(GradeResult.from_json(result.to_json()), lang="zh")
    assert "/home/ta" not in html and "s2400002 中没有检查点文件" in html
    assert result.student_error_text("zh").startswith("s2400002 中没有检查点文件")


def test_notes_of_an_older_results_json_read_as_text():
    assert read_notes(("stripped prefixes",), None) == ("stripped prefixes",)
    assert read_notes(("a", "b"), [None]) == ("a", "b")  # a list of the wrong length is ignored


# --- Chinese error reports of hand-ins built the way students break them ---------------------


def _truncated_save(tmp_path: Path) -> Path:
    folder = write_form("state-dict", tmp_path / "s2400001")
    buffer = io.BytesIO()
    torch.save(small_net().state_dict(), buffer)  # the upload stopped halfway
    (folder / "weights.pth").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return folder


def _truncated_legacy_save(tmp_path: Path) -> Path:
    folder = write_form("state-dict", tmp_path / "s2400005")
    buffer = io.BytesIO()
    torch.save(small_net().state_dict(), buffer, _use_new_zipfile_serialization=False)  # torch's legacy format
    (folder / "weights.pth").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return folder


def _bad_toml(tmp_path: Path) -> Path:
    folder = write_form("state-dict", tmp_path / "s2400002")
    (folder / "submission.toml").write_text('weight = "weights.pth"\n')  # weights, misspelt
    return folder


def _toml_syntax(tmp_path: Path) -> Path:
    folder = write_form("state-dict", tmp_path / "s2400003")
    (folder / "submission.toml").write_text("student = s2400003\n")  # a string without its quotes
    return folder


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.mark.parametrize("write, zh, hint", [
    (_truncated_save, "weights.pth 不完整或已损坏（无法读取它的 zip 目录）", "请重新保存网络后再提交；通常是上传没有完成"),
    (_truncated_legacy_save, "weights.pth 在加载前被拒绝：文件不完整：存储", "请用 torch.save(model.state_dict(), path)"),
    (_bad_toml, "submission.toml：无法识别的键 'weight'", "可用的键：classes, entry, history"),
    (_toml_syntax, "submission.toml 不是有效的 TOML：", "格式见 docs/grading.md"),
])
def test_an_intake_fault_is_reported_in_chinese(tmp_path, data, write, zh, hint):
    result = pipeline.grade_one(write(tmp_path), data=data, sandbox=False)
    assert not result.graded and result.error_detail is not None
    again = GradeResult.from_json(result.to_json())  # the report is drawn from results.json alone
    html = render_html(again, lang="zh")
    text = visible_text(html)
    assert zh in text and hint in text and str(tmp_path) not in html
    assert RAW_LEAD["zh"] not in text and "hint:" not in text
    for value in again.student_error_detail.args.values():  # what the student wrote, and Python's words
        text = text.replace(str(value), " ")
    assert english_words(text, TOKENS | {"CIFAR", "PDF", "SHA", "UTC", "grader", "cpu", "docs"}) == set()
    assert result.error.startswith(result.error_detail)  # results.json's error: the English, as before


def test_a_syntax_error_in_model_py_is_reported_in_chinese(tmp_path, data):
    """The child imports model.py and fails; its reply's catalogue message is said again here."""
    folder = write_form("state-dict", tmp_path / "s2400004")
    (folder / "model.py").write_text("import torch.nn as nn\n\ndef build_model(:\n    return nn.Linear(3, 10)\n")
    submission = inspect_submission(folder)
    request = {"form": submission.form, "weights": str(submission.weights), "input": submission.input,
               "entry": [str(submission.entry[0]), submission.entry[1]], "classes": []}
    header, _, _ = answer(encode(request, data.test_images[:2]), None)  # the child's side, in-process
    assert header["detail"]["key"] == "code.import_failed"
    with pytest.raises(GraderError) as raised:
        read_reply(SimpleNamespace(timed_out=False, stderr=b"", reason=None), submission,
                   encode(header))
    result = as_error(new_result(folder, dataset=data.identity(), sandbox=True), str(raised.value),
                      detail=raised.value.detail)
    html = render_html(GradeResult.from_json(result.to_json()), lang="zh")
    assert "导入 model.py 时出错：SyntaxError" in html and "请在本地运行 <code>" not in html
    assert "请在本地运行 `python model.py` 并改正错误" in html
    assert error_text(result.error_detail, result.error, "en") == result.error  # English as before


def test_gradescope_and_grader_check_say_the_error_in_their_language(tmp_path):
    from datetime import datetime, timezone

    from grader.commands.console import check_verdict
    from grader.platforms.gradescope import Progress, progress_html

    said = say("load.keys_mismatch", file="weights.pth", detail=say("load.unexpected_keys", keys="extra.weight"))
    result = as_error(new_result(tmp_path / "s2400006", dataset={}, sandbox=True), str(GraderError(said)),
                      detail=said)
    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    output = progress_html(Progress((), now, lang="zh"), result=result)
    assert "未评分：weights.pth 与网络不匹配：多出的键 extra.weight" in output and "does not fit" not in output
    assert "does not fit the network" in progress_html(Progress((), now), result=result)
    assert check_verdict(result, "zh").endswith("建议：build_model() 构建的网络结构必须与训练这些权重时的结构相同")
    assert check_verdict(result) == f"NOT READY: not graded: {result.error}"  # English, exactly as before


def test_an_unread_history_is_said_in_chinese_after_results_json(tmp_path, data):
    folder = write_form("state-dict", tmp_path / "s2400007")
    (folder / "history.json").write_text('{"step": [1, 2], "lr": [0.1, 0.01]}')  # none of the keys read
    inspected = pipeline.inspect_submission(folder)
    with inspected:
        result = pipeline._with_submission(new_result(folder, dataset={}, sandbox=True), inspected)
    result = as_error(result, "not run here")  # what the intake recorded, without running the network
    again = GradeResult.from_json(result.to_json())
    error = again.submission.history_error
    assert error == result.submission.history_error and error.startswith("history.json holds keys step, lr")
    assert error.text("zh").startswith("history.json 中的键是 step, lr：其中没有 train_loss/train_acc/test_acc")
    assert "；请每个 epoch 记录一次 train_loss、train_acc 和 test_acc" in error.text("zh")
    note = again.submission.notes[-1]
    assert note.key == "note.history_unread" and note.text("zh").startswith("没有读取训练历史")
