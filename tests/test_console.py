"""What the commands print: honest batch counters, lines never hard-wrapped into a file or pipe,
and the self-check's verdict line."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from grader.batch.gradebook import Record
from grader.batch.run import BatchSummary
from grader.commands.console import (BatchProgress, check_verdict, counters_text, make_console,
                                     print_batch_summary, print_check_summary, tally)
from grader.report.i18n import STRINGS
from grader.results import metrics
from grader.rubric import check, parse_rubric
from tests.test_batch import synthetic_results


def record(student: str, status: str = "graded", accuracy: float | None = 0.8) -> Record:
    error = None if status == "graded" else f"{status}: the reason"
    return Record(student, student, "a" * 64, status, error, synthetic_results(student, accuracy, error=error))


def test_the_batch_summary_counts_graded_failing_not_graded_and_crashed(capsys):
    records = [record("a"), record("b", accuracy=0.5), record("c", "error", None), record("d", "crashed", None),
               record("e", "timeout", None)]
    print_batch_summary(BatchSummary(records, graded_now=["a", "b", "c", "d", "e"]), Path("out"))
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("5 submissions: 2 graded (1 failing a check), 1 not graded, 2 crashed (5 graded now")


def test_the_progress_bar_counts_each_finished_submission_by_outcome():
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    bar = BatchProgress(console)
    bar.start(total=5, reused=["passed", "not-graded"])
    for finished in ("failing", "crashed", "passed"):
        bar.advance(finished)
    bar.stop()
    assert tally(bar.outcomes) == {"passed": 2, "failing": 1, "not-graded": 1, "crashed": 1}
    assert "3 graded (1 failing a check), 1 not graded, 1 crashed" in console.file.getvalue()
    assert counters_text(tally([]), markup=False) == "0 graded (0 failing a check), 0 not graded, 0 crashed"


def test_output_to_a_file_is_never_hard_wrapped(capsys):
    from dataclasses import replace

    long = " ".join(["the reason goes on"] * 20)  # 379 characters, far past 80 columns
    console = make_console()  # pytest's captured stdout is not a terminal
    console.print(f"first {long}")
    print_batch_summary(BatchSummary([replace(record("c", "error", None), error=long)]), Path("out"), console=console)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"first {long}"
    assert any(long in line for line in lines[1:])  # the table's reason cell, whole on its row


RUBRIC = parse_rubric({"check": [
    {"name": "test accuracy above 0.7", "metric": "accuracy", "condition": "x > 0.7"},
    {"name": "history logged", "metric": "history.test_acc", "condition": "x > 0.5"},
    {"name": "small", "metric": "parameters", "condition": "x < 2000000"}]})


def test_the_verdict_line_says_ready_or_the_first_thing_to_fix():
    good = synthetic_results("alice", 0.83)
    assert check_verdict(good) == "READY: 3/3 checks pass"
    low = synthetic_results("bob", 0.61)
    assert check_verdict(low) == "NOT READY: 2/3 checks pass; fix first: test accuracy above 0.7: 0.61, needs 0.7 < x <= 1"
    broken = synthetic_results("carol", None, error="unknown format: hand in a .pth")
    assert check_verdict(broken) == "NOT READY: not graded: unknown format: hand in a .pth"
    no_history = good.replace(verdict=check(metrics(good), RUBRIC))
    assert check_verdict(no_history).startswith("NOT READY: 2/3 checks pass; fix first: history logged: no training")


def test_the_self_check_prints_the_verdict_first_and_every_na_with_its_reason():
    result = synthetic_results("alice", 0.83)
    result = result.replace(verdict=check(metrics(result), RUBRIC))
    console = Console(record=True, width=300)
    print_check_summary(result, Path("out/report.pdf"), console=console)
    lines = console.export_text().splitlines()
    assert lines[0] == check_verdict(result)
    na = [line for line in lines if "n/a" in line]
    assert len(na) == 1 and "n/a: no training history: add history" in na[0]


def test_the_zh_self_check_holds_no_english_words():
    from tests.test_report import checks_of_every_kind, english_words

    allowed = {"history", "json", "submission", "toml", "true", "x", "out", "pdf"}  # TOML the hints quote, a path
    result = checks_of_every_kind().replace(flags=("borderline",))
    console = Console(record=True, width=300)
    print_check_summary(result, Path("out/report.pdf"), console=console, lang="zh")
    text = console.export_text()
    assert text.splitlines()[0] == check_verdict(result, "zh") == (
        "尚不能提交：1/6 项检查通过；请先改正：测试准确率高于 70%：当前 70.00%，要求 70% < x ≤ 100%")
    assert STRINGS["zh"]["check_no_history"] in text and STRINGS["zh"]["flag_borderline"] in text
    assert "无：无数值" not in text and "无数值：" in text  # the reason says "no value" once, not twice
    assert english_words(text, allowed) == set()
    broken = synthetic_results("carol", None, error="unknown format: hand in a .pth")
    assert check_verdict(broken, "zh").startswith("尚不能提交：未评分：")
    console = Console(record=True, width=300)
    print_check_summary(result, Path("out/report.pdf"), console=console)
    assert english_words(console.export_text(), allowed)  # in English, the check can fail


def test_the_grade_summary_in_zh_is_the_verdict_then_each_check_in_chinese():
    from grader.commands.console import format_summary
    from tests.test_report import checks_of_every_kind, english_words

    result = checks_of_every_kind()
    text = format_summary(result, "zh")
    lines = text.splitlines()
    assert lines[0] == f"ada: {check_verdict(result, 'zh')}"
    assert lines[1].startswith("  测试准确率：70.00%") and lines[2].startswith("  得分：")
    marks = [line.split("]")[0] for line in lines if line.startswith("  [")]
    assert marks == ["  [未通过", "  [通过"] + ["  [未通过"] * 4
    assert english_words(text, {"ada", "history", "json", "submission", "toml", "true", "x"}) == set()
    assert format_summary(result).startswith("ada: state-dict, accuracy 0.7000")  # English as before
