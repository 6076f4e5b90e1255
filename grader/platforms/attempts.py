"""A student's earlier Gradescope submissions: the daily limit and the progress they show.

    read_metadata(root) -> dict | None             ROOT/submission_metadata.json, None when absent
    submission_time(meta) -> datetime              the current submission's ``created_at``
    earlier_attempts(meta) -> [Attempt]            ``previous_submissions``, oldest first
    limit_refusal(attempts, now, rules) -> Refusal | None   over the day's limit?
    attempt_data(result) -> dict                   what this grade leaves for the next submission

Gradescope's ``submission_metadata.json`` (autograder documentation, "Submission Metadata")
holds ``created_at`` (this submission's time, with the course's UTC offset) and
``previous_submissions``, each with ``submission_time``, ``score`` and ``results`` (the
results.json object that submission got). Days are counted from ``created_at``, never from the
clock, so that "Regrade all submissions" counts the same way again.

An attempt counts against the limit when it was graded: a hand-in that could not be graded, and
one refused for the limit, do not. grader marks both in its results' ``extra_data``; results
without that mark (another autograder's) count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.platforms.rules import GradescopeRules, zone_info
from grader.results import GradeResult

METADATA_NAME = "submission_metadata.json"
EXTRA_KEY = "grader"  # results.json extra_data key under which a grade leaves its facts


@dataclass(frozen=True)
class Attempt:
    """One earlier submission.

    Attributes:
        submitted: when it was submitted (aware).
        score: the points it got (None when Gradescope recorded none).
        accuracy: its measured test accuracy, 0..1 (None: not graded, or unknown).
        counted: whether it counts against the daily limit (it was graded).
        limited: it was refused for the limit, and kept the score before it.
        results: its results object, as Gradescope kept it.
    """

    submitted: datetime
    score: float | None
    accuracy: float | None
    counted: bool
    limited: bool
    results: dict


@dataclass(frozen=True)
class Refusal:
    """Why this submission is not graded.

    Attributes:
        used: graded submissions on this day.
        limit: the rubric's ``max_submissions_per_day``.
        day: the calendar day, in ``zone``.
        zone: the zone's name as shown (``Asia/Shanghai``, ``UTC-07:00``).
        next_allowed: when the next graded attempt is allowed (midnight of the next day, in ``zone``).
        standing: the attempt whose results stand (the latest earlier one), None when there is none.
    """

    used: int
    limit: int
    day: date
    zone: str
    next_allowed: datetime
    standing: Attempt | None


def read_metadata(root: Path) -> dict | None:
    """``ROOT/submission_metadata.json``; None when there is none (a run outside Gradescope).

    Raises:
        GraderError: when the file exists but is not a JSON object.
    """
    path = Path(root) / METADATA_NAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GraderError(f"{path} cannot be read as JSON ({exc})", "Gradescope writes it; run inside Gradescope, "
                          "or remove it from --root to grade without the earlier submissions") from None
    if not isinstance(meta, dict):
        raise GraderError(f"{path} is not a JSON object", "Gradescope writes it as one; remove the file")
    return meta


def submission_time(meta: dict) -> datetime:
    """This submission's time, ``created_at``.

    Raises:
        GraderError: when it is missing or not an ISO 8601 time with an offset.
    """
    found = _time(meta.get("created_at"))
    if found is None:
        raise GraderError(f"{METADATA_NAME} has no usable created_at ({meta.get('created_at')!r})",
                          "Gradescope writes it; without it the daily limit cannot be counted")
    return found


def earlier_attempts(meta: dict) -> list[Attempt]:
    """``previous_submissions`` as Attempts, oldest first; entries without a time are left out."""
    attempts = []
    for entry in meta.get("previous_submissions") or []:
        if not isinstance(entry, dict) or _time(entry.get("submission_time")) is None:
            continue
        results = entry.get("results") if isinstance(entry.get("results"), dict) else {}
        mark = (results.get("extra_data") or {}).get(EXTRA_KEY) if isinstance(results.get("extra_data"), dict) else None
        mark = mark if isinstance(mark, dict) else {}
        attempts.append(Attempt(
            submitted=_time(entry["submission_time"]), score=_number(entry.get("score", results.get("score"))),
            accuracy=_number(mark["accuracy"]) if "accuracy" in mark else _board_accuracy(results),
            counted=bool(mark.get("graded", True)), limited=bool(mark.get("limited", False)), results=results))
    return sorted(attempts, key=lambda a: a.submitted)


def limit_refusal(attempts: list[Attempt], now: datetime, rules: GradescopeRules) -> Refusal | None:
    """A Refusal when the graded attempts on ``now``'s day reach the rubric's limit; else None."""
    limit = rules.max_submissions_per_day
    if limit is None:
        return None
    zone, shown = day_zone(now, rules)
    day = now.astimezone(zone).date()
    used = sum(1 for a in attempts if a.counted and a.submitted <= now and a.submitted.astimezone(zone).date() == day)
    if used < limit:
        return None
    next_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    earlier = [a for a in attempts if a.submitted <= now]
    return Refusal(used, limit, day, shown, next_day, earlier[-1] if earlier else None)


def day_zone(now: datetime, rules: GradescopeRules) -> tuple[tzinfo, str]:
    """The zone whose day counts, and its name as shown: the rubric's, else ``now``'s own offset."""
    if rules.time_zone:
        return zone_info(rules.time_zone), rules.time_zone
    offset = now.utcoffset() or timedelta(0)
    return now.tzinfo, "UTC" + (f"{'+' if offset >= timedelta(0) else '-'}{_hhmm(abs(offset))}" if offset else "")


def attempt_data(result: GradeResult) -> dict:
    """The facts a grade leaves in its results' ``extra_data`` for the next submission to read."""
    accuracy = None if result.evaluation is None else round(float(result.evaluation.accuracy), 6)
    return {EXTRA_KEY: {"graded": result.graded, "limited": False, "accuracy": accuracy}}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _board_accuracy(results: dict) -> float | None:
    """The accuracy an older result shows only on its leaderboard (``Accuracy (%)``, in any language)."""
    from grader.messages import LANGS
    from grader.report.i18n import platform_strings

    names = {platform_strings(lang)["gs_board_accuracy"] for lang in LANGS}
    for entry in results.get("leaderboard") or []:
        if isinstance(entry, dict) and entry.get("name") in names:
            value = _number(entry.get("value"))
            return None if value is None else value / 100
    return None


def _hhmm(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
