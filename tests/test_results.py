"""The typed grade result: results.json in and out, and the metrics a rubric reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.metric_names import RESULT_KEYS
from grader.results import GradeResult, Status, metrics, read_results, write_results

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"results_{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["graded", "error"])
def test_results_written_by_earlier_graders_still_read(name):
    old = fixture(name)  # written before per_class_count, memorisation and notes existed
    result = GradeResult.from_json(old)
    assert result.status is Status(old["status"]) and result.student.id == old["student"]["id"]
    again = result.to_json()
    assert tuple(again) == RESULT_KEYS
    for key in set(old) - {"flags", "model", "submission"}:
        assert again[key] == old[key], key
    assert GradeResult.from_json(again) == result  # one round trip changes nothing more


def test_a_graded_result_round_trips_through_disk(tmp_path):
    result = GradeResult.from_json(fixture("graded"))
    path = write_results(result, tmp_path)
    assert read_results(path) == result
    assert json.loads(path.read_text())["status"] == "graded"


def test_run_flags_are_derived_from_the_dataset():
    old = {**fixture("graded"), "flags": []}
    old["dataset"] = {**old["dataset"], "official": False}
    assert "unofficial-data" in GradeResult.from_json(old).flags
    assert "unofficial-data" not in GradeResult.from_json(old).submission_flags


@pytest.mark.parametrize("edit, words", [
    ({"schema_version": 2}, "schema_version is 2"),
    ({"status": "done"}, "not 'graded' or 'error'"),
    ({"confusion_matrix": None}, "lack the keys: confusion_matrix"),
    ({"accuracy": "high"}, "wrong type"),
    ({"checks": [{"score": 1}]}, "wrong type"),
])
def test_a_hand_edited_result_is_refused_with_a_hint(edit, words):
    with pytest.raises(GraderError, match=words) as info:
        GradeResult.from_json({**fixture("graded"), **edit})
    assert info.value.hint


def test_metrics_name_every_number_a_rubric_can_check():
    result = GradeResult.from_json(fixture("graded"))
    found = metrics(result)
    history = result.history
    assert found["accuracy"] == result.evaluation.accuracy
    assert found["history.train_loss"] == history["train_loss"][-1]  # a per-epoch list: its last epoch
    assert found["history.test_acc.max"] == max(history["test_acc"])
    per_class = result.evaluation.per_class_accuracy
    assert found["per_class_accuracy.min"] == min(per_class.values())
    assert found["per_class_accuracy.cat"] == per_class["cat"]
    assert found["model.parameters"] == result.model.parameters
    assert found["dataset.test_count"] == result.dataset["test_count"]
    assert "sandbox.enabled" not in found  # booleans are not numbers to check
    assert metrics(GradeResult.from_json(fixture("error"))) == {}
