"""results.json -> Gradescope's autograder results format, and a validator for it.

    gradescope_results(results, public=None) -> dict      pure
    validate_gradescope(obj) -> list[str]                  problems; [] when valid

The format (Gradescope autograder specification, "Output format"): top-level ``score``,
``execution_time`` (seconds), ``output``, ``output_format``, ``visibility``,
``stdout_visibility``, ``tests`` (each ``name``, ``score``, ``max_score``, ``status``,
``output``, ``visibility``) and an optional ``leaderboard`` of ``{name, value, order}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from grader.results import check_condition, submission_flags

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
OUTPUT_FORMATS = ("text", "html", "simple_format", "md", "ansi")
STATUSES = ("passed", "failed")
ORDERS = ("asc", "desc")
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format",
            "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output",
             "output_format", "tags", "visibility", "extra_data"}


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


def gradescope_results(results: Mapping[str, Any], *, public: Mapping[str, bool] | None = None,
                       style: GradescopeStyle = STYLE) -> dict:
    """The Gradescope ``results.json`` object for one results.json dict.

    Args:
        results: a results.json dict (graded or error).
        public: check name -> whether the rubric shows it to students before publication. A
            check the mapping does not name is hidden until publication (a results.json graded
            with another rubric must not show a hidden check early); None shows every check.
    Returns:
        a dict that ``validate_gradescope`` accepts; every rubric check is one test.
    """
    tests = []
    for number, check in enumerate(results.get("checks") or [], start=1):
        visible = True if public is None else public.get(check["name"], False)
        tests.append({
            "name": check["name"],
            "number": str(number),
            "score": _num(check.get("score")),
            "max_score": _num(check.get("max_score")),
            "status": "passed" if check.get("passed") else "failed",
            "output": check_output(check),
            "output_format": "text",
            "visibility": style.public_test if visible else style.private_test,
        })
    out = {
        "score": _num(results.get("score")),
        "execution_time": int(round(_num((results.get("timings") or {}).get("total")))),
        "output": summary_text(results),
        "output_format": "text",
        "visibility": style.visibility,
        "stdout_visibility": style.stdout_visibility,
        "tests": tests,
    }
    leaderboard = leaderboard_entries(results)
    if leaderboard:
        out["leaderboard"] = leaderboard
    return out


def check_output(check: Mapping[str, Any]) -> str:
    """One line per check: its measured value against its threshold, then its detail."""
    value = check.get("value")
    shown = "unavailable" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
    line = f"{check.get('metric', check['name'])} = {shown} (needs {check_condition(check)})"
    if check.get("borderline"):
        line += "; borderline: within the margin of the threshold"
    detail = check.get("detail")
    return f"{line}\n{detail}" if detail else line


def summary_text(results: Mapping[str, Any]) -> str:
    """The submission-level message: the error, or accuracy, score and the TA's flags."""
    if results.get("status") != "graded":
        return f"Not graded: {results.get('error') or 'unknown error'}"
    dataset = results.get("dataset") or {}
    lines = [f"Test accuracy: {_num(results.get('accuracy')) * 100:.2f}% on "
             f"{dataset.get('test_count', '?')} test images"
             f"{'' if dataset.get('official') else ' (NOT the official CIFAR-10 test set)'}.",
             f"Score: {_num(results.get('score')):g} / {_num(results.get('max_score')):g}."]
    flags = submission_flags(results)  # the data's own status is in the first line
    if flags:
        lines.append("Notes: " + ", ".join(flags) + ".")
    return "\n".join(lines)


def leaderboard_entries(results: Mapping[str, Any]) -> list[dict]:
    """Accuracy (higher is better) and parameter count (lower is better), when known."""
    entries = []
    if results.get("accuracy") is not None:
        entries.append({"name": "Accuracy (%)", "value": round(float(results["accuracy"]) * 100, 2),
                        "order": "desc"})
    parameters = (results.get("model") or {}).get("parameters")
    if parameters is not None:
        entries.append({"name": "Parameters", "value": int(parameters), "order": "asc"})
    return entries


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def validate_gradescope(obj: Any) -> list[str]:
    """Check ``obj`` against the Gradescope results format; returns the problems found ([] = valid)."""
    if not isinstance(obj, dict):
        return [f"results must be a JSON object, not {type(obj).__name__}"]
    problems = [f"unknown top-level key {k!r}" for k in sorted(set(obj) - TOP_KEYS)]
    tests = obj.get("tests")
    if "score" not in obj and not (isinstance(tests, list) and tests
                                   and all(isinstance(t, dict) and "score" in t for t in tests)):
        problems.append("score is required unless every test has one")
    problems += _check_number(obj, "score", "score")
    problems += _check_number(obj, "execution_time", "execution_time", integer=True)
    problems += _check_string(obj, "output", "output")
    problems += _check_choice(obj, "output_format", OUTPUT_FORMATS, "output_format")
    problems += _check_choice(obj, "visibility", VISIBILITIES, "visibility")
    problems += _check_choice(obj, "stdout_visibility", VISIBILITIES, "stdout_visibility")
    if tests is not None:
        if not isinstance(tests, list):
            problems.append("tests must be a list")
        else:
            for i, test in enumerate(tests):
                problems += _validate_test(test, f"tests[{i}]")
    board = obj.get("leaderboard")
    if board is not None:
        if not isinstance(board, list):
            problems.append("leaderboard must be a list")
        else:
            for i, entry in enumerate(board):
                where = f"leaderboard[{i}]"
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or "value" not in entry:
                    problems.append(f"{where} must be an object with a string name and a value")
                    continue
                if not isinstance(entry["value"], (int, float, str)) or isinstance(entry["value"], bool):
                    problems.append(f"{where}.value must be a number or a string")
                problems += _check_choice(entry, "order", ORDERS, f"{where}.order")
    return problems


def _validate_test(test: Any, where: str) -> list[str]:
    if not isinstance(test, dict):
        return [f"{where} must be an object"]
    problems = [f"{where}: unknown key {k!r}" for k in sorted(set(test) - TEST_KEYS)]
    if not isinstance(test.get("name"), str) or not test.get("name"):
        problems.append(f"{where}.name must be a non-empty string")
    problems += _check_number(test, "score", f"{where}.score")
    problems += _check_number(test, "max_score", f"{where}.max_score")
    problems += _check_choice(test, "status", STATUSES, f"{where}.status")
    problems += _check_string(test, "output", f"{where}.output")
    problems += _check_string(test, "number", f"{where}.number")
    problems += _check_choice(test, "output_format", OUTPUT_FORMATS, f"{where}.output_format")
    problems += _check_choice(test, "visibility", VISIBILITIES, f"{where}.visibility")
    return problems


def _check_number(obj: dict, key: str, where: str, *, integer: bool = False) -> list[str]:
    if key not in obj:
        return []
    value = obj[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and isinstance(value, float) and not value.is_integer():
        ok = False
    return [] if ok else [f"{where} must be a finite {'integer' if integer else 'number'}, got {value!r}"]


def _check_string(obj: dict, key: str, where: str) -> list[str]:
    return [] if key not in obj or isinstance(obj[key], str) else [f"{where} must be a string"]


def _check_choice(obj: dict, key: str, choices: tuple[str, ...], where: str) -> list[str]:
    if key not in obj or obj[key] in choices:
        return []
    return [f"{where} must be one of {', '.join(choices)}, got {obj[key]!r}"]
