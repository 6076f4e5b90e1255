"""A grade in Gradescope's autograder results format.

    gradescope_results(result, public=None) -> dict      pure
    gradescope_student(root) -> str                      the student id Gradescope's metadata names

The format (Gradescope autograder specification, "Output format"): top-level ``score``,
``execution_time`` (seconds), ``output``, ``output_format``, ``visibility``,
``stdout_visibility``, ``tests`` (each ``name``, ``score``, ``max_score``, ``status``,
``output``, ``visibility``) and an optional ``leaderboard`` of ``{name, value, order}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from grader.results import GradeResult, check_condition
from grader.rubric import CheckResult


@dataclass(frozen=True)
class GradescopeStyle:
    """Visibility choices for the Gradescope results.

    Attributes:
        visibility: when students see the whole result.
        public_test: visibility of a check the rubric marks public.
        private_test: visibility of a check that is not public (shown once grades are published).
        stdout_visibility: whether students see the autograder's stdout.
    """

    visibility: str = "visible"
    public_test: str = "visible"
    private_test: str = "after_published"
    stdout_visibility: str = "hidden"


STYLE = GradescopeStyle()


def gradescope_results(result: GradeResult, *, public: Mapping[str, bool] | None = None,
                       style: GradescopeStyle = STYLE) -> dict:
    """The Gradescope ``results.json`` object for one grade.

    Args:
        result: the grade (graded or error).
        public: check name -> whether the rubric shows it to students before publication. A
            check the mapping does not name is hidden until publication (a result graded
            with another rubric must not show a hidden check early); None shows every check.
    Returns:
        the object Gradescope reads; every rubric check is one test.
    """
    tests = []
    for number, check in enumerate(result.verdict.checks, start=1):
        visible = True if public is None else public.get(check.name, False)
        tests.append({
            "name": check.name,
            "number": str(number),
            "score": _num(check.score),
            "max_score": _num(check.max_score),
            "status": "passed" if check.passed else "failed",
            "output": check_output(check),
            "output_format": "text",
            "visibility": style.public_test if visible else style.private_test,
        })
    out = {
        "score": _num(result.verdict.score),
        "execution_time": int(round(_num(result.timings.total))),
        "output": summary_text(result),
        "output_format": "text",
        "visibility": style.visibility,
        "stdout_visibility": style.stdout_visibility,
        "tests": tests,
    }
    leaderboard = leaderboard_entries(result)
    if leaderboard:
        out["leaderboard"] = leaderboard
    return out


def check_output(check: CheckResult) -> str:
    """One line per check: its measured value against its threshold, then its detail."""
    value = check.value
    shown = "unavailable" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
    line = f"{check.metric or check.name} = {shown} (needs {check_condition(check)})"
    if check.borderline:
        line += "; borderline: within the margin of the threshold"
    return f"{line}\n{check.detail}" if check.detail else line


def summary_text(result: GradeResult) -> str:
    """The submission-level message: the error, or accuracy, score and the TA's flags."""
    if result.evaluation is None:
        return f"Not graded: {result.error or 'unknown error'}"
    dataset = result.dataset
    lines = [f"Test accuracy: {_num(result.evaluation.accuracy) * 100:.2f}% on "
             f"{dataset.get('test_count', '?')} test images"
             f"{'' if dataset.get('official') else ' (NOT the official CIFAR-10 test set)'}.",
             f"Score: {_num(result.verdict.score):g} / {_num(result.verdict.max_score):g}."]
    flags = result.submission_flags  # the data's own status is in the first line
    review = sorted(result.integrity.flags())
    if review:
        lines.append("This grade is under review by the teaching staff (" + ", ".join(review) + "): "
                     "it may change once they have looked at it.")
    if flags:
        lines.append("Notes: " + ", ".join(flags) + ".")
    return "\n".join(lines)


def leaderboard_entries(result: GradeResult) -> list[dict]:
    """Accuracy (higher is better) and parameter count (lower is better), when known."""
    entries = []
    if result.evaluation is not None:
        entries.append({"name": "Accuracy (%)", "value": round(float(result.evaluation.accuracy) * 100, 2),
                        "order": "desc"})
    if result.model.parameters is not None:
        entries.append({"name": "Parameters", "value": int(result.model.parameters), "order": "asc"})
    return entries


def gradescope_student(root: Path) -> str | None:
    """The student id from Gradescope's ``submission_metadata.json`` (the first user's email, else
    name), or None when it names none."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = meta.get("users") or []
        if users and (users[0].get("email") or users[0].get("name")):
            return str(users[0].get("email") or users[0].get("name"))
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
