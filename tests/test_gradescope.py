"""Gradescope results: the format, its validator, and `grader gradescope` as an autograder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.platforms.gradescope import gradescope_results
from tests.gradescope_format import validate_gradescope
from tests.test_batch import synthetic_results


def test_graded_result_maps_every_check_to_a_test():
    results = synthetic_results("alice", 0.83)
    public = {c.name: c.name != "final training loss below 0.5" for c in results.verdict.checks}
    out = gradescope_results(results, public=public)
    assert validate_gradescope(out) == []
    assert out["score"] == 3.0 and out["output_format"] == "text"
    assert [t["name"] for t in out["tests"]] == [c.name for c in results.verdict.checks]
    assert {t["status"] for t in out["tests"]} == {"passed"}
    visibility = {t["name"]: t["visibility"] for t in out["tests"]}
    assert visibility["final training loss below 0.5"] == "after_published"
    assert visibility["test accuracy above 0.7"] == "visible"
    assert "83.00%" in out["output"]
    del public["test accuracy above 0.7"]  # a check the rubric at hand does not know: hidden, not shown
    unknown = next(t for t in gradescope_results(results, public=public)["tests"]
                   if t["name"] == "test accuracy above 0.7")
    assert unknown["visibility"] == "after_published"
    loss_test = next(t for t in out["tests"] if t["name"] == "final training loss below 0.5")
    assert "(needs x < 0.5)" in loss_test["output"]  # the condition once, not "x < 0.5 0.5"
    assert out["leaderboard"][0] == {"name": "Accuracy (%)", "value": 83.0, "order": "desc"}
    json.dumps(out, allow_nan=False)  # what Gradescope reads must be plain JSON


def test_error_result_scores_zero_with_the_reason():
    out = gradescope_results(synthetic_results("bob", None, error="model.pth is empty (0 bytes)"))
    assert validate_gradescope(out) == []
    assert out["score"] == 0.0 and "leaderboard" not in out
    assert out["output"].startswith("Not graded: model.pth is empty")
    assert all(t["status"] == "failed" and t["score"] == 0.0 for t in out["tests"])
    assert all("not graded" in t["output"] for t in out["tests"])


@pytest.mark.parametrize("broken, problem", [
    ({"tests": [{"name": "a", "score": 1, "max_score": 1, "status": "ok"}]}, "status must be one of"),
    ({"score": "ten"}, "score must be a finite number"),
    ({"score": 1, "visibility": "public"}, "visibility must be one of"),
    ({"score": 1, "execution_time": 1.5}, "execution_time must be a finite integer"),
    ({"score": 1, "tests": [{"score": 1}]}, "name must be a non-empty string"),
    ({"score": 1, "leaderboard": [{"name": "acc", "value": 1, "order": "up"}]}, "order must be one of"),
    ({"score": 1, "colour": "red"}, "unknown top-level key 'colour'"),
    ({"tests": []}, "score is required"),
    ([], "must be a JSON object"),
])
def test_validator_names_each_problem(broken, problem):
    problems = validate_gradescope(broken)
    assert any(problem in p for p in problems), problems


def test_missing_submission_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["gradescope", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "submission" in result.output and "does not exist" in result.output
    (tmp_path / "submission").write_bytes(b"an uploaded file where the folder should be")
    result = CliRunner().invoke(main, ["gradescope", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "is a file, not a folder" in result.output


def test_student_id_comes_from_gradescope_metadata(tmp_path):
    from grader.platforms.gradescope import gradescope_student

    (tmp_path / "submission").mkdir()
    assert gradescope_student(tmp_path) is None  # the hand-in's own name is used then
    (tmp_path / "submission_metadata.json").write_text(json.dumps(
        {"users": [{"email": "ada@uni.edu", "id": 7, "name": "Ada"}]}))
    assert gradescope_student(tmp_path) == "ada@uni.edu"


@pytest.mark.slow
def test_autograder_run_writes_valid_results(tmp_path):
    """End to end on generated data: /autograder/submission in, /autograder/results/results.json out."""
    import torch

    from grader.models import build
    from tests.conftest import make_image_tree

    data = make_image_tree(tmp_path / "data", {"train": 1, "test": 2})
    (tmp_path / "ag" / "submission").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(build("homework_net"), tmp_path / "ag" / "submission" / "model.pth")
    result = CliRunner().invoke(main, ["gradescope", "--root", str(tmp_path / "ag"), "--data", str(data),
                                       "--partial"])
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "ag" / "results" / "results.json").read_text())
    assert validate_gradescope(out) == [] and len(out["tests"]) == 3
    assert out["tests"][2]["name"] == "test accuracy above 0.7"
