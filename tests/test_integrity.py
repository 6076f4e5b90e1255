"""Integrity checks as pure functions: claims against measurements, test-set fit, diagnosis."""

from __future__ import annotations

import numpy as np
import pytest

from grader.integrity.claims import Measured, claim_mismatches, measure_split, suspicious_fit
from grader.integrity.diagnosis import (CONVENTIONS, Slice, best_permutation, confusion_of, diagnose,
                                        needs_diagnosis)


def measured(accuracy: float, loss: float, n: int = 1000) -> Measured:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    logits = np.zeros((n, 10))
    right = rng.random(n) < accuracy
    logits[np.arange(n), np.where(right, labels, (labels + 1) % 10)] = 5.0
    out = measure_split(logits, labels)
    return Measured(out.accuracy, out.accuracy_ci, loss, (loss * 0.95, loss * 1.05), n)


def test_measure_split_matches_the_definitions():
    labels = np.array([0, 1, 2, 1])
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25], [0.2, 0.6, 0.2]]))
    m = measure_split(logits, labels)
    assert m.accuracy == 0.75 and m.count == 4
    assert m.loss == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.25, 0.6])))
    assert m.accuracy_ci[0] < 0.75 < m.accuracy_ci[1] and m.loss_ci[0] < m.loss < m.loss_ci[1]


def test_an_honest_log_is_not_flagged_and_a_lying_one_is():
    train, test = measured(0.80, 0.60), measured(0.70, 0.90)
    honest = {"train_loss": [1.5, 0.7], "train_acc": [0.5, 0.76], "test_acc": [0.6, 0.71]}
    assert claim_mismatches(honest, train, test, official=True) == []
    lying = {"train_loss": [0.1], "train_acc": [0.99], "test_acc": [0.95]}
    found = {m.key: m for m in claim_mismatches(lying, train, test, official=True)}
    assert set(found) == {"train_loss", "train_acc", "test_acc"}
    assert "claims a final train_acc of 99.0%" in found["train_acc"].sentence()
    # graded on another copy of CIFAR-10, a network trained on the official one logs more
    official_log = {"test_acc": [0.80]}
    assert claim_mismatches(official_log, train, test, official=False) == []
    assert [m.key for m in claim_mismatches(official_log, train, test, official=True)] == ["test_acc"]


def test_a_test_set_that_fits_better_than_the_training_images_is_flagged():
    assert suspicious_fit(measured(0.70, 0.9), measured(0.85, 0.4)) is None  # the honest direction
    assert suspicious_fit(measured(0.72, 0.9), measured(0.70, 0.9)) is None  # noise
    sentence = suspicious_fit(measured(1.0, 0.0), measured(0.446, 2.0))
    assert sentence and "100.0% on the test set" in sentence


def test_needs_diagnosis_below_chance_or_far_below_the_claim():
    assert needs_diagnosis(0.06, None, 10) and needs_diagnosis(0.25, None, 10)
    assert needs_diagnosis(0.45, 0.79, 10) and not needs_diagnosis(0.68, 0.72, 10)
    assert not needs_diagnosis(0.62, None, 10)


def test_best_permutation_undoes_a_reversed_class_order():
    labels = np.repeat(np.arange(10), 50)
    outputs = 9 - labels  # the network's output j means class 9 - j
    perm = best_permutation(confusion_of(outputs, labels, 10))
    assert np.array_equal(perm[outputs], labels)


def slices(conventions_predictions):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 800)
    predictions = np.stack([np.where(rng.random(800) < acc, labels, rng.integers(0, 10, 800))
                            for acc in conventions_predictions])
    return Slice(predictions[:, :400], labels[:400]), Slice(predictions[:, 400:], labels[400:])


def test_diagnose_names_the_convention_and_its_fix_lines():
    accuracies = [0.3] * len(CONVENTIONS)
    accuracies[1] = 0.62  # Normalize(0.5): what the network was trained with
    choose, confirm = slices(accuracies)
    (found,) = diagnose(choose, confirm, CONVENTIONS, declared=0, classes=10)
    assert found.flag == "input-convention" and "Normalize((0.5" in found.cause
    assert found.fix == ("[input]", "scale = 1", "mean = [0.5, 0.5, 0.5]", "std = [0.5, 0.5, 0.5]")
    assert 0.55 < found.accuracy < 0.8  # 62% right, and a tenth of the rest by chance


def test_a_correctly_declared_network_gets_no_diagnosis():
    accuracies = [0.3] * len(CONVENTIONS)
    accuracies[0] = 0.62
    assert diagnose(*slices(accuracies), CONVENTIONS, declared=0, classes=10) == []
