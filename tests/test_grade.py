"""The whole flow and the `grade` command: results.json per the schema, exit codes 0/1/2."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from grader import grade as grade_module
from grader.cli import main
from grader.grade import grade_submission
from grader.data import CLASSES, Cifar10, fingerprint
from grader.rubric import parse_rubric
from grader.runner.child import serve
from tests.fixtures.make_submissions import small_net, tiny_data, write_form, write_hostile_pickle

SCHEMA_KEYS = {"schema_version", "status", "error", "grader_version", "created", "student", "submission",
               "dataset", "device", "sandbox", "accuracy", "accuracy_ci", "loss", "top2_accuracy", "ece",
               "per_class_accuracy", "per_class_precision", "per_class_count", "confusion_matrix",
               "confused_pairs", "samples", "confident_wrong", "model", "history", "score", "max_score",
               "checks", "flags", "timings", "memorisation"}
CHECK_KEYS = {"name", "metric", "op", "threshold", "passed", "value", "score", "max_score", "borderline", "detail"}
ALWAYS = parse_rubric({"check": [{"name": "anything", "metric": "accuracy", "condition": "x >= 0"}]})


@pytest.fixture(scope="module")
def data():
    return tiny_data(40)


def test_graded_result_follows_the_schema(tmp_path, data):
    folder = write_form("pickled-module", tmp_path / "s", small_net(seed=2))
    (folder / "history.json").write_text('{"train_loss": [0.9, 0.3], "train_acc": [0.6, 0.9], "test_acc": [0.5, 0.8]}')
    results = grade_submission(folder, data=data, sandbox=False)
    assert set(results) == SCHEMA_KEYS
    assert results["status"] == "graded" and results["schema_version"] == 1
    assert results["submission"]["format"] == "pickled-module" and len(results["submission"]["sha256"]) == 64
    assert results["dataset"]["fingerprint"] == data.fingerprint and not data.official
    assert {"no-sandbox", "unofficial-data"} <= set(results["flags"])
    assert all(set(c) == CHECK_KEYS for c in results["checks"]) and results["max_score"] == 3
    assert [c["passed"] for c in results["checks"]][:2] == [True, True]
    _, logits = serve({"form": "pickled-module", "weights": str(folder / "model.pth")}, data.test_images)
    assert results["accuracy"] == float((logits.argmax(1) == data.test_labels).mean())
    json.dumps(results, allow_nan=False)


def test_hostile_submission_ends_as_an_error_result_and_never_runs(tmp_path, data):
    marker = tmp_path / "pwned"
    path = write_hostile_pickle(tmp_path / "evil.pth", marker)
    results = grade_submission(path, data=data, sandbox=False)
    assert results["status"] == "error" and "posix.system" in results["error"]
    assert results["accuracy"] is None and results["samples"] == [] and results["score"] == 0
    assert all(not c["passed"] and "posix.system" in c["detail"] for c in results["checks"])
    assert not marker.exists()


def test_import_error_in_model_py_is_an_actionable_error(tmp_path, data):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text("import tensorflow\n")
    results = grade_submission(folder, data=data, sandbox=False)
    assert results["status"] == "error" and "model.py failed to import" in results["error"]
    assert "hint:" in results["error"]


@pytest.fixture
def cli(monkeypatch, data):
    monkeypatch.setattr(grade_module, "load_cifar10", lambda _path: data)
    return CliRunner()


def test_cli_exit_codes(tmp_path, cli, monkeypatch):
    folder = write_form("pickled-module", tmp_path / "s")
    failed = cli.invoke(main, ["grade", str(folder), "--out", str(tmp_path / "o1"), "--no-sandbox"])
    assert failed.exit_code == 1 and "FAIL" in failed.output  # no history: the homework checks fail
    assert (tmp_path / "o1" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "CIFAR-10" in (tmp_path / "o1" / "report.html").read_text()

    (tmp_path / "bad.pth").write_bytes(b"\x00" * 100)
    ungraded = cli.invoke(main, ["grade", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "o2"), "--no-sandbox"])
    assert ungraded.exit_code == 2 and "unknown format" in ungraded.output
    assert json.loads((tmp_path / "o2" / "results.json").read_text())["status"] == "error"
    assert "unknown format" in (tmp_path / "o2" / "report.html").read_text()  # the error's own report

    graded = json.loads((tmp_path / "o1" / "results.json").read_text())
    always = tmp_path / "always.toml"
    always.write_text('[[check]]\nmetric = "accuracy"\ncondition = "x >= 0"\n')
    rubric_seen = []

    def regrade(submission, *, data, rubric, sandbox):  # re-check the stored result: no second child
        rubric_seen.append(rubric)
        from grader.results import with_verdict
        from grader.rubric import check
        return with_verdict(graded, check(graded, rubric), total_seconds=0.0)

    monkeypatch.setattr(grade_module, "grade_submission", regrade)
    passed = cli.invoke(main, ["grade", str(folder), "--out", str(tmp_path / "o0"), "--rubric", str(always)])
    assert passed.exit_code == 0, passed.output
    assert rubric_seen[0].checks[0].condition == "x >= 0"


@pytest.mark.slow
def test_deterministic(tmp_path, data):
    folder = write_form("pickled-module", tmp_path / "s")
    first, second = (grade_submission(folder, data=data, rubric=ALWAYS, sandbox=False) for _ in range(2))
    for key in ("accuracy", "loss", "ece", "confusion_matrix", "samples", "confident_wrong"):
        assert first[key] == second[key]
    assert np.isclose(first["score"], 1.0)


# --- memorisation check -------------------------------------------------------------------------

MEMORISER_PY = '''
import hashlib, json
from pathlib import Path
import torch
from torch import nn

class Memoriser(nn.Module):
    """Looks up the exact test images it was built with; guesses for anything else."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.register_buffer("dummy", torch.zeros(1))

    def forward(self, x):
        pixels = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        guesses = torch.randn(len(x), 10, generator=torch.Generator().manual_seed(0))
        for i, image in enumerate(pixels):
            label = self.table.get(hashlib.sha256(image.tobytes()).hexdigest())
            if label is not None:
                guesses[i] = torch.nn.functional.one_hot(torch.tensor(label), 10) * 10.0
        return guesses

def build_model():
    return Memoriser(json.loads(Path(__file__).with_name("table.json").read_text()))
'''


def colour_data(n: int = 80) -> Cifar10:
    """Test images whose class sets the red level (plus noise): easy for a network that generalises."""
    rng = np.random.default_rng(1)
    labels = np.arange(n, dtype=np.int64) % len(CLASSES)
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.int64)
    images[..., 0] = 20 + 22 * labels[:, None, None] + rng.integers(-6, 7, (n, 32, 32))
    images = images.clip(0, 255).astype(np.uint8)
    empty = np.zeros((0, 32, 32, 3), np.uint8)
    return Cifar10(empty, np.zeros(0, np.int64), images, labels, fingerprint=fingerprint(images, labels),
                   source="generated", source_kind="generated")


def colour_net() -> torch.nn.Module:
    """Nearest class mean of the red channel, as a linear layer on the pooled image."""
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 10))
    centre = (20 + 22 * torch.arange(10.0)) / 255
    with torch.no_grad():  # argmax of -(m - c)^2 = argmax of 2mc - c^2
        net[2].weight.zero_()
        net[2].weight[:, 0] = 2 * centre
        net[2].bias.copy_(-centre**2)
    return net.eval()


def test_a_network_that_generalises_is_not_flagged(tmp_path, monkeypatch):
    data = colour_data()
    sent = []
    real = grade_module.run_submission
    monkeypatch.setattr(grade_module, "run_submission",
                        lambda sub, images, **kw: sent.append(len(images)) or real(sub, images, **kw))
    folder = tmp_path / "s"
    folder.mkdir()
    torch.save(colour_net(), folder / "model.pth")
    results = grade_submission(folder, data=data, rubric=ALWAYS, sandbox=False)
    assert results["status"] == "graded" and results["accuracy"] == 1.0
    assert sent == [2 * len(data.test_images)]  # one request: clean and perturbed together
    memo = results["memorisation"]
    assert memo["count"] == len(data.test_images) and memo["clean_subset_acc"] == 1.0
    assert memo["perturbed_acc"] >= 0.95 and not memo["flagged"]
    assert "memorisation-suspected" not in results["flags"]
    json.dumps(results, allow_nan=False)


def test_a_network_that_memorised_the_test_images_is_flagged(tmp_path):
    data = colour_data()
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "model.py").write_text(MEMORISER_PY)
    table = {hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest(): int(label)
             for img, label in zip(data.test_images, data.test_labels)}
    (folder / "table.json").write_text(json.dumps(table))
    torch.save({"dummy": torch.zeros(1)}, folder / "weights.pth")
    results = grade_submission(folder, data=data, rubric=ALWAYS, sandbox=False)
    assert results["status"] == "graded" and results["accuracy"] == 1.0
    memo = results["memorisation"]
    assert memo["clean_subset_acc"] == 1.0 and memo["perturbed_acc"] < 0.5 and memo["flagged"]
    assert "memorisation" in memo["detail"] and "memorisation-suspected" in results["flags"]


def test_error_results_carry_no_memorisation(tmp_path, data):
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 100)
    results = grade_submission(tmp_path / "bad.pth", data=data, sandbox=False)
    assert results["status"] == "error" and results["memorisation"] is None
