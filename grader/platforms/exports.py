"""A class's grades as a gradebook file a learning platform imports: Canvas, Moodle, plain CSV.

    read_roster(text, fmt, where) -> Roster          the roster CSV's rows, checked for ``fmt``'s columns
    export_table(records, roster, fmt, assignment, lang) -> Export      pure
    export_csv(rows) -> str                          UTF-8 with a BOM, so Excel reads accents

The roster maps the gradebook's student ids (its ``student`` column) to the platform's identity
columns, under the platform's own names:

- Canvas: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` (``Student`` and one
  of the three ids are needed; a Canvas gradebook export with a ``student`` column added works as
  is). Output: those columns, then the assignment column, named as Canvas matches an existing
  assignment, "Name (id)", holding points.
- Moodle: ``idnumber`` or ``email``. Output: that column, ``grade`` and ``feedback``, mapped to the
  user field, the grade item and its feedback in Moodle's "Import grades from CSV".
- csv: any columns; output the roster's columns, then score, max_score, status and feedback.

Every cell is formula-safe as gradebook.csv's cells are. The feedback, which Moodle shows the
student, is in ``lang`` and names a hand-in by its name, never by the grading machine's folders.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from grader.batch.gradebook import Record, number_cell, record_reason, text_cell
from grader.errors import GraderError

FORMATS = ("canvas", "moodle", "csv")
KEY = "student"
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_IDS = ("ID", "SIS User ID", "SIS Login ID")
MOODLE_IDS = ("idnumber", "email")
PLAIN_COLUMNS = ("score", "max_score", "status", "feedback")
DEFAULT_ASSIGNMENT = "CIFAR-10 homework"
BOM = "\ufeff"


@dataclass(frozen=True)
class Roster:
    """The roster's rows, keyed by student id, and the identity columns the export writes."""

    rows: Mapping[str, Mapping[str, str]]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Export:
    """An export: ``rows`` (header first), ``unmatched`` grades with no roster row (student ids),
    ``ungraded`` roster students with no grade (their cells are left empty)."""

    rows: list[list[str]]
    unmatched: tuple[str, ...]
    ungraded: tuple[str, ...]


def read_roster(text: str, fmt: str, where: str = "the roster") -> Roster:
    """Parse a roster CSV (a BOM is allowed) and pick ``fmt``'s identity columns.

    Raises:
        GraderError: when the ``student`` column or ``fmt``'s identity columns are missing, or a
            student id appears twice.
    """
    reader = csv.DictReader(io.StringIO(text.removeprefix(BOM)))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    if KEY not in header:
        raise GraderError(f"{where} has no '{KEY}' column (it has: {', '.join(header) or 'nothing'})",
                          f"add a '{KEY}' column holding the ids of the batch's gradebook.csv")
    columns = _identity_columns(header, fmt, where)
    rows: dict[str, dict[str, str]] = {}
    for row in reader:
        student = (row.get(KEY) or "").strip()
        if not student:
            continue
        if student in rows:
            raise GraderError(f"{where} lists student {student!r} twice", "keep one row per student")
        rows[student] = {k: (v or "").strip() for k, v in row.items() if k}
    return Roster(rows, columns)


def _identity_columns(header: Sequence[str], fmt: str, where: str) -> tuple[str, ...]:
    if fmt == "canvas":
        if "Student" not in header or not any(c in header for c in CANVAS_IDS):
            raise GraderError(f"{where} lacks Canvas's identity columns: 'Student' and one of "
                              f"{', '.join(CANVAS_IDS)}", "start from a Canvas gradebook export and add "
                              f"a '{KEY}' column")
        return tuple(c for c in CANVAS_COLUMNS if c in header)
    if fmt == "moodle":
        found = [c for c in MOODLE_IDS if c in header]
        if not found:
            raise GraderError(f"{where} lacks a Moodle identity column: 'idnumber' or 'email'",
                              "export the participants from Moodle and add a 'student' column")
        return (found[0],)
    if fmt == "csv":
        return tuple(c for c in header if c != KEY)
    raise GraderError(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")


def export_table(records: Iterable[Record], roster: Roster, fmt: str, *,
                 assignment: str = DEFAULT_ASSIGNMENT, lang: str = "en") -> Export:
    """One row per roster student, in roster order, with the grade of the matching record.

    Args:
        records: the batch's grades (``read_record``).
        roster: ``read_roster`` for the same ``fmt``.
        fmt: ``canvas``, ``moodle`` or ``csv``.
        assignment: Canvas's assignment column, "Name (id)".
        lang: the language of the feedback column.
    """
    graded = {r.student: r for r in records}
    if fmt == "canvas":
        header = [*roster.columns, assignment]
    elif fmt == "moodle":
        header = [*roster.columns, "grade", "feedback"]
    else:
        header = [KEY, *roster.columns, *PLAIN_COLUMNS]
    rows = [header]
    for student, row in roster.rows.items():
        identity = [text_cell(row.get(c, "")) for c in roster.columns]
        record = graded.get(student)
        score = number_cell(record.result.verdict.score if record and record.result else 0.0) if record else ""
        feedback = text_cell(feedback_text(record, lang)) if record else ""
        if fmt == "canvas":
            rows.append([*identity, score])
        elif fmt == "moodle":
            rows.append([*identity, score, feedback])
        else:
            maximum = number_cell(record.result.verdict.max_score) if record and record.result else ""
            rows.append([text_cell(student), *identity, score, maximum, record.status if record else "", feedback])
    return Export(rows, tuple(sorted(set(graded) - set(roster.rows))),
                  tuple(s for s in roster.rows if s not in graded))


def feedback_text(record: Record, lang: str = "en") -> str:
    """One line in ``lang``: accuracy, checks passed and score; or why there is no grade."""
    from grader.report.i18n import class_report_strings, platform_strings

    t = platform_strings(lang)
    result = record.result
    if record.status != "graded" or result is None or result.evaluation is None:
        status = class_report_strings(lang).get(f"class_status_{record.status}", record.status)
        return t["ex_not_graded"].format(status=status, error=record_reason(record, lang) or t["pl_not_graded"])
    checks = result.verdict.checks
    return t["ex_feedback"].format(accuracy=f"{result.evaluation.accuracy * 100:.2f}%", total=len(checks),
                                   passed=sum(c.passed for c in checks), score=f"{result.verdict.score:g}",
                                   max=f"{result.verdict.max_score:g}")


def export_csv(rows: Sequence[Sequence[str]]) -> str:
    """The rows as CSV text with a UTF-8 BOM (Excel reads the file as UTF-8 only with one)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return BOM + buf.getvalue()
