"""GitHub Classroom runner results: the format against the reporter's schema, and `grader classroom`."""

from __future__ import annotations

import base64
import json

from click.testing import CliRunner

from grader.cli import main
from grader.platforms.classroom import classroom_result, output_line
from tests.conftest import make_image_tree
from tests.test_batch import synthetic_results

STATUSES = ("pass", "fail", "error")


def validate_classroom(obj) -> list[str]:
    """Problems of ``obj`` as an autograding runner result ([] = valid)."""
    problems = [f"unknown key {k!r}" for k in sorted(set(obj) - {"version", "status", "max_score", "tests"})]
    if obj.get("version") != 1:
        problems.append("version must be 1")
    if obj.get("status") not in STATUSES:
        problems.append(f"status must be one of {STATUSES}")
    if not isinstance(obj.get("max_score"), (int, float)) or obj["max_score"] < 0:
        problems.append("max_score must be a number >= 0")
    for i, test in enumerate(obj.get("tests", [])):
        if set(test) != {"name", "status", "score", "max_score", "message"}:
            problems.append(f"tests[{i}] keys must be name, status, score, max_score, message")
        elif test["status"] not in STATUSES or not 0 <= test["score"] <= test["max_score"]:
            problems.append(f"tests[{i}] needs a known status and 0 <= score <= max_score")
    if sum(t.get("max_score", 0) for t in obj.get("tests", [])) != obj.get("max_score"):
        problems.append("the tests' max_score must add up to max_score")
    return problems


def decode(line: str) -> dict:
    name, _, blob = line.strip().partition("=")
    assert name == "result" and "\n" not in blob
    return json.loads(base64.b64decode(blob, validate=True))


def test_graded_result_reports_each_check():
    result = synthetic_results("alice", 0.83)
    obj = classroom_result(result)
    assert validate_classroom(obj) == []
    assert obj["status"] == "pass" and obj["max_score"] == result.verdict.max_score
    assert [t["name"] for t in obj["tests"]] == [c.name for c in result.verdict.checks]
    assert decode(output_line(obj)) == obj


def test_failed_check_fails_the_run():
    obj = classroom_result(synthetic_results("carol", 0.5))
    assert validate_classroom(obj) == [] and obj["status"] == "fail"
    failed = [t for t in obj["tests"] if t["status"] == "fail"]
    assert failed and all(t["score"] == 0 for t in failed) and "needs" in failed[0]["message"]


def test_ungradable_hand_in_is_an_error_with_the_reason():
    obj = classroom_result(synthetic_results("bob", None, error="model.pth is empty (0 bytes)"))
    assert validate_classroom(obj) == [] and obj["status"] == "error"
    assert all(t["status"] == "error" and t["score"] == 0 for t in obj["tests"])
    assert "model.pth is empty" in obj["tests"][0]["message"]


def test_classroom_writes_the_step_output_and_exits_2_when_ungradable(tmp_path):
    data = make_image_tree(tmp_path / "tree", {"train": 1, "test": 2})
    broken = tmp_path / "model.pth"
    broken.write_bytes(b"not a checkpoint at all")
    github_output = tmp_path / "github_output"
    github_output.write_text("earlier=1\n")  # other steps' outputs are kept
    result = CliRunner(env={"GITHUB_OUTPUT": str(github_output)}).invoke(
        main, ["classroom", str(broken), "--out", str(tmp_path / "out"), "--data", str(data), "--partial",
               "--no-sandbox"])
    assert result.exit_code == 2, result.output
    lines = github_output.read_text().splitlines()
    assert lines[0] == "earlier=1" and len(lines) == 2
    obj = decode(lines[1])
    assert validate_classroom(obj) == [] and obj["status"] == "error"
    assert (tmp_path / "out" / "results.json").is_file()


def test_a_chinese_result_names_each_check_in_chinese():
    from tests.test_report import checks_of_every_kind, english_words

    graded = checks_of_every_kind()
    obj = classroom_result(graded, lang="zh")
    assert validate_classroom(obj) == []
    assert obj["tests"][0]["name"] == "测试准确率高于 70%"
    allowed = {"CIFAR", "history", "json", "submission", "toml", "true", "x"}
    assert english_words("\n".join(f"{t['name']}\n{t['message']}" for t in obj["tests"]), allowed) == set()
    assert [t["score"] for t in obj["tests"]] == [t["score"] for t in classroom_result(graded)["tests"]]
