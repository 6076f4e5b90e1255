"""gradebook.csv: the display name as its last column, the byte-order mark on by default, and the
outcome each row adds to the console's counters."""

from __future__ import annotations

import csv
import io

from grader.batch.gradebook import Record, outcome_of, write_gradebook
from grader.results import Student
from tests.test_batch import synthetic_results


def named(student: str, name: str, accuracy: float = 0.8) -> Record:
    result = synthetic_results(student, accuracy).replace(student=Student(student, name))
    return Record(student, student, "a" * 64, "graded", None, result)


def test_the_name_column_comes_last_and_the_bom_is_on_unless_refused(tmp_path):
    records = [named("SC24219070", "李雷"), named("SC24219071", "=HYPERLINK()")]
    with_bom = write_gradebook(records, ["test accuracy above 0.7"], tmp_path / "a")
    raw = with_bom.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "李雷".encode() in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:5] == ["student", "status", "score", "max_score", "accuracy"]
    assert rows[0][-4:] == ["error", "sha256", "report", "name"]
    assert [row[-1] for row in rows[1:]] == ["李雷", "'=HYPERLINK()"]  # formula-safe like every text cell
    without = write_gradebook(records, ["test accuracy above 0.7"], tmp_path / "b", bom=False).read_bytes()
    assert without == raw[3:]


def test_each_record_adds_to_one_honest_counter():
    passing = named("a", "a", 0.8)
    failing = named("b", "b", 0.6)  # test accuracy above 0.7 fails
    refused = Record("c", "c", "c" * 64, "error", "not a checkpoint", synthetic_results("c", None, error="x"))
    killed = Record("d", "d", "d" * 64, "timeout", "took too long", synthetic_results("d", None, error="x"))
    lost = Record("e", "e", "e" * 64, "missing", "no results were written")
    assert [outcome_of(r) for r in (passing, failing, refused, killed, lost)] == [
        "passed", "failing", "not-graded", "crashed", "crashed"]
