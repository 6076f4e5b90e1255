"""A submission that forges the child's reply: its malformed facts are the submission's error,
graded and written like any other (exit 2), never a crash of grader (exit 3)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.errors import GraderError
from grader.pipeline import grade_one
from grader.runner.launch import read_reply
from grader.runner.protocol import encode
from tests.fixtures.make_submissions import tiny_data, write_form

# model.py's build_model writes a reply frame of its own to every open descriptor, then exits the
# child before grader's real reply: its header holds a NaN (Python's json writes NaN by default).
FORGER = '''
import io, json, os, struct
import numpy as np
from torch import nn

def build_model():
    header = json.dumps({"parameters": float("nan"), "macs_per_image": 1, "latency_ms_per_image": 0.1,
                         "layers": [], "form": "state-dict", "input": None, "notes": [], "timings": {},
                         "precision": {}, "device": "cpu"}).encode()
    logits = io.BytesIO()
    np.save(logits, np.eye(10, dtype=np.float32)[np.arange({n}) % 10], allow_pickle=False)
    frame = b"GRDR1\\n" + struct.pack("<I", len(header)) + header + logits.getvalue()
    for fd in range(3, 64):
        try:
            os.write(fd, frame)
        except OSError:
            pass
    os._exit(0)
'''


@pytest.mark.parametrize("sandbox", [False, True])
def test_a_forged_reply_with_a_nan_is_the_submissions_error(tmp_path, sandbox):
    data = tiny_data(20)
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text(FORGER.replace("{n}", str(len(data.test_images) * 2)))
    result = grade_one(folder, data=data, sandbox=sandbox)
    assert not result.graded, result.error
    assert "reply" in result.error and "hint:" in result.error


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_the_cli_writes_results_and_exits_2_for_a_forged_reply(tmp_path, monkeypatch):
    import grader.commands.grading as grading_commands

    data = tiny_data(20)
    monkeypatch.setattr(grading_commands, "load_cifar10", lambda _path, **_options: data)
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text(FORGER.replace("{n}", str(len(data.test_images) * 2)))
    ran = CliRunner().invoke(main, ["grade", str(folder), "--out", str(tmp_path / "out"), "--no-sandbox"])
    assert ran.exit_code == 2, ran.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["status"] == "error"


HONEST_FACTS = {"parameters": 1, "macs_per_image": None, "latency_ms_per_image": 1.0, "layers": [],
                "form": "state-dict", "input": None, "notes": [], "timings": {}, "precision": {}, "device": "cpu"}


@pytest.mark.parametrize("frame, english, zh", [
    (lambda: encode({**HONEST_FACTS, "parameters": -1}, np.zeros((1, 10), np.float32)),
     "weights.pth: the grading child's reply is malformed (parameters is negative)",
     "weights.pth：评分子进程的回复格式不对（parameters 是负数）"),
    (lambda: encode({**HONEST_FACTS, "blocks": {"net": "x" * 81}}, np.zeros((1, 10), np.float32)),
     "weights.pth: the grading child's reply is malformed (blocks holds a class name that is not text of at most 80 "
     "characters)", "weights.pth：评分子进程的回复格式不对（`blocks` 中有一个类名不是不超过 80 个字符的文本）"),
    (lambda: b"GRDR1\n\x00",
     "weights.pth: the grading child process failed: it sent no valid reply (the frame is truncated)",
     "weights.pth：评分子进程失败：它没有发回有效的回复（数据帧不完整）"),
])
def test_a_forged_or_broken_reply_is_said_in_the_students_language(tmp_path, frame, english, zh):
    """What the submission's code did to the reply is said in the report's language, its English as it was."""
    from tests.test_report import english_words

    run = SimpleNamespace(timed_out=False, stderr=b"", reason=None)
    with pytest.raises(GraderError) as raised:
        read_reply(run, SimpleNamespace(weights=tmp_path / "weights.pth", entry=None), frame())
    said = raised.value.detail
    assert said == english and said.text("zh") == zh
    assert english_words(re.sub(r"`[^`]*`", " ", f"{said.text('zh')}\n{said.hint('zh')}"), {"parameters"}) == set()
