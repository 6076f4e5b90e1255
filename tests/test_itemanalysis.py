"""Item analysis over small hand-made classes: each expected figure worked out by hand or by scipy."""

from __future__ import annotations

import dataclasses

import pytest
from scipy.stats import pointbiserialr

from grader.batch.itemanalysis import check_items, is_proportion, point_biserial, shared_ranks, summed_confusion
from grader.results import GradeResult, SandboxFacts, Status, Student, SubmissionFacts
from grader.rubric import CheckResult, Verdict


def check(name: str, value: float | None, passed: bool, *, metric: str = "accuracy", op: str = "0.7 < x <= 1",
          threshold=(0.7, 1.0), borderline: bool = False) -> CheckResult:
    return CheckResult(name, metric, op, list(threshold) if isinstance(threshold, tuple) else threshold,
                       passed, value, 1.0 if passed else 0.0, 1.0, borderline, "")


def student(i: int, *checks: CheckResult) -> GradeResult:
    verdict = Verdict(checks=checks, score=sum(c.score for c in checks), max_score=float(len(checks)))
    return GradeResult(status=Status.GRADED, student=Student(f"s{i}", f"s{i}"), submission=SubmissionFacts(f"s{i}"),
                       dataset={}, sandbox=SandboxFacts(True), verdict=verdict)


def test_point_biserial_matches_scipy_and_is_none_without_variation():
    cases = [([1, 0, 1, 1, 0, 0, 1], [2, 0, 2, 1, 1, 0, 2]),
             ([0, 1, 1, 0, 1], [3.5, 1.0, 0.5, 2.0, 1.5]),  # negatively related
             ([1, 0], [1, 0])]
    for passed, scores in cases:
        expected = pointbiserialr(passed, scores).statistic
        assert point_biserial([bool(p) for p in passed], scores) == pytest.approx(expected, abs=1e-12)
    assert point_biserial([True, True, True], [1, 2, 3]) is None
    assert point_biserial([False, False], [1, 2]) is None
    assert point_biserial([True, False, True], [2, 2, 2]) is None
    with pytest.raises(ValueError, match="2 pass/fail values but 3 scores"):
        point_biserial([True, False], [1, 2, 3])


def test_check_items_discrimination_is_against_the_other_checks():
    # four checks over eight students; "b" rises with the rest, "c" runs against it
    table = [  # a, b, c, d
        (1, 1, 0, 1), (1, 1, 0, 1), (1, 1, 1, 1), (0, 0, 1, 0), (0, 0, 1, 1), (1, 0, 0, 0), (0, 1, 1, 0), (0, 0, 0, 0)]
    results = [student(i, *(check(n, 0.8 if p else 0.6, bool(p)) for n, p in zip("abcd", row)))
               for i, row in enumerate(table)]
    items = {item.name: item for item in check_items(results)}
    for k, name in enumerate("abcd"):
        passed = [row[k] for row in table]
        rest = [sum(row) - row[k] for row in table]
        assert items[name].discrimination == pytest.approx(pointbiserialr(passed, rest).statistic)
        assert (items[name].passed, items[name].total) == (sum(passed), 8)
    assert items["c"].discrimination < 0.2 and items["c"].low
    assert items["b"].discrimination > 0.2 and not items["b"].low


def test_check_items_says_why_there_is_no_discrimination():
    results = [student(0, check("easy", 0.9, True), check("hard", 0.5, False), check("x", 0.9, True)),
               student(1, check("easy", 0.8, True), check("hard", 0.6, False), check("x", 0.6, False))]
    items = {item.name: item for item in check_items(results)}
    assert (items["easy"].discrimination, items["easy"].no_discrimination) == (None, "all-passed")
    assert (items["hard"].discrimination, items["hard"].no_discrimination) == (None, "all-failed")
    assert (items["x"].discrimination, items["x"].no_discrimination) == (None, "rest-constant")
    assert not any(item.low for item in items.values())


def test_accuracy_thresholds_move_by_points_and_others_by_their_share():
    accuracies = [0.685, 0.695, 0.705, 0.715, 0.725, 0.735]
    losses = [0.44, 0.46, 0.49, 0.51, 0.53, 0.56]
    results = [student(i, check("acc", a, a > 0.7, borderline=abs(a - 0.7) < 0.01),
                       check("loss", v, v < 0.5, metric="train_loss", op="x < 0.5", threshold=0.5))
               for i, (a, v) in enumerate(zip(accuracies, losses))]
    items = {item.name: item for item in check_items(results)}
    acc, loss = items["acc"], items["loss"]
    assert not acc.relative and [s.step for s in acc.shifts] == [-0.02, -0.01, 0.0, 0.01, 0.02]
    # bound 0.68, 0.69, 0.70, 0.71, 0.72; the upper bound 1 of a proportion stays
    assert [s.passed for s in acc.shifts] == [6, 5, 4, 3, 2]
    assert acc.borderline == 2
    # x < 0.5 looser by 10% and 5% (0.55, 0.525), stricter (0.475, 0.45)
    assert loss.relative and [s.passed for s in loss.shifts] == [5, 4, 3, 2, 1]


def test_a_check_failed_for_another_reason_stays_failed_and_fixed_bounds_do_not_move():
    results = [student(0, check("claim", 0.9, False), check("ceiling", 0.5, True, op="0 <= x <= 1", threshold=(0, 1))),
               student(1, check("claim", None, False), check("ceiling", 0.2, True, op="0 <= x <= 1", threshold=(0, 1))),
               student(2, check("claim", 0.715, True), check("ceiling", 0.9, True, op="0 <= x <= 1", threshold=(0, 1)))]
    items = {item.name: item for item in check_items(results)}
    assert [s.passed for s in items["claim"].shifts] == [1, 1, 1, 1, 0]  # 0.9 failed its claim: never passes
    assert items["ceiling"].shifts == ()


def test_an_operator_alone_is_read_with_its_threshold():
    results = [student(i, check("params", v, v < 1000, metric="parameters", op="<", threshold=1000))
               for i, v in enumerate([900, 960, 1040])]
    item = check_items(results)[0]
    assert item.relative and [s.passed for s in item.shifts] == [3, 3, 2, 1, 0]  # x < 1100, 1050, 1000, 950, 900


def test_proportions_are_told_by_name():
    assert is_proportion("accuracy") and is_proportion("train_acc") and is_proportion("per_class_precision.min")
    assert not is_proportion("train_loss") and not is_proportion("parameters") and not is_proportion("ece")


def test_shared_ranks_give_ties_the_better_rank_and_skip():
    assert shared_ranks([0.9, 0.8, 0.8, 0.7]) == [1, 2, 2, 4]
    assert shared_ranks([0.5, 0.9, 0.5, 0.5]) == [2, 1, 2, 2]
    assert shared_ranks([]) == []


def test_summed_confusion_adds_the_matrices_of_the_same_classes():
    from tests.test_batch import synthetic_results

    def with_matrix(name, matrix, classes=None):
        r = synthetic_results(name, 0.8)
        e = r.evaluation
        per_class = {c: 0.5 for c in (classes or list(e.per_class_accuracy)[:2])}
        return r.replace(evaluation=dataclasses.replace(e, per_class_accuracy=per_class, confusion_matrix=matrix))

    results = [with_matrix("a", [[8, 2], [1, 9]]), with_matrix("b", [[6, 4], [0, 10]]),
               with_matrix("c", [[1, 0], [0, 1]], classes=["x", "y"]), synthetic_results("d", None, error="bad")]
    summed = summed_confusion(results)
    assert summed.matrix == ((14, 6), (1, 19)) and (summed.included, summed.skipped) == (2, 1)
    assert summed.row_shares() == [[0.7, 0.3], [0.05, 0.95]]
    assert summed_confusion(results[3:]) is None
