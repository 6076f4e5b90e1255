"""A grade in Gradescope's autograder results format.

    gradescope_results(result, public=None, progress=None, lang="en") -> dict      pure
    limited_results(refusal, progress, max_score) -> dict      a submission over the daily limit
    gradescope_student(root) -> str                      the student id Gradescope's metadata names
    check_title(check, lang), check_output(check, result, lang), summary_text(result, lang)
                                                          the words every platform's output shares

Each test's ``output`` and the plain-text ``output`` are in ``lang`` (``grader gradescope --lang``):
in English as results.json words them, in another language said again from the grade's facts.
With ``progress`` (``grader gradescope``, which reads the earlier submissions), the top-level
``output`` is HTML in the progress's language: the grade, then a table of the student's
submissions (score and test accuracy each).

The format (Gradescope autograder specification, "Output format"): top-level ``score``,
``execution_time`` (seconds), ``output``, ``output_format``, ``visibility``,
``stdout_visibility``, ``tests`` (each ``name``, ``score``, ``max_score``, ``status``,
``output``, ``visibility``) and an optional ``leaderboard`` of ``{name, value, order}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from grader.platforms.attempts import EXTRA_KEY, Attempt, Refusal, attempt_data, day_zone
from grader.platforms.rules import GradescopeRules
from grader.results import GradeResult, check_condition, without_folders
from grader.rubric import CheckResult

PROGRESS_ROWS = 10  # earlier submissions the output lists, newest kept


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


@dataclass(frozen=True)
class Progress:
    """The student's earlier submissions, as the output shows them.

    Attributes:
        attempts: the earlier submissions, oldest first.
        now: this submission's time (``created_at``).
        rules: the rubric's ``[gradescope]`` table (its time zone shows the times).
        lang: "en" or "zh".
    """

    attempts: tuple[Attempt, ...]
    now: datetime
    rules: GradescopeRules = GradescopeRules()
    lang: str = "en"


def gradescope_results(result: GradeResult, *, public: Mapping[str, bool] | None = None,
                       style: GradescopeStyle = STYLE, progress: Progress | None = None, lang: str = "en") -> dict:
    """The Gradescope ``results.json`` object for one grade.

    Args:
        result: the grade (graded or error).
        public: check name -> whether the rubric shows it to students before publication. A
            check the mapping does not name is hidden until publication (a result graded
            with another rubric must not show a hidden check early); None shows every check.
        progress: the earlier submissions: the output becomes HTML with their table, and
            ``extra_data`` keeps this grade's accuracy for the next submission's table.
        lang: the language of each test's name and output and of the plain-text output.
    Returns:
        the object Gradescope reads; every rubric check is one test.
    """
    tests = []
    for number, check in enumerate(result.verdict.checks, start=1):
        visible = True if public is None else public.get(check.name, False)
        tests.append({
            "name": check_title(check, lang),
            "number": str(number),
            "score": _num(check.score),
            "max_score": _num(check.max_score),
            "status": "passed" if check.passed else "failed",
            "output": check_output(check, result, lang),
            "output_format": "text",
            "visibility": style.public_test if visible else style.private_test,
        })
    out = {
        "score": _num(result.verdict.score),
        "execution_time": int(round(_num(result.timings.total))),
        "output": summary_text(result, lang),
        "output_format": "text",
        "visibility": style.visibility,
        "stdout_visibility": style.stdout_visibility,
        "tests": tests,
    }
    leaderboard = leaderboard_entries(result, lang)
    if leaderboard:
        out["leaderboard"] = leaderboard
    if progress is not None:
        out.update(output=progress_html(progress, result=result), output_format="html",
                   extra_data=attempt_data(result))
    return out


def limited_results(refusal: Refusal, progress: Progress, *, max_score: float) -> dict:
    """The results of a submission over the daily limit: the standing submission's score and tests
    (Gradescope counts the latest submission as the active one, so they are copied onto it), and
    an output saying so and when the next attempt is graded."""
    standing = refusal.standing.results if refusal.standing else {}
    out = {key: standing[key] for key in ("tests", "leaderboard", "visibility", "stdout_visibility")
           if key in standing}
    score = refusal.standing.score if refusal.standing else None
    out.update(score=_num(score), execution_time=0,
               output=progress_html(progress, refusal=refusal, max_score=max_score), output_format="html",
               extra_data={EXTRA_KEY: {"graded": False, "limited": True, "accuracy": None}})
    return out


def progress_html(progress: Progress, *, result: GradeResult | None = None, refusal: Refusal | None = None,
                  max_score: float | None = None) -> str:
    """The HTML output: the grade (or the refusal), then the submissions so far, this one last."""
    from grader.report.i18n import platform_strings
    from grader.report.render import environment

    zone, shown = day_zone(progress.now, progress.rules)
    rows = [_row(a, zone) for a in progress.attempts]
    current = {"when": progress.now.astimezone(zone).strftime("%Y-%m-%d %H:%M"), "current": True,
               "score": "–" if result is None or not result.graded else f"{_num(result.verdict.score):g}",
               "accuracy": _percent(result.evaluation.accuracy) if result and result.evaluation else "–"}
    t = platform_strings(progress.lang)
    if result is None:
        current["score"] = t["gs_row_limited"]
    elif not result.graded:
        current["accuracy"] = t["gs_row_not_graded"]
    rows = [{**row, "number": i} for i, row in enumerate([*rows, current], start=1)]
    for row in rows:
        row["score"] = t.get(row["score"], row["score"])  # a note's key, translated
    context = {"t": t, "rows": rows[-PROGRESS_ROWS - 1:], "hidden": max(0, len(rows) - PROGRESS_ROWS - 1),
               "refusal": _refusal_context(refusal, zone, max_score), "max_score": f"{_num(max_score):g}",
               **_grade_context(result, t, progress.lang)}
    return environment().get_template("gradescope_output.html.j2").render(**context)


def _row(attempt: Attempt, zone) -> dict:
    score = "gs_row_limited" if attempt.limited else "gs_row_not_graded" if not attempt.counted else \
        "–" if attempt.score is None else f"{attempt.score:g}"
    return {"when": attempt.submitted.astimezone(zone).strftime("%Y-%m-%d %H:%M"), "current": False,
            "score": score, "accuracy": "–" if attempt.accuracy is None else _percent(attempt.accuracy)}


def _refusal_context(refusal: Refusal | None, zone, max_score: float | None) -> dict | None:
    if refusal is None:
        return None
    standing = refusal.standing
    return {"used": refusal.used, "limit": refusal.limit, "day": refusal.day.isoformat(), "zone": refusal.zone,
            "next_allowed": refusal.next_allowed.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "standing": f"{_num(standing.score):g}" if standing and standing.score is not None else None}


def _grade_context(result: GradeResult | None, t: dict, lang: str) -> dict:
    """The grade's lines: its error, or accuracy and score; the TA's flags either way (in ``lang``)."""
    if result is None:
        return {"error": None, "review": "", "notes": ""}
    e = result.evaluation
    return {"error": None if e is not None else (result.student_error_text(lang) or "unknown error"),
            "accuracy": _percent(e.accuracy) if e else "", "test_count": result.dataset.get("test_count", "?"),
            "official": bool(result.dataset.get("official")), "score": f"{_num(result.verdict.score):g}",
            "max_score": f"{_num(result.verdict.max_score):g}",
            "review": _flag_list(sorted(result.integrity.flags()), t, lang),
            "notes": _flag_list(result.submission_flags, t, lang)}


def _flag_list(flags: list[str], t: dict, lang: str) -> str:
    """Flags as the output lists them: by name in English (as results.json holds them), described
    in words in any other language."""
    if lang == "en":
        return ", ".join(flags)
    return t["gs_flag_sep"].join(t.get(f"flag_{f}", f) for f in flags)


def _percent(fraction: float) -> str:
    return f"{_num(fraction) * 100:.2f}%"


def check_output(check: CheckResult, result: GradeResult, lang: str = "en") -> str:
    """One line per check: its measured value against its threshold, then its detail (in ``lang``;
    ``result``: the grade the check belongs to). The grading machine's folders above the hand-in
    are left out, as everywhere a student reads."""
    return without_folders(_check_output(check, result, lang), result.submission.path) or ""


def _check_output(check: CheckResult, result: GradeResult, lang: str) -> str:
    if lang != "en":
        return _said_check_output(check, result, lang)
    value = check.value
    shown = "unavailable" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
    line = f"{check.metric or check.name} = {shown} (needs {check_condition(check)})"
    if check.borderline:
        line += "; borderline: within the margin of the threshold"
    return f"{line}\n{check.detail}" if check.detail else line


def _said_check_output(check: CheckResult, result: GradeResult, lang: str) -> str:
    """``check_output`` in a language other than English: the check by its name in ``lang``."""
    from grader.report.context import check_detail, check_row
    from grader.report.i18n import platform_strings

    row = check_row(check, platform_strings(lang), lang)
    line = platform_strings(lang)["gs_check"].format(name=row["name"], value=row["value"], condition=row["threshold"])
    return f"{line}\n{check_detail(check, result, lang)}"


def check_title(check: CheckResult, lang: str = "en") -> str:
    """The check's name as a student reads it in ``lang`` (the rubric's ``name_zh`` in Chinese)."""
    from grader.report.context import check_name

    return check.name if lang == "en" else check_name(check, lang)


def summary_text(result: GradeResult, lang: str = "en") -> str:
    """The submission-level message: the error, or accuracy, score and the TA's flags (in ``lang``)."""
    if lang != "en":
        return _said_summary(result, lang)
    if result.evaluation is None:
        return f"Not graded: {result.student_error or 'unknown error'}"
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


def _said_summary(result: GradeResult, lang: str) -> str:
    """``summary_text`` in a language other than English, worded as the HTML output words it."""
    from grader.report.i18n import platform_strings

    t = platform_strings(lang)
    grade = _grade_context(result, t, lang)
    if grade["error"] is not None:
        return t["gs_not_graded"].format(error=grade["error"])
    lines = [t["gs_accuracy"].format(accuracy=grade["accuracy"], n=grade["test_count"])
             + ("" if grade["official"] else t["gs_unofficial"]),
             t["gs_score"].format(score=grade["score"], max=grade["max_score"])]
    if grade["review"]:
        lines.append(t["gs_review"].format(flags=grade["review"]))
    if grade["notes"]:
        lines.append(t["gs_notes"].format(notes=grade["notes"]))
    return "\n".join(lines)


def leaderboard_entries(result: GradeResult, lang: str = "en") -> list[dict]:
    """Accuracy (higher is better) and parameter count (lower is better), when known, named in
    ``lang`` (the leaderboard's column headings, which every student reads)."""
    from grader.report.i18n import platform_strings

    t = platform_strings(lang)
    entries = []
    if result.evaluation is not None:
        entries.append({"name": t["gs_board_accuracy"], "value": round(float(result.evaluation.accuracy) * 100, 2),
                        "order": "desc"})
    if result.model.parameters is not None:
        entries.append({"name": t["gs_board_parameters"], "value": int(result.model.parameters), "order": "asc"})
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
