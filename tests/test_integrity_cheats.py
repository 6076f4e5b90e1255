"""The cheats and the careless hand-ins of the integrity checks, built as students build them and
graded end to end: each must be flagged, and honest networks must never be.

The data is generated: a colour per class (the red level), so that an honest network (nearest
class colour) is right on training and test images alike, while a lookup table of the test
images is right only on those.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grader.data import CLASSES, Cifar10, fingerprint
from grader.pipeline import grade_one
from grader.results import GradeResult
from grader.rubric import parse_rubric

CENTRES = (20 + 22 * torch.arange(10.0)) / 255  # the red level of each class, 0..1


def colour_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n, dtype=np.int64) % len(CLASSES))
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.int64)
    images[..., 0] = 20 + 22 * labels[:, None, None] + rng.integers(-6, 7, (n, 32, 32))
    return images.clip(0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def data() -> Cifar10:
    train_images, train_labels = colour_split(600, seed=1)
    test_images, test_labels = colour_split(600, seed=2)
    return Cifar10(train_images, train_labels, test_images, test_labels,
                   fingerprint=fingerprint(test_images, test_labels), source="generated", source_kind="generated")


def colour_net(*, normalised: bool = False, reversed_outputs: bool = False, sharpness: float = 200.0) -> nn.Module:
    """Nearest class colour on the pooled red channel: argmax of 2mc - c^2 (m in 0..1), scaled by
    ``sharpness`` so that it is as confident as a trained network. Trained on ``Normalize(0.5,
    0.5)`` inputs (m' = 2m - 1), the same network reads c m' + c - c^2."""
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
    with torch.no_grad():
        net[2].weight.zero_()
        net[2].weight[:, 0] = sharpness * (CENTRES if normalised else 2 * CENTRES)
        net[2].bias.copy_(sharpness * (CENTRES - CENTRES**2 if normalised else -CENTRES**2))
        if reversed_outputs:
            net[2].weight.copy_(net[2].weight.flip(0))
            net[2].bias.copy_(net[2].bias.flip(0))
    return net.eval()


def lookup_table(images: np.ndarray, labels: np.ndarray) -> nn.Module:
    """A nearest-neighbour table of ``images`` in stock layers only: 2x2-pooled pixels against
    one row per stored image, a sharp softmax, then a layer holding their labels."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    rows = nn.functional.avg_pool2d(x, 2).flatten(1)                           # n, 768
    rows = rows / rows.norm(dim=1, keepdim=True)
    net = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(768, len(images), bias=False),
                        nn.Softmax(dim=1), nn.Linear(len(images), 10, bias=False))
    with torch.no_grad():
        net[2].weight.copy_(rows * 2000)  # sharp: the softmax picks the best match
        net[4].weight.copy_(nn.functional.one_hot(torch.from_numpy(labels), 10).float().T)
    return net.eval()


def hand_in(folder: Path, net: nn.Module, *, history: dict | None = None, toml: str = "") -> Path:
    """What the student hands in: torch.save(net) (stock layers), a history, a submission.toml."""
    folder.mkdir(parents=True)
    torch.save(net, folder / "model.pth")
    if history is not None:
        (folder / "history.json").write_text(json.dumps(history))
    if toml:
        (folder / "submission.toml").write_text(toml)
    return folder


INTEGRITY_FLAGS = {"memorisation-suspected", "test-set-fit", "history-mismatch", "input-convention", "class-order"}


def test_an_honest_network_and_its_honest_log_raise_no_flag(tmp_path, data):
    history = {"train_loss": [1.2, 0.4], "train_acc": [0.6, 0.97], "test_acc": [0.55, 0.95]}
    result = grade_one(hand_in(tmp_path / "s", colour_net(), history=history), data=data, sandbox=False)
    assert result.graded and result.evaluation.accuracy > 0.95, result.error
    assert not INTEGRITY_FLAGS & set(result.flags)
    assert result.integrity.training.accuracy > 0.95 and result.integrity.training.count == 600


def test_a_lookup_table_of_the_test_set_with_a_lying_log_is_flagged(tmp_path, data):
    lying = {"train_loss": [0.1], "train_acc": [0.99], "test_acc": [1.0]}
    folder = hand_in(tmp_path / "s", lookup_table(data.test_images, data.test_labels), history=lying)
    result = grade_one(folder, data=data, sandbox=False)
    assert result.graded and result.evaluation.accuracy == 1.0, result.error
    assert {"test-set-fit", "history-mismatch"} <= set(result.flags), result.flags
    assert "memorisation-suspected" in result.flags  # its altered copies give it away too
    loss_check = next(c for c in result.verdict.checks if c.metric == "history.train_loss")
    assert not loss_check.passed and "not borne out" in loss_check.detail  # the claim earns nothing
    saved = json.loads(json.dumps(result.to_json()))
    assert saved["integrity"]["test_set_fit"] and saved["integrity"]["history_mismatch"]


def test_a_lookup_table_of_the_training_and_test_images_is_caught_by_the_probe(tmp_path, data):
    """Both sets are public: a table of both does as well on the secret training images as on the
    test set, so the fit gap says nothing. Its altered copies give it away, with an honest log."""
    images = np.concatenate([data.train_images, data.test_images])
    labels = np.concatenate([data.train_labels, data.test_labels])
    honest_looking = {"train_loss": [0.9, 0.3], "train_acc": [0.7, 0.99], "test_acc": [0.7, 1.0]}
    result = grade_one(hand_in(tmp_path / "s", lookup_table(images, labels), history=honest_looking), data=data,
                       sandbox=False)
    assert result.graded and result.evaluation.accuracy == 1.0, result.error
    assert result.integrity.training.accuracy > 0.98 and "test-set-fit" not in result.flags
    assert "memorisation-suspected" in result.flags, result.flags


def test_without_a_history_the_homeworks_checks_read_the_measured_training_metrics(tmp_path, data):
    result = grade_one(hand_in(tmp_path / "s", colour_net()), data=data, sandbox=False)
    checks = {c.metric: c for c in result.verdict.checks}
    assert checks["history.train_acc"].passed and "measured on training images" in checks["history.train_acc"].detail
    assert result.verdict.score == result.verdict.max_score


REWRITER = '''
import sys
from torch import nn

child = sys.modules["__main__"]  # the grading child runs as python -m grader.runner.child

_describe = child.describe_model


def _smaller(loaded):
    info = _describe(loaded)
    info["parameters"] = 10  # a network 30 times over budget, reported as tiny
    return info


child.describe_model = _smaller


def build_model():
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
'''
BUDGET = [{"name": "under 1,000 parameters", "metric": "parameters", "condition": "x < 1000"}]


def test_a_fact_the_submissions_code_reported_earns_nothing_unless_trusted(tmp_path, data):
    folder = tmp_path / "s"
    folder.mkdir()
    torch.save(colour_net().state_dict(), folder / "weights.pth")
    (folder / "model.py").write_text(REWRITER)
    result = grade_one(folder, data=data, rubric=parse_rubric({"check": BUDGET}), sandbox=False)
    assert result.graded and result.model.parameters == 10 and result.model.source == "reported"
    (budget,) = result.verdict.checks
    assert not budget.passed and "reported by the submission's own code" in budget.detail
    trusting = parse_rubric({"check": BUDGET, "submission": {"trust_reported": True}})
    assert grade_one(folder, data=data, rubric=trusting, sandbox=False).verdict.checks[0].passed
    stock = grade_one(hand_in(tmp_path / "t", colour_net()), data=data, rubric=parse_rubric({"check": BUDGET}),
                      sandbox=False)
    assert stock.model.source == "grader" and stock.verdict.checks[0].passed  # only torch's code ran


def test_a_normalize_network_without_its_input_table_gets_the_fix(tmp_path, data):
    history = {"train_acc": [0.97], "test_acc": [0.96]}
    result = grade_one(hand_in(tmp_path / "s", colour_net(normalised=True), history=history), data=data,
                       sandbox=False)
    assert result.evaluation.accuracy < 0.5 and "input-convention" in result.flags
    (found,) = result.integrity.diagnosis
    assert "Normalize((0.5" in found.cause and found.accuracy > 0.9
    assert found.convention.facts() == {"scale": 1.0, "normalisation": "half", "channels": "rgb"}
    assert "mean = [0.5, 0.5, 0.5]" in found.fix and "std = [0.5, 0.5, 0.5]" in found.fix
    from grader.platforms.gradescope import gradescope_results
    from grader.report import render_html

    for lang, heading in (("en", "Integrity"), ("zh", "可信度检查")):
        html = render_html(result, lang=lang)
        assert 'id="integrity"' in html and heading in html and "mean = [0.5, 0.5, 0.5]" in html
    assert "每个通道减去均值 0.5 再除以标准差 0.5" in html  # the last, zh: worded from the stored convention
    assert "under review" in gradescope_results(result)["output"]
    toml = "\n".join(found.fix) + "\n"
    declared = grade_one(hand_in(tmp_path / "t", colour_net(normalised=True), history=history, toml=toml),
                         data=data, sandbox=False)
    assert declared.evaluation.accuracy > 0.95 and not INTEGRITY_FLAGS & set(declared.flags)


def test_a_rubric_may_grade_with_the_diagnosed_fix_less_a_penalty(tmp_path, data):
    checks = [{"name": "accuracy above 0.9", "metric": "accuracy", "condition": "x > 0.9", "points": 4}]
    rubric = parse_rubric({"check": checks, "submission": {"apply_diagnosis": True, "diagnosis_penalty": 0.25}})
    result = grade_one(hand_in(tmp_path / "s", colour_net(normalised=True, reversed_outputs=True)), data=data,
                       rubric=rubric, sandbox=False)
    assert {"input-convention", "class-order", "diagnosis-applied"} <= set(result.flags)
    applied = result.integrity.applied
    assert applied.accuracy_as_handed_in < 0.2 and applied.penalty == 0.25
    assert result.evaluation.accuracy > 0.95  # the whole test set, run again under the fix and relabelled
    assert result.verdict.checks[0].passed and result.verdict.score == 3.0 and result.verdict.max_score == 4
    assert any("graded with the diagnosed fix" in note and "mean = [0.5, 0.5, 0.5]" in note
               for note in result.submission.notes)
    saved = GradeResult.from_json(json.loads(json.dumps(result.to_json())))
    assert saved.integrity.applied == applied and saved.verdict.score == 3.0


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_reversed_outputs_get_the_class_order_that_fixes_them(tmp_path, data):
    result = grade_one(hand_in(tmp_path / "s", colour_net(reversed_outputs=True)), data=data, sandbox=False)
    assert result.evaluation.accuracy < 0.1 and "class-order" in result.flags
    (found,) = result.integrity.diagnosis
    assert found.fix == ("classes = [" + ", ".join(f'"{c}"' for c in reversed(CLASSES)) + "]",)
    fixed = grade_one(hand_in(tmp_path / "t", colour_net(reversed_outputs=True), toml=found.fix[0] + "\n"),
                      data=data, sandbox=False)
    assert fixed.evaluation.accuracy > 0.95 and "class-order" not in fixed.flags
