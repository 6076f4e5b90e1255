"""The class's grades as one CSV, built from each student's results.json and batch.json.

    Record                                  one student's finished grade, read back from OUT
    read_record(entry, folder) -> Record
    gradebook_csv(records, check_names) -> str      pure
    write_gradebook(records, check_names, out_dir) -> Path

Columns: student, status, score, max_score, accuracy, one ``check:<name>`` column per rubric check
(points earned), error, sha256 (the submission's content digest) and report (path relative to
OUT). Rows sorted by student id. No timings: the same grades give the same bytes.
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
from grader.results import GradeResult, read_results

GRADEBOOK_NAME = "gradebook.csv"
FIXED_COLUMNS = ("student", "status", "score", "max_score", "accuracy")
TAIL_COLUMNS = ("error", "sha256", "report")
STATUSES = ("graded", "error", "timeout", "memory", "crashed", "missing")
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
        return Record(student, slug, sha256, "missing", "no results were written; run the batch again")
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
        ])
    return rows


def gradebook_csv(records: Iterable[Record], check_names: Sequence[str]) -> str:
    """The gradebook as CSV text (UTF-8, ``\\n`` line ends, minimal quoting)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(gradebook_rows(records, check_names))
    return buf.getvalue()


def write_gradebook(records: Iterable[Record], check_names: Sequence[str], out_dir: Path) -> Path:
    """Write ``OUT/gradebook.csv`` atomically, UTF-8 with a byte-order mark (without one, Excel on
    Windows reads Chinese names as the local code page); returns its path."""
    return atomic.write_text(Path(out_dir) / GRADEBOOK_NAME, "\ufeff" + gradebook_csv(records, check_names))


def number_cell(value: Any, digits: int = 6) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f"{round(float(value), digits):g}"


def text_cell(value: str) -> str:
    """Neutralise a leading formula character, as spreadsheets would otherwise evaluate it."""
    value = " ".join(str(value).split()) if "\n" in str(value) else str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value
