"""Gradescope results: the format, its validator, and `grader gradescope` as an autograder."""

from __future__ import annotations

import json
import re

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


def test_students_never_see_the_graders_folders():
    from grader.results import SubmissionFacts

    error = "/home/ta/hw2/submissions/s2400009/model.pth is empty (0 bytes)"
    result = synthetic_results("s2400009", None, error=error).replace(
        submission=SubmissionFacts(path="/home/ta/hw2/submissions/s2400009"))
    out = gradescope_results(result)
    assert "/home/ta" not in json.dumps(out, ensure_ascii=False)
    assert out["output"].startswith("Not graded: s2400009/model.pth is empty")
    assert "s2400009/model.pth is empty" in out["tests"][0]["output"]


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
    (tmp_path / "ag" / "submission_metadata.json").write_text(json.dumps(metadata(
        "2026-03-02T11:00:00-08:00", previous("2026-03-01T10:00:00-08:00", synthetic_results("ada", 0.62)))))
    result = CliRunner().invoke(main, ["gradescope", "--root", str(tmp_path / "ag"), "--data", str(data),
                                       "--partial", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "ag" / "results" / "results.json").read_text())
    assert validate_gradescope(out) == [] and len(out["tests"]) == 3
    assert out["tests"][2]["name"] == "测试准确率高于 70%"  # under --lang zh, by the rubric's name_zh
    assert out["output_format"] == "html" and "你的提交记录" in out["output"] and "62.00%" in out["output"]
    assert out["extra_data"]["grader"]["graded"] is True


# --- earlier submissions: the daily limit and the progress table ------------------------------


def previous(time: str, result) -> dict:
    """One ``previous_submissions`` entry as Gradescope writes it: the time, the score and the
    results object that submission's run wrote (here through gradescope_results, as grader writes it)."""
    from grader.platforms.gradescope import Progress

    out = gradescope_results(result, progress=Progress((), _parse(time)))
    return {"submission_time": time, "score": out["score"], "results": out}


def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


def metadata(now: str, *earlier: dict) -> dict:
    return {"id": 9, "created_at": now, "assignment": {"title": "HW2", "total_points": "3.0"},
            "users": [{"email": "ada@uni.edu", "id": 7, "name": "Ada"}], "previous_submissions": list(earlier)}


def test_rubric_gradescope_table_is_parsed_strictly():
    from grader.errors import GraderError
    from grader.rubric import parse_rubric

    check_table = [{"metric": "accuracy", "condition": "x > 0.7"}]
    rubric = parse_rubric({"gradescope": {"max_submissions_per_day": 3, "time_zone": "Asia/Shanghai"},
                           "check": check_table})
    assert rubric.gradescope.max_submissions_per_day == 3 and rubric.gradescope.time_zone == "Asia/Shanghai"
    assert parse_rubric({"check": check_table}).gradescope.max_submissions_per_day is None
    for table, said in [({"max_submisions_per_day": 3}, "unknown [gradescope] key(s) max_submisions_per_day"),
                        ({"max_submissions_per_day": 0}, "whole number of at least 1"),
                        ({"max_submissions_per_day": 2.5}, "whole number of at least 1"),
                        ({"time_zone": "Mars/Olympus"}, "not a time zone this machine knows")]:
        with pytest.raises(GraderError, match=re.escape(said)):
            parse_rubric({"gradescope": table, "check": check_table})


def test_daily_limit_counts_graded_submissions_of_the_day():
    from grader.platforms.attempts import earlier_attempts, limit_refusal
    from grader.platforms.rules import GradescopeRules

    good, bad = synthetic_results("ada", 0.81), synthetic_results("ada", None, error="model.pth is empty (0 bytes)")
    meta = metadata("2026-03-02T21:15:00.000000-08:00",
                    previous("2026-03-01T23:50:00.000000-08:00", good),   # the day before
                    previous("2026-03-02T08:00:00.000000-08:00", good),
                    previous("2026-03-02T09:00:00.000000-08:00", bad),    # not graded: does not count
                    previous("2026-03-02T10:00:00.000000-08:00", good))
    attempts = earlier_attempts(meta)
    now = _parse(meta["created_at"])
    assert [a.counted for a in attempts] == [True, True, False, True]
    assert attempts[0].accuracy == pytest.approx(0.81) and attempts[2].accuracy is None
    assert limit_refusal(attempts, now, GradescopeRules(max_submissions_per_day=3)) is None
    refusal = limit_refusal(attempts, now, GradescopeRules(max_submissions_per_day=2))
    assert refusal.used == 2 and str(refusal.day) == "2026-03-02" and refusal.zone == "UTC-08:00"
    assert refusal.next_allowed.isoformat() == "2026-03-03T00:00:00-08:00"
    assert refusal.standing is attempts[-1]
    # 23:50 on March 1 in California is 15:50 on March 2 in Shanghai: the same day as 07:00 on
    # March 2 in California (23:00 in Shanghai), but not in California's own calendar.
    early = _parse("2026-03-02T07:00:00-08:00")
    assert limit_refusal(attempts, early, GradescopeRules(max_submissions_per_day=1)) is None
    shanghai = limit_refusal(attempts, early, GradescopeRules(max_submissions_per_day=1, time_zone="Asia/Shanghai"))
    assert shanghai.used == 1 and shanghai.next_allowed.isoformat() == "2026-03-03T00:00:00+08:00"


def test_over_the_limit_the_previous_score_stands_and_says_when_to_retry():
    from grader.platforms.attempts import earlier_attempts, limit_refusal
    from grader.platforms.gradescope import Progress, limited_results
    from grader.platforms.rules import GradescopeRules

    rules = GradescopeRules(max_submissions_per_day=1)
    meta = metadata("2026-03-02T11:00:00-08:00", previous("2026-03-02T10:00:00-08:00", synthetic_results("ada", 0.5)))
    attempts = earlier_attempts(meta)
    refusal = limit_refusal(attempts, _parse(meta["created_at"]), rules)
    out = limited_results(refusal, Progress(tuple(attempts), _parse(meta["created_at"]), rules), max_score=3.0)
    assert validate_gradescope(out) == []
    assert out["score"] == attempts[0].score == 2.0 and out["tests"] == attempts[0].results["tests"]
    assert out["output_format"] == "html" and out["extra_data"]["grader"]["limited"] is True
    assert "was not graded" in out["output"] and "2026-03-03 00:00 (UTC-08:00)" in out["output"]
    assert "2 / 3, stands" in out["output"]
    # The next one over the limit keeps the same score, carried from the refused one.
    later = metadata("2026-03-02T12:00:00-08:00", *meta["previous_submissions"],
                     {"submission_time": meta["created_at"], "score": out["score"], "results": out})
    again = earlier_attempts(later)
    assert [a.limited for a in again] == [False, True]
    refused = limit_refusal(again, _parse(later["created_at"]), rules)
    assert refused.used == 1 and limited_results(refused, Progress(tuple(again), _parse(later["created_at"]), rules),
                                                 max_score=3.0)["score"] == 2.0


def test_progress_table_lists_each_submission_in_the_chosen_language():
    from grader.platforms.attempts import earlier_attempts
    from grader.platforms.gradescope import Progress

    meta = metadata("2026-03-02T11:00:00-08:00",
                    previous("2026-03-01T10:00:00-08:00", synthetic_results("ada", 0.62)),
                    previous("2026-03-02T10:00:00-08:00", synthetic_results("ada", None, error="empty")))
    now = _parse(meta["created_at"])
    out = gradescope_results(synthetic_results("ada", 0.83), progress=Progress(tuple(earlier_attempts(meta)), now))
    assert validate_gradescope(out) == [] and out["output_format"] == "html"
    assert out["extra_data"] == {"grader": {"graded": True, "limited": False, "accuracy": 0.83}}
    rows = out["output"].split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 3
    assert "2026-03-01 10:00" in rows[0] and "62.00%" in rows[0]
    assert "not graded" in rows[1] and "this one" in rows[2] and "83.00%" in rows[2]
    assert "Test accuracy: 83.00% on 10000 test images." in out["output"]
    zh = gradescope_results(synthetic_results("ada", 0.83),
                            progress=Progress(tuple(earlier_attempts(meta)), now, lang="zh"))["output"]
    assert "你的提交记录" in zh and "测试准确率：83.00%" in zh and "未评分" in zh


def test_the_review_line_of_a_flagged_grade_reads_in_the_chosen_language():
    from grader.integrity.claims import Mismatch
    from grader.platforms.gradescope import Progress
    from grader.report.i18n import STRINGS
    from grader.results import Integrity

    flagged = synthetic_results("ada", 0.83).replace(
        integrity=Integrity(mismatches=(Mismatch("test_acc", 0.99, 0.83, 0.9),)), flags=("history-mismatch",))
    now = _parse("2026-03-02T11:00:00-08:00")
    zh = gradescope_results(flagged, progress=Progress((), now, lang="zh"))["output"]
    review = re.search(r"<p>(此成绩正在由教学人员复核.*?)</p>", zh).group(1)
    assert STRINGS["zh"]["flag_history-mismatch"] in review and "history-mismatch" not in zh
    en = gradescope_results(flagged, progress=Progress((), now))["output"]
    assert "under review by the teaching staff (history-mismatch)" in en


def test_autograder_over_the_limit_grades_nothing(tmp_path):
    from tests.conftest import make_image_tree

    data = make_image_tree(tmp_path / "data", {"train": 1, "test": 1})
    root = tmp_path / "ag"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "model.pth").write_bytes(b"never read: the day's submissions are used up")
    (root / "rubric.toml").write_text('[gradescope]\nmax_submissions_per_day = 1\n\n[[check]]\n'
                                      'metric = "accuracy"\ncondition = "x > 0.7"\n')
    meta = metadata("2026-03-02T11:00:00-08:00", previous("2026-03-02T10:00:00-08:00", synthetic_results("ada", 0.8)))
    (root / "submission_metadata.json").write_text(json.dumps(meta))
    result = CliRunner().invoke(main, ["gradescope", "--root", str(root), "--data", str(data), "--partial",
                                       "--rubric", str(root / "rubric.toml")])
    assert result.exit_code == 0, result.output
    out = json.loads((root / "results" / "results.json").read_text())
    assert validate_gradescope(out) == [] and out["score"] == meta["previous_submissions"][0]["score"]
    assert "not graded: 1 graded submissions on 2026-03-02" in result.output
    assert not (root / "results" / "grader" / "results.json").exists()


def test_platform_strings_exist_in_both_languages():
    from grader.report.i18n import PLATFORM_STRINGS

    assert set(PLATFORM_STRINGS["en"]) == set(PLATFORM_STRINGS["zh"])
    for key, text in PLATFORM_STRINGS["en"].items():  # the same placeholders, or a format() fails
        assert re.findall(r"{(\w+)}", text) == re.findall(r"{(\w+)}", PLATFORM_STRINGS["zh"][key]) or \
            sorted(re.findall(r"{(\w+)}", text)) == sorted(re.findall(r"{(\w+)}", PLATFORM_STRINGS["zh"][key])), key


def test_each_tests_output_and_the_summary_read_in_the_chosen_language(tmp_path):
    """Under zh a student reads no English sentence: not a check's detail, nor the plain-text
    output; the English stays as results.json words it."""
    from grader.messages import say
    from grader.pipeline import GRADESCOPE_NAME, OutputParts, write_outputs
    from tests.test_report import checks_of_every_kind, english_words

    graded = checks_of_every_kind()
    said = say("history.missing", file="history.json")
    error = synthetic_results("bob", None, error=str(said)).replace(error_detail=said)
    allowed = {"CIFAR", "history", "json", "submission", "toml", "true", "x"}  # TOML the hints quote
    for result in (graded, error):
        out = gradescope_results(result, lang="zh")
        assert validate_gradescope(out) == []
        texts = [out["output"], *(f"{t['name']}\n{t['output']}" for t in out["tests"]),
                 *(entry["name"] for entry in out.get("leaderboard", []))]  # every student reads its headings
        assert english_words("\n".join(texts), allowed) == set()
    zh = gradescope_results(graded, lang="zh")
    assert [entry["name"] for entry in zh["leaderboard"]] == ["测试准确率 (%)", "参数量"]
    from grader.platforms.attempts import earlier_attempts

    earlier = {"submission_time": "2026-03-01T12:00:00+08:00", "score": 1, "results": zh}  # its board alone
    assert earlier_attempts({"previous_submissions": [earlier]})[0].accuracy == pytest.approx(0.7)
    assert zh["output"].startswith("测试准确率：70.00%（10000 张测试图像）。\n得分：")
    assert zh["tests"][0]["output"] == "测试准确率高于 70% = 70.00%（要求 70% < x ≤ 100%）\n" \
                                       "70.00% 不满足条件 70% < x ≤ 100%；临界：阈值落在测量值的 95% 置信区间内"
    en = gradescope_results(graded)
    assert en["tests"][0]["output"].endswith("\n" + graded.verdict.checks[0].detail)
    assert english_words(en["output"] + en["tests"][0]["output"], allowed)  # the check can fail
    write_outputs(graded, tmp_path, OutputParts(report=False, gradescope=True, lang="zh"))  # as a batch writes it
    written = json.loads((tmp_path / GRADESCOPE_NAME).read_text(encoding="utf-8"))
    assert written["output"] == zh["output"] and written["tests"][0]["name"] == "测试准确率高于 70%"
