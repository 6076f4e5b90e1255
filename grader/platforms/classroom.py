"""A grade as a GitHub Classroom autograding runner's result.

    classroom_result(result, lang="en") -> dict          pure
    output_line(obj) -> str                   ``result=<base64 of the JSON>``, one line

The autograding reporter (``classroom-resources/autograding-grading-reporter``) reads each runner's
``result`` step output, base64 of ``{"version", "status", "max_score", "tests"}``, each test
``{"name", "status", "score", "max_score", "message"}``; ``status`` is ``pass``, ``fail`` or
``error``. It sums the tests' scores into the grade GitHub Classroom records. Test names and
messages are in ``lang`` (``grader classroom --lang``) and name the hand-in by its own name.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from grader.platforms.gradescope import check_output, check_title, summary_text
from grader.results import GradeResult

VERSION = 1
OUTPUT_NAME = "result"


def classroom_result(result: GradeResult, lang: str = "en") -> dict:
    """The runner result for one grade: one test per rubric check, ``error`` for a hand-in that
    was not graded (every check then scores 0 with the reason as its message)."""
    if not result.graded:
        status = "error"
    else:
        status = "pass" if result.passed else "fail"
    tests = []
    for check in result.verdict.checks:
        message = check_output(check, result, lang) if result.graded else summary_text(result, lang)
        tests.append({"name": check_title(check, lang), "status": ("pass" if check.passed else "fail") if result.graded else "error",
                      "score": _num(check.score), "max_score": _num(check.max_score), "message": message})
    return {"version": VERSION, "status": status, "max_score": _num(result.verdict.max_score), "tests": tests}


def output_line(obj: dict) -> str:
    """``result=<base64>`` as a GitHub Actions step output line (base64 has no newline to escape)."""
    blob = json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return f"{OUTPUT_NAME}={base64.b64encode(blob).decode('ascii')}"


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
