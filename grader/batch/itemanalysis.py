"""Item analysis: how each rubric check behaves over a class, as a test item would. Pure.

    check_items(results) -> [CheckItem]        per check: pass rate, discrimination, borderline
                                               count, passes with the threshold moved
    point_biserial(passed, scores) -> float | None
    shared_ranks(values) -> [int]              1, 2, 2, 4: tied values share a rank
    summed_confusion(results) -> SummedConfusion | None

The population is what the caller passes: the class report passes the graded submissions only
(one not graded fails every check whatever its work, which would say nothing about the check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from grader.errors import GraderError
from grader.results import GradeResult
from grader.rubric import ALIASES, Check, CheckResult, parse_rubric


@dataclass(frozen=True)
class ItemStyle:
    """Tunables of the item analysis.

    Attributes:
        low_discrimination: a discrimination below this is flagged (the check hardly tells
            stronger submissions from weaker ones).
        point_steps: threshold moves for accuracy-type metrics (proportions), in fractions
            (0.01 = 1 percentage point).
        relative_steps: threshold moves for any other metric, as fractions of the bound's value.
    """

    low_discrimination: float = 0.2
    point_steps: tuple[float, ...] = (0.01, 0.02)
    relative_steps: tuple[float, ...] = (0.05, 0.10)


ITEM_STYLE = ItemStyle()
# Metric names holding a proportion in [0, 1]: their thresholds move by percentage points.
PROPORTION_WORDS = ("acc", "precision")


@dataclass(frozen=True)
class Shift:
    """How many submissions pass with a check's bounds moved by ``step``.

    Attributes:
        step: the move, signed: > 0 stricter (a lower bound up, an upper bound down), < 0 looser.
        passed: submissions that would pass.
    """

    step: float
    passed: int


@dataclass(frozen=True)
class CheckItem:
    """One check over a class.

    Attributes:
        name, metric, condition: the check as the rubric wrote it.
        name_zh: its Chinese name, for reports in Chinese ("" when the rubric gives none).
        passed, total: submissions passing it, and submissions it was applied to.
        discrimination: point-biserial correlation between passing this check and the score
            on the other checks, or None (see ``no_discrimination``).
        no_discrimination: why there is none: "all-passed", "all-failed", "rest-constant"
            (every submission scores the same on the other checks), or "" when there is one.
        low: the discrimination is below ``ItemStyle.low_discrimination``.
        borderline: submissions whose value lies within the 95% interval of a bound.
        relative: steps are fractions of the bounds (False: percentage points).
        shifts: passes with the bounds moved, loosest first, the rubric's own (step 0) in the
            middle; empty when no bound can move (a condition unreadable, or bounds at 0 or 1
            for a proportion).
    """

    name: str
    metric: str
    condition: str
    passed: int
    total: int
    discrimination: float | None
    no_discrimination: str
    low: bool
    borderline: int
    relative: bool
    shifts: tuple[Shift, ...]
    name_zh: str = ""

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class SummedConfusion:
    """The confusion matrices of a class added up.

    Attributes:
        classes: class names, in the matrices' order.
        matrix: rows true class, columns predicted class, counts summed over ``included``.
        included: submissions summed.
        skipped: submissions left out (graded on another set of classes).
    """

    classes: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]
    included: int
    skipped: int

    def row_shares(self) -> list[list[float]]:
        """Each row as fractions of its total (0 for an empty row)."""
        return [[v / (sum(row) or 1) for v in row] for row in self.matrix]


def point_biserial(passed: Sequence[bool], scores: Sequence[float]) -> float | None:
    """The point-biserial correlation of a pass/fail item with ``scores`` (Pearson's r with the
    item as 0/1); None when either side does not vary.

    Raises:
        ValueError: when the two sequences differ in length.
    """
    if len(passed) != len(scores):
        raise ValueError(f"{len(passed)} pass/fail values but {len(scores)} scores")
    n = len(scores)
    p = sum(1 for x in passed if x) / n if n else 0.0
    mean = sum(scores) / n if n else 0.0
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / n) if n else 0.0
    if p in (0.0, 1.0) or sd < 1e-9:
        return None
    mean_passed = sum(s for s, x in zip(scores, passed) if x) / (p * n)
    mean_failed = sum(s for s, x in zip(scores, passed) if not x) / ((1 - p) * n)
    return (mean_passed - mean_failed) / sd * math.sqrt(p * (1 - p))


def shared_ranks(values: Sequence[float]) -> list[int]:
    """Competition ranks of ``values``, highest first: equal values share the better rank and the
    next rank skips (0.9, 0.8, 0.8, 0.7 -> 1, 2, 2, 4). Compare rounded values for ties as shown."""
    order = sorted(values, reverse=True)
    first = {}
    for rank, v in enumerate(order, start=1):
        first.setdefault(v, rank)
    return [first[v] for v in values]


def check_items(results: Sequence[GradeResult], style: ItemStyle = ITEM_STYLE) -> list[CheckItem]:
    """Every check of ``results``' verdicts over them, in rubric order (first seen first)."""
    by_name: dict[str, list[tuple[CheckResult, float]]] = {}
    for r in results:
        for c in r.verdict.checks:
            by_name.setdefault(c.name, []).append((c, r.verdict.score - c.score))
    return [_item(rows, style) for rows in by_name.values()]


def _item(rows: list[tuple[CheckResult, float]], style: ItemStyle) -> CheckItem:
    checks = [c for c, _ in rows]
    passed = [c.passed for c in checks]
    r = point_biserial(passed, [rest for _, rest in rows])
    why = "" if r is not None else ("all-passed" if all(passed) else "all-failed" if not any(passed)
                                    else "rest-constant")
    first = checks[0]
    relative = not is_proportion(first.metric)
    steps = style.relative_steps if relative else style.point_steps
    signed = (*(-s for s in reversed(steps)), 0.0, *steps)
    bounds = _bounds(first)
    shifts = () if bounds is None or not _movable(bounds, relative) else tuple(
        Shift(step, sum(1 for c in checks if _passes_moved(bounds, c, step, relative))) for step in signed)
    return CheckItem(first.name, first.metric, first.op, sum(passed), len(checks), r, why,
                     r is not None and r < style.low_discrimination, sum(1 for c in checks if c.borderline),
                     relative, shifts, first.name_zh)


def is_proportion(metric: str) -> bool:
    """Whether ``metric`` (or the metric its alias names) holds a proportion in [0, 1]."""
    name = ALIASES.get(metric, metric)
    return any(word in part for part in name.split(".") for word in PROPORTION_WORDS)


def _bounds(c: CheckResult) -> Check | None:
    """The check's bounds, read back from its condition; None when the condition is not one."""
    condition = c.op if "x" in c.op else f"x {c.op} {c.threshold}"  # results.json that kept the operator alone
    try:
        return parse_rubric({"check": [{"metric": c.metric, "condition": condition}]}).checks[0]
    except GraderError:
        return None


def _fixed(bound: float, relative: bool) -> bool:
    """A bound that moving would not make sense of: 0, or a proportion's own limit 0 or 1."""
    return bound == 0 or (not relative and bound >= 1)


def _movable(bounds: Check, relative: bool) -> bool:
    return any(b is not None and not _fixed(b, relative) for b in (bounds.lower, bounds.upper))


def _passes_moved(bounds: Check, c: CheckResult, step: float, relative: bool) -> bool:
    """Whether ``c``'s value passes with each movable bound moved ``step`` towards stricter (a check
    failed for another reason than its value, such as a claim the network does not back, stays failed)."""
    if c.value is None or (not c.passed and bounds.holds(c.value)):
        return False

    def moved(bound: float | None, sign: int) -> float | None:
        if bound is None or _fixed(bound, relative):
            return bound
        return bound + sign * step * (abs(bound) if relative else 1.0)

    return replace(bounds, lower=moved(bounds.lower, +1), upper=moved(bounds.upper, -1)).holds(c.value)


def summed_confusion(results: Sequence[GradeResult]) -> SummedConfusion | None:
    """The confusion matrices of the graded ``results`` added up; None when none has one. The
    first result's classes set the order; a result on other classes is skipped and counted."""
    evaluations = [r.evaluation for r in results if r.graded and r.evaluation is not None]
    if not evaluations:
        return None
    classes = tuple(evaluations[0].per_class_accuracy)
    total = [[0] * len(classes) for _ in classes]
    included = 0
    for e in evaluations:
        if tuple(e.per_class_accuracy) != classes:
            continue
        included += 1
        for i, row in enumerate(e.confusion_matrix):
            for j, v in enumerate(row):
                total[i][j] += int(v)
    return SummedConfusion(classes, tuple(map(tuple, total)), included, len(evaluations) - included)
