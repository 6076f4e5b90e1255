"""Gradebook exports: Canvas, Moodle and plain CSV from a batch's results, with roster mismatches."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from grader.batch.gradebook import Record
from grader.cli import main
from grader.errors import GraderError
from grader.platforms.exports import BOM, export_csv, export_table, read_roster
from grader.results import write_results
from tests.test_batch import synthetic_results

CANVAS_ROSTER = ("Student,ID,SIS User ID,SIS Login ID,Section,student\n"
                 "\"Lovelace, Ada\",101,S1,ada,Sec 1,alice\n"
                 "\"Babbage, Charles\",102,S2,cb,Sec 1,bob\n"
                 "\"Noether, Emmy\",103,S3,en,Sec 2,emmy\n")
MOODLE_ROSTER = "email,student\nada@uni.edu,alice\ncb@uni.edu,bob\n"


def records() -> list[Record]:
    graded = synthetic_results("alice", 0.83)
    failed = synthetic_results("bob", None, error="model.pth is empty (0 bytes)")
    stray = synthetic_results("=cmd|' /C calc'!A0", 0.8)  # a hostile id, not in the roster
    return [Record("alice", "alice", "0" * 64, "graded", None, graded),
            Record("bob", "bob", "0" * 64, "error", failed.error, failed),
            Record(stray.student.id, "stray", "0" * 64, "graded", None, stray)]


def parse(text: str) -> list[list[str]]:
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text[len(BOM):])))


def test_canvas_keeps_identity_columns_then_the_assignment():
    roster = read_roster(CANVAS_ROSTER, "canvas")
    made = export_table(records(), roster, "canvas", assignment="HW2 (1234)")
    rows = parse(export_csv(made.rows))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW2 (1234)"]
    assert rows[1] == ["Lovelace, Ada", "101", "S1", "ada", "Sec 1", "3"]
    assert rows[2][-1] == "0" and rows[3][-1] == ""  # an error grades 0; no grade leaves the cell empty
    assert made.unmatched == ("=cmd|' /C calc'!A0",) and made.ungraded == ("emmy",)


def test_moodle_writes_identifier_grade_and_feedback():
    made = export_table(records(), read_roster(MOODLE_ROSTER, "moodle"), "moodle")
    rows = parse(export_csv(made.rows))
    assert rows[0] == ["email", "grade", "feedback"]
    assert rows[1][:2] == ["ada@uni.edu", "3"] and "83.00%" in rows[1][2]
    assert rows[2][1] == "0" and "model.pth is empty" in rows[2][2]


def test_moodle_feedback_reads_in_chinese_without_the_grading_machines_folders():
    """Moodle shows the feedback column to the student: in the chosen language, and naming the
    hand-in, not the TA's folders."""
    import dataclasses

    from grader.messages import say
    from tests.test_report import english_words

    said = say("weights.empty", file="/home/ta/hw2/bob/model.pth")
    failed = synthetic_results("bob", None, error=str(said))
    failed = failed.replace(error_detail=said, submission=dataclasses.replace(failed.submission, path="/home/ta/hw2/bob"))
    graded = synthetic_results("alice", 0.83)
    kept = [Record("alice", "alice", "0" * 64, "graded", None, graded),
            Record("bob", "bob", "0" * 64, "error", failed.error, failed)]
    roster = read_roster(MOODLE_ROSTER, "moodle")
    zh = parse(export_csv(export_table(kept, roster, "moodle", lang="zh").rows))
    assert zh[1][2] == "测试准确率 83.00%；3 项检查通过 3 项；得分 3/3。"
    assert zh[2][2].startswith("未评分（出错）：bob/model.pth 是空文件")
    assert english_words(zh[1][2] + zh[2][2], {"bob"}) == set()
    en = parse(export_csv(export_table(kept, roster, "moodle").rows))
    assert en[1][2] == "Test accuracy 83.00%; 3/3 checks passed; score 3/3."
    assert en[2][2].startswith("Not graded (error): bob/model.pth is empty (0 bytes)")
    assert "/home/ta" not in en[2][2] + zh[2][2]


def test_plain_csv_cells_are_formula_safe():
    roster = read_roster("student,name\n=HYPERLINK(1),@evil\n", "csv")
    rows = export_table(records(), roster, "csv").rows
    assert rows[0] == ["student", "name", "score", "max_score", "status", "feedback"]
    assert rows[1][:2] == ["'=HYPERLINK(1)", "'@evil"]


@pytest.mark.parametrize("text, fmt, problem", [
    ("Student,ID\nAda,1\n", "canvas", "no 'student' column"),
    ("Name,ID,student\nAda,1,alice\n", "canvas", "Canvas's identity columns"),
    ("username,student\nada,alice\n", "moodle", "'idnumber' or 'email'"),
    ("email,student\na@b,alice\nc@d,alice\n", "moodle", "twice"),
])
def test_roster_without_the_needed_columns_is_refused(text, fmt, problem):
    with pytest.raises(GraderError, match=problem):
        read_roster(text, fmt)


def test_export_command_lists_unmatched_students_and_succeeds(tmp_path):
    batch = tmp_path / "out"
    for record in records():
        write_results(record.result, batch / record.slug)
    (batch / ".batch-tmp-x").mkdir()  # a staging folder is not a student
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER, encoding="utf-8")
    target = tmp_path / "canvas.csv"
    result = CliRunner().invoke(main, ["export", str(batch), "--format", "canvas", "--roster",
                                         str(roster), "--out", str(target)])
    assert result.exit_code == 0, result.output + result.stderr
    assert "1 graded student(s) not in" in result.stderr and "calc" in result.stderr
    assert "1 student(s) of" in result.stderr and "emmy" in result.stderr
    assert parse(target.read_text(encoding="utf-8"))[0][-1] == "CIFAR-10 homework"
    bad = CliRunner().invoke(main, ["export", str(batch), "--format", "moodle", "--roster", str(roster),
                                    "--out", str(target)])
    assert bad.exit_code == 2 and "idnumber" in bad.output
