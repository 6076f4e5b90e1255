"""A validator of Gradescope's autograder results format, for the tests (not shipped).

    validate_gradescope(obj) -> list[str]      problems; [] when valid

From the Gradescope autograder specification, "Output format".
"""

from __future__ import annotations

import math
from typing import Any

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
OUTPUT_FORMATS = ("text", "html", "simple_format", "md", "ansi")
STATUSES = ("passed", "failed")
ORDERS = ("asc", "desc")
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format",
            "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output",
             "output_format", "tags", "visibility", "extra_data"}


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
