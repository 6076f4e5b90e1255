"""PrairieLearn external grader results: the format against its schema, and `grader prairielearn`."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.platforms.prairielearn import SIZE_LIMIT, fit_size, prairielearn_results, read_options, result_images
from tests.conftest import make_image_tree
from tests.test_batch import synthetic_results

TOP_KEYS = {"gradable", "score", "message", "output", "format_errors", "tests", "images"}
TEST_KEYS = {"name", "description", "points", "max_points", "message", "output"}


def validate_prairielearn(obj) -> list[str]:
    """Problems of ``obj`` as PrairieLearn grading results ([] = valid)."""
    problems = [f"unknown key {k!r}" for k in sorted(set(obj) - TOP_KEYS)]
    if not isinstance(obj.get("gradable"), bool):
        problems.append("gradable must be a boolean")
    score = obj.get("score")
    if not isinstance(score, (int, float)) or not math.isfinite(score) or not 0 <= score <= 1:
        problems.append("score must be a number in [0, 1]")
    if obj.get("gradable") is False and not obj.get("format_errors"):
        problems.append("an ungradable result must say why in format_errors")
    if not all(isinstance(e, str) for e in obj.get("format_errors", [])):
        problems.append("format_errors must be strings")
    for key in ("message", "output"):
        if not isinstance(obj.get(key, ""), str):
            problems.append(f"{key} must be a string")
    for i, test in enumerate(obj.get("tests", [])):
        problems += [f"tests[{i}] unknown key {k!r}" for k in sorted(set(test) - TEST_KEYS)]
        if not isinstance(test.get("name"), str) or not test["name"]:
            problems.append(f"tests[{i}].name must be a non-empty string")
        if not 0 <= test.get("points", -1) <= test.get("max_points", -1):
            problems.append(f"tests[{i}] points must be within [0, max_points]")
    for i, image in enumerate(obj.get("images", [])):
        if set(image) != {"label", "url"} or not image["url"].startswith("data:image/"):
            problems.append(f"images[{i}] must be a {{label, url}} with a data:image/ URI")
    if len(json.dumps(obj, allow_nan=False).encode()) >= SIZE_LIMIT:
        problems.append("results.json must be under 1 MB")
    return problems


def test_graded_result_is_a_fraction_with_one_test_per_check():
    result = synthetic_results("alice", 0.83)
    out = prairielearn_results(result, images=result_images(result))
    assert validate_prairielearn(out) == []
    assert out["gradable"] is True and out["score"] == 1.0
    assert [t["name"] for t in out["tests"]] == [c.name for c in result.verdict.checks]
    assert sum(t["max_points"] for t in out["tests"]) == result.verdict.max_score
    assert "83.00%" in out["message"]
    assert [i["label"].split(" ")[0] for i in out["images"]] == ["Confusion", "Training"]
    assert out["images"][0]["url"].startswith("data:image/png;base64,")


def test_partial_credit_is_the_share_of_the_rubric_points():
    out = prairielearn_results(synthetic_results("carol", 0.5))  # below 0.7: that check fails
    assert validate_prairielearn(out) == []
    assert 0 < out["score"] < 1
    failed = [t for t in out["tests"] if t["message"] == "failed"]
    assert failed and all(t["points"] == 0 for t in failed)


def test_ungradable_hand_in_costs_no_attempt():
    out = prairielearn_results(synthetic_results("bob", None, error="model.pth is empty (0 bytes)"))
    assert validate_prairielearn(out) == []
    assert out["gradable"] is False and out["score"] == 0.0 and out["tests"] == []
    assert out["format_errors"] == ["model.pth is empty (0 bytes)"]


def test_oversized_results_drop_images_then_trim_text():
    out = prairielearn_results(synthetic_results("alice", 0.83),
                               images=[{"label": "huge", "url": "data:image/png;base64," + "A" * SIZE_LIMIT}])
    fitted = fit_size(out)
    assert fitted["images"] == [] and validate_prairielearn(fitted) == []
    long = {**fitted, "output": "x" * (2 * SIZE_LIMIT)}
    assert len(fit_size(long)["output"]) < SIZE_LIMIT


def test_options_come_from_params_grader_in_data_json(tmp_path):
    assert read_options(tmp_path).rubric is None  # no data.json: the defaults
    (tmp_path / "data").mkdir()
    (tmp_path / "serverFilesCourse").mkdir()
    (tmp_path / "serverFilesCourse" / "rubric.toml").write_text("")
    (tmp_path / "data" / "data.json").write_text(json.dumps(
        {"params": {"grader": {"rubric": "serverFilesCourse/rubric.toml", "partial": True}}}))
    options = read_options(tmp_path)
    assert options.rubric == tmp_path / "serverFilesCourse" / "rubric.toml" and options.partial
    (tmp_path / "data" / "data.json").write_text(json.dumps({"params": {"grader": {"rubrik": "x"}}}))
    (tmp_path / "student").mkdir()
    result = CliRunner().invoke(main, ["prairielearn", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown keys rubrik" in result.output


def test_missing_student_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["prairielearn", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "student" in result.output and "does not exist" in result.output


@pytest.fixture(scope="module")
def grading_root(tmp_path_factory):
    import torch

    from grader.models import build

    root = tmp_path_factory.mktemp("pl")
    (root / "student").mkdir()
    torch.manual_seed(0)
    torch.save(build("homework_net"), root / "student" / "model.pth")
    return root, make_image_tree(root / "tree", {"train": 1, "test": 3})


@pytest.mark.slow  # ~25 s on a loaded 2-core machine: a real grade, diagnosis included
def test_prairielearn_grades_student_folder_into_results(grading_root):
    root, data = grading_root
    result = CliRunner().invoke(main, ["prairielearn", "--root", str(root), "--data", str(data), "--partial",
                                       "--no-sandbox"])
    assert result.exit_code == 0, result.output
    out = json.loads((root / "results" / "results.json").read_text())
    assert validate_prairielearn(out) == [], out
    assert out["gradable"] is True and out["images"], out["format_errors"]
    assert (root / "results" / "grader" / "results.json").is_file()


def test_prairielearn_marks_an_unreadable_hand_in_ungradable(grading_root, tmp_path):
    _, data = grading_root
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "model.pth").write_bytes(b"not a checkpoint at all")
    result = CliRunner().invoke(main, ["prairielearn", "--root", str(tmp_path), "--data", str(data),
                                       "--partial", "--no-sandbox"])
    assert result.exit_code == 0, result.output  # the grader did its job: PrairieLearn reads the file
    out = json.loads((tmp_path / "results" / "results.json").read_text())
    assert validate_prairielearn(out) == [] and out["gradable"] is False
    assert "unknown format" in out["format_errors"][0]


def test_a_chinese_result_has_no_english_sentence_and_no_grading_folders():
    """Under zh the student reads Chinese names, messages and figure labels; an error names the
    hand-in by its own name, never the grading container's folders."""
    from grader.messages import say
    from tests.test_report import checks_of_every_kind, english_words

    allowed = {"CIFAR", "history", "json", "submission", "toml", "true", "x"}
    graded = checks_of_every_kind().replace(flags=("history-mismatch",))
    with warnings.catch_warnings():  # a Chinese label drawn without the CJK font warns of each missing glyph
        warnings.simplefilter("error", UserWarning)
        images = result_images(graded, "zh")
    out = prairielearn_results(graded, images=images, lang="zh")
    assert validate_prairielearn(out) == []
    texts = [out["message"], out["output"], *(i["label"] for i in out["images"]),
             *(f"{t['name']}\n{t['description']}\n{t['message']}\n{t['output']}" for t in out["tests"])]
    assert english_words("\n".join(texts), allowed) == set()
    assert out["tests"][0]["description"] == "要求 70% < x ≤ 100%"  # not results.json's key, "accuracy"
    assert prairielearn_results(graded)["tests"][0]["description"] == "accuracy"  # English as before
    assert out["tests"][0]["name"] == "测试准确率高于 70%" and {t["message"] for t in out["tests"]} == {"通过", "未通过"}
    assert [i["label"] for i in out["images"]] == ["混淆矩阵（行：真实类别，列：预测类别）", "训练曲线"]
    said = say("weights.empty", file="/grade/student/model.pth")
    error = synthetic_results("bob", None, error=str(said))
    error = error.replace(error_detail=said, submission=dataclasses.replace(error.submission, path="/grade/student"))
    failed = prairielearn_results(error, lang="zh")
    assert failed["format_errors"][0].startswith("student/model.pth") and "/grade/" not in json.dumps(failed)
    assert english_words(failed["format_errors"][0] + failed["message"], allowed | {"student"}) == set()
    english = prairielearn_results(error)
    assert english["format_errors"][0].startswith("student/model.pth is empty")  # the same, in English
    assert english_words(english["message"], allowed)  # the check above can fail


def test_the_language_comes_from_data_json_unless_the_command_line_says(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.json").write_text(json.dumps({"params": {"grader": {"lang": "zh"}}}))
    assert read_options(tmp_path).lang == "zh"
    (tmp_path / "data" / "data.json").write_text(json.dumps({"params": {"grader": {"lang": "fr"}}}))
    (tmp_path / "student").mkdir()
    result = CliRunner().invoke(main, ["prairielearn", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "params.grader.lang is 'fr'" in result.output and "en, zh" in result.output
