"""Metrics against hand-computed values; determinism."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from grader.evaluate import EvalConfig, evaluate, expected_calibration_error, wilson_interval

CLASSES = ("a", "b", "c")


def one_hot_logits(predicted: list[int], k: int = 3, high: float = 5.0) -> np.ndarray:
    logits = np.zeros((len(predicted), k))
    logits[np.arange(len(predicted)), predicted] = high
    return logits


def test_per_class_recall_and_precision_by_hand():
    # true:      a a a a b b c c
    # predicted: a a a b b a c a
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    result = evaluate(one_hot_logits([0, 0, 0, 1, 1, 0, 2, 0]), labels, CLASSES)
    # recall: a 3/4, b 1/2, c 1/2;   precision: a 3/5 (predicted a five times), b 1/2, c 1/1
    assert result.per_class_accuracy == {"a": 0.75, "b": 0.5, "c": 0.5}
    assert result.per_class_precision == {"a": 0.6, "b": 0.5, "c": 1.0}
    assert result.confusion_matrix == [[3, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert result.accuracy == 5 / 8
    assert result.confused_pairs[0] == {"true": "a", "predicted": "b", "count": 1}
    assert len(result.confused_pairs) == 3


def test_never_predicted_class_has_precision_zero():
    result = evaluate(one_hot_logits([0, 0, 0]), np.array([0, 1, 2]), CLASSES)
    assert result.per_class_precision == {"a": 1 / 3, "b": 0.0, "c": 0.0}


def test_wilson_interval_known_value():
    lo, hi = wilson_interval(7000, 10000)
    assert lo == pytest.approx(0.69099, abs=1e-4) and hi == pytest.approx(0.70885, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 10)[0] == 0.0


def test_loss_top2_and_ece():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]))
    result = evaluate(logits, np.array([0, 2]), CLASSES)
    assert result.loss == pytest.approx(-(np.log(0.7) + np.log(0.3)) / 2)
    assert result.top2_accuracy == 1.0 and result.accuracy == 0.5
    # bins: 0.7 (correct) and 0.6 (wrong) land in different bins: (|1-0.7| + |0-0.6|) / 2
    assert result.ece == pytest.approx(0.45)
    assert expected_calibration_error(np.array([0.8] * 10), np.array([True] * 8 + [False] * 2), bins=15) \
        == pytest.approx(0.0)


def test_reliability_bins_hold_what_the_ece_sums():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.68, 0.3, 0.02]]))
    result = evaluate(logits, np.array([0, 2, 1]), CLASSES)
    bins = result.reliability
    assert [b["count"] for b in bins] == [1, 2]  # 0.6 alone; 0.68 and 0.7 share (0.667, 0.733]
    assert bins[1]["lo"] < 0.68 < 0.7 <= bins[1]["hi"]
    assert bins[1]["accuracy"] == pytest.approx(0.5) and bins[1]["confidence"] == pytest.approx(0.69)
    assert result.ece == pytest.approx(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / 3)


def test_samples_and_confidently_wrong_are_fixed_and_carry_pngs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(100, 3))
    labels = rng.integers(0, 3, 100)
    images = rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8)
    config = EvalConfig(sample_count=6, confident_wrong=4)
    first = evaluate(logits, labels, CLASSES, images, config=config)
    assert first == evaluate(logits, labels, CLASSES, images, config=config)
    assert len(first.samples) == 6 and len(first.confident_wrong) == 4
    confidences = [w["confidence"] for w in first.confident_wrong]
    assert confidences == sorted(confidences, reverse=True) and not any(w["correct"] for w in first.confident_wrong)
    assert base64.b64decode(first.samples[0]["png"]).startswith(b"\x89PNG")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        evaluate(np.zeros((3, 3)), np.zeros(4, int), CLASSES)
