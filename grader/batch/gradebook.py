"""The class's grades as one CSV, built from each student's results.json and batch.json.

    Record                                  one student's finished grade, read back from OUT
    read_record(entry, folder) -> Record
    gradebook_csv(records, check_names) -> str      pure
    write_gradebook(records, check_names, out_dir, bom=True) -> Path
    outcome_of(record) -> str               which console counter a record adds to
    record_reason(record, lang) -> str      why a record was not graded, as its student reads it

Columns: student, status, score, max_score, accuracy, one ``check:<name>`` column per rubric check
(points earned), error, sha256 (the submission's content digest), report (path relative to
OUT) and name (the display name). Rows sorted by student id. No timings: the same grades give the
same bytes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from grader import atomic
from grader.batch.resume import RESULTS_NAME, read_marker
from grader.errors import GraderError
from grader.messages import Message, said, say
from grader.results import GradeResult, read_results

GRADEBOOK_NAME = "gradebook.csv"
FIXED_COLUMNS = ("student", "status", "score", "max_score", "accuracy")
TAIL_COLUMNS = ("error", "sha256", "report", "name")  # new columns go last: scripts read them by place
STATUSES = ("graded", "error", "timeout", "memory", "crashed", "missing")
# The grading process died or broke a limit, as opposed to grader refusing the hand-in ("error").
CRASHED_STATUSES = ("timeout", "memory", "crashed", "missing")
OUTCOMES = ("passed", "failing", "not-graded", "crashed")
# A cell a spreadsheet would run as a formula; student ids and messages come from students.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Record:
    """One student's grade as the reducers (gradebook, class report) see it.

    Attributes:
        student: student id.
        slug: folder name under OUT.
        sha256: the submission's content digest.
        status: one of ``STATUSES``: "graded", "error" (the grader refused the submission),
            "timeout", "memory", "crashed" (the grading process died), "missing" (no output).
        error: the reason for anything but "graded", else None.
        result: the grade read back from results.json (None when missing).
        timings: seconds (``startup``, ``evaluate``, ``render``) from batch.json, if any.
        report: the report's path relative to OUT, or "" when none was written.
        report_error: why the report could not be drawn, or None.
    """

    student: str
    slug: str
    sha256: str
    status: str
    error: str | None = None
    result: GradeResult | None = field(default=None, repr=False)
    timings: dict = field(default_factory=dict)
    report: str = ""
    report_error: str | None = None


def read_record(student: str, slug: str, sha256: str, folder: Path) -> Record:
    """Read the finished folder of one student (``OUT/<slug>``) into a Record."""
    marker = read_marker(folder) or {}
    try:
        result = read_results(folder / RESULTS_NAME)
    except GraderError:
        return Record(student, slug, sha256, "missing", say("batch.no_results"))
    outcome = marker.get("status", "ok")
    if outcome != "ok":
        status, error = outcome, marker.get("reason") or result.error
    elif result.graded:
        status, error = "graded", None
    else:
        status, error = "error", result.error or "not graded"
    report = next((f"{slug}/{name}" for name in ("report.pdf", "report.html") if (folder / name).is_file()), "")
    return Record(student, slug, sha256, status, error, result, marker.get("timings") or {}, report,
                  marker.get("report_error"))


def check_scores(result: GradeResult | None) -> dict[str, Any]:
    """check name -> points earned."""
    return {c.name: c.score for c in result.verdict.checks} if result else {}


def gradebook_rows(records: Iterable[Record], check_names: Sequence[str]) -> list[list[str]]:
    """Header plus one row per record, sorted by student id."""
    header = [*FIXED_COLUMNS, *(f"check:{name}" for name in check_names), *TAIL_COLUMNS]
    rows = [header]
    for rec in sorted(records, key=lambda r: r.student):
        r = rec.result
        scores = check_scores(r)
        rows.append([
            text_cell(rec.student), rec.status, number_cell(r.verdict.score if r else 0.0),
            number_cell(r.verdict.max_score if r else None),
            number_cell(r.evaluation.accuracy if r and r.evaluation else None, digits=4),
            *(number_cell(scores.get(name)) for name in check_names),
            text_cell(rec.error or ""), text_cell(rec.sha256), text_cell(rec.report),
            text_cell(display_name(rec)),
        ])
    return rows


def gradebook_csv(records: Iterable[Record], check_names: Sequence[str]) -> str:
    """The gradebook as CSV text (UTF-8, ``\\n`` line ends, minimal quoting)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(gradebook_rows(records, check_names))
    return buf.getvalue()


def write_gradebook(records: Iterable[Record], check_names: Sequence[str], out_dir: Path, *,
                    bom: bool = True) -> Path:
    """Write ``OUT/gradebook.csv`` atomically, UTF-8, with a byte-order mark unless ``bom`` is False
    (without one, Excel on Windows reads Chinese names as the local code page); returns its path."""
    text = gradebook_csv(records, check_names)
    return atomic.write_text(Path(out_dir) / GRADEBOOK_NAME, "\ufeff" + text if bom else text)


def display_name(record: Record) -> str:
    """The name results.json shows for the student, else the student id."""
    return (record.result.student.name if record.result else "") or record.student


def record_reason(record: Record, lang: str = "en") -> str:
    """Why ``record`` has no grade, in ``lang`` and without the grading machine's folders: the
    grade's own error said from the message catalogue, any other reason (a timeout, a crash) as
    the batch wrote it (after the catalogue's lead-in saying it is the grader's English), and a
    note before it (an id claimed twice) said too. "" when there is none."""
    return _reason(record, record.error, lang) if record.error else ""


def _reason(record: Record, error: str, lang: str) -> str:
    if isinstance(error, Message) and error.key == "batch.noted":  # the note said, then the error
        return say("batch.noted", note=error.args["note"], error=_reason(record, error.args["error"], lang)).text(lang)
    own = record.result is not None and record.result.error is not None and error == record.result.error
    return record.result.student_error_text(lang) if own else said(error, lang)


def outcome_of(record: Record) -> str:
    """One of ``OUTCOMES``: "passed" (graded, every check passed), "failing" (graded, a check
    failed), "not-graded" (grader refused the hand-in; its error says why), "crashed" (the
    grading process died, was killed at a limit, or left no results)."""
    if record.status in CRASHED_STATUSES:
        return "crashed"
    if record.status != "graded" or record.result is None or not record.result.graded:
        return "not-graded"
    return "passed" if record.result.passed else "failing"


def number_cell(value: Any, digits: int = 6) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f"{round(float(value), digits):g}"


def text_cell(value: str) -> str:
    """Neutralise a leading formula character, as spreadsheets would otherwise evaluate it."""
    value = " ".join(str(value).split()) if "\n" in str(value) else str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value
