"""Rubric parsing and arithmetic: pass/fail, partial credit, borderline, missing values."""

from __future__ import annotations

import pytest

from grader.errors import GraderError
from grader.rubric import check, load_rubric, parse_rubric


def results(accuracy=0.75, history=None, n=10000, **extra) -> dict:
    """A graded result's metrics, as ``grader.results.metrics`` names them."""
    out = {"accuracy": accuracy, "dataset.test_count": n, "per_class_accuracy.cat": 0.5,
           "per_class_accuracy.dog": 0.9, "per_class_accuracy.min": 0.5, "per_class_count.cat": 1000,
           "per_class_count.dog": 1000, "per_class_count.min": 1000, "model.parameters": 1_244_106}
    for key, values in (history or {}).items():
        out[f"history.{key}"] = values[-1]
    out.update(extra)
    return out


def rubric(*checks, limits=None):
    data = {"check": list(checks)}
    if limits:
        data["limits"] = limits
    return parse_rubric(data)


def test_default_rubric_is_the_homeworks_assertions():
    default = load_rubric()
    assert [(c.metric, c.condition) for c in default.checks] == [
        ("history.train_loss", "x < 0.5"), ("history.train_acc", "0.7 < x <= 1"), ("accuracy", "0.7 < x <= 1")]
    assert default.limits.wall_seconds > 0 and default.max_score == 3
    verdict = check(results(0.75, {"train_loss": [1.0, 0.49], "train_acc": [0.5, 0.71]}), default)
    assert verdict.passed and verdict.score == 3
    verdict = check(results(0.7, {"train_loss": [0.5], "train_acc": [1.0]}), default)
    assert [c.passed for c in verdict.checks] == [False, True, False]  # 0.5 < 0.5 and 0.7 < 0.7 fail
    assert verdict.score == 1


def test_a_check_carries_its_chinese_name_into_the_verdict():
    verdict = check(results(0.9), rubric({"name": "test accuracy", "name_zh": "测试准确率", "metric": "accuracy",
                                           "condition": "x > 0.7"}, {"metric": "accuracy", "condition": "x > 0.5"}))
    assert [c.name_zh for c in verdict.checks] == ["测试准确率", ""]
    assert all(c.name_zh for c in load_rubric().checks)  # the default rubric reads in Chinese too


def test_missing_history_fails_with_a_detail_that_says_what_to_do():
    verdict = check(results(0.9), load_rubric())
    missing = verdict.checks[0]
    assert not missing.passed and missing.value is None and "history" in missing.detail
    assert verdict.checks[2].passed


def test_partial_credit_between_floor_and_target():
    r = rubric({"metric": "accuracy", "condition": "x >= 0.6", "points": 10, "floor": 0.5, "target": 0.8})
    passing_short = check(results(0.65), r)  # passes the condition, short of the target
    assert passing_short.score == pytest.approx(5.0) and passing_short.passed
    near_miss = check(results(0.55), r)  # fails the condition, above the floor: some points
    assert near_miss.score == pytest.approx(10 / 6) and not near_miss.passed
    assert check(results(0.9), r).score == 10 and check(results(0.4), r).score == 0
    down = rubric({"metric": "loss", "condition": "x < 1", "points": 4, "floor": 2.0, "target": 1.0})
    assert check(results(loss=1.5), down).score == pytest.approx(2.0)
    assert check(results(loss=0.5), down).score == 4 and check(results(loss=3.0), down).score == 0


def test_borderline_when_the_threshold_is_inside_the_interval():
    r = rubric({"metric": "accuracy", "condition": "0.7 < x <= 1"})
    near, far = check(results(0.705), r), check(results(0.75), r)
    assert near.borderline and near.checks[0].passed and not far.borderline
    assert check(results(0.705, n=100000), r).borderline is False  # a bigger test set is surer
    assert not check(results(1.0), r).borderline  # the upper bound 1 is never uncertain


def test_per_class_minimum_and_parameter_budget():
    r = rubric({"metric": "per_class_accuracy.min", "condition": "x >= 0.6"},
               {"metric": "model.parameters", "condition": "x <= 2e6", "points": 2},
               {"metric": "per_class_accuracy.dog", "condition": "x > 0.8", "public": False})
    verdict = check(results(), r)
    assert [c.passed for c in verdict.checks] == [False, True, True]
    assert verdict.checks[0].value == 0.5 and verdict.score == 3 and verdict.max_score == 4
    assert len(r.public().checks) == 2


def test_error_result_fails_every_check_naming_the_error():
    verdict = check({}, load_rubric(), not_graded="model.py failed to import")
    assert verdict.score == 0 and all("model.py failed" in c.detail for c in verdict.checks)


@pytest.mark.parametrize("raw, match", [
    ({"metric": "accuracy", "condition": "accuracy > 0.7"}, "not understood"),
    ({"metric": "accuracy", "condition": "0.1 < x > 0.7"}, "twice"),
    ({"metric": "accuracy", "condition": "x > 0.7", "floor": 0.5}, "both floor and target"),
    ({"metric": "accuracy", "condition": "x > 0.7", "ponts": 1}, "unknown key"),
    ({"condition": "x > 0.7"}, "metric is missing"),
    ({"metric": "accurcy", "condition": "x > 0.7"}, 'metric "accurcy" is not in results.json'),
    ({"metric": "per_class_accuracy.catt", "condition": "x > 0.7"}, 'per_class_accuracy has no "catt"'),
    ({"metric": "model.paramters", "condition": "x < 1e6"}, 'model has no "paramters"'),
    ({"metric": "history.train_los", "condition": "x < 0.5"}, 'history has no "train_los"'),
    ({"metric": "accuracy", "condition": "0.9 < x < 0.1"}, "holds for no value"),
    ({"metric": "accuracy", "condition": "0.5 < x <= 0.5"}, "holds for no value"),
    ({"metric": "accuracy", "condition": "x > 0.7", "name_zh": 7}, "name_zh must be a string"),
])
def test_bad_checks_are_named(raw, match):
    with pytest.raises(GraderError, match=match):
        rubric(raw)


@pytest.mark.parametrize("metric", ["per_class_accuracy.cat", "per_class_precision.min", "model.parameters",
                                    "model.latency_ms_per_image", "history.test_acc", "history.train_loss",
                                    "train_acc", "test_acc", "top2_accuracy", "accuracy_ci.min", "history.test_acc.max"])
def test_every_documented_metric_is_accepted(metric):
    assert rubric({"metric": metric, "condition": "x >= 0"}).checks[0].metric == metric


def test_metric_paths_start_at_the_keys_of_results_json():
    from grader.metric_names import RESULT_KEYS
    from grader.results import new_result

    assert tuple(new_result("s.pth", dataset={}, sandbox=True).to_json()) == RESULT_KEYS


def test_limits_and_files(tmp_path):
    r = rubric({"metric": "accuracy", "condition": "x > 0"}, limits={"wall_seconds": 60, "memory_mb": 1024})
    assert (r.limits.wall_seconds, r.limits.memory_mb) == (60.0, 1024)
    with pytest.raises(GraderError, match="memory_gb"):
        rubric({"metric": "accuracy", "condition": "x > 0"}, limits={"memory_gb": 1})
    for too_little in ({"memory_mb": 0.5}, {"memory_mb": 768}, {"wall_seconds": 3}):  # no child could run
        with pytest.raises(GraderError, match="must be a number of at least") as refused:
            rubric({"metric": "accuracy", "condition": "x > 0"}, limits=too_little)
        assert "hint: " in str(refused.value)
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf[[check]]\nmetric = 'accuracy'\ncondition = 'x > 0'\n")
    assert load_rubric(tmp_path / "bom.toml").checks[0].metric == "accuracy"  # Windows Notepad's BOM
    (tmp_path / "r.toml").write_text("[[check]\n")
    with pytest.raises(GraderError, match="not valid TOML"):
        load_rubric(tmp_path / "r.toml")
    with pytest.raises(GraderError, match="cannot be read: Is a directory"):
        load_rubric(tmp_path)  # a folder given for the file: an OSError, not a crash


def test_submission_table_names_the_checkpoint_and_the_class_wide_model_code(tmp_path):
    (tmp_path / "net.py").write_text("import torch.nn as nn\nclass Net(nn.Module):\n    pass\n")
    path = tmp_path / "rubric.toml"
    path.write_text('[submission]\nweights = "models/HW2_CNN.pth"\nmodel_code = "net.py"\n\n'
                    '[[check]]\nmetric = "accuracy"\ncondition = "x > 0.5"\n')
    r = load_rubric(path)
    assert r.intake.weights == "models/HW2_CNN.pth" and r.intake.model_code == (tmp_path / "net.py").resolve()
    assert r.public().intake == r.intake
    other = tmp_path / "other.py"
    other.write_text("")
    assert r.with_model_code(other).intake.model_code == other.resolve()  # --model-code wins
    assert r.with_model_code(None) is r
    assert not r.intake.apply_diagnosis  # by default a diagnosed hand-in is graded as handed in
    fixing = parse_rubric({"submission": {"apply_diagnosis": True, "diagnosis_penalty": 0.2},
                           "check": [{"metric": "accuracy", "condition": "x > 0.5"}]})
    assert fixing.intake.apply_diagnosis and fixing.intake.diagnosis_penalty == 0.2


@pytest.mark.parametrize("table, match", [
    ({"weight": "a.pth"}, "unknown \\[submission\\] key"),
    ({"weights": ""}, "non-empty string"),
    ({"model_code": "missing.py"}, "is not a file"),
    ({"apply_diagnosis": "yes"}, "apply_diagnosis must be true or false"),
    ({"apply_diagnosis": True, "diagnosis_penalty": 1.5}, "from 0 to 1"),
    ({"apply_diagnosis": True, "diagnosis_penalty": True}, "from 0 to 1"),
    ({"diagnosis_penalty": 0.2}, "apply_diagnosis is not"),
])
def test_bad_submission_tables_are_named(table, match):
    with pytest.raises(GraderError, match=match):
        parse_rubric({"submission": table, "check": [{"metric": "accuracy", "condition": "x > 0"}]})
