"""A submission that forges the child's reply: its malformed facts are the submission's error,
graded and written like any other (exit 2), never a crash of grader (exit 3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.pipeline import grade_one
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
