"""The whole flow and the `grade` command: results.json per the schema, exit codes 0/1/2."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from grader import pipeline
from grader.cli import main
from grader.commands import grading as grading_commands
from grader.data import CLASSES, Cifar10, fingerprint
from grader.results import GradeResult, write_results
from grader.rubric import parse_rubric
from grader.runner.child import serve
from tests.fixtures.make_submissions import small_net, tiny_data, write_form, write_hostile_pickle

SCHEMA_KEYS = {"schema_version", "status", "error", "error_detail", "grader_version", "created", "student",
               "submission", "dataset", "device", "sandbox", "accuracy", "accuracy_ci", "loss", "top2_accuracy", "ece",
               "per_class_accuracy", "per_class_precision", "per_class_count", "confusion_matrix",
               "confused_pairs", "samples", "confident_wrong", "model", "history", "score", "max_score",
               "checks", "flags", "timings", "memorisation", "measured", "integrity", "provenance",
               "robustness", "reliability"}
CHECK_KEYS = {"name", "metric", "op", "threshold", "passed", "value", "score", "max_score", "borderline", "detail"}
def grade_submission(submission, **options) -> dict:
    """The results.json object of one grade, as written to disk."""
    return pipeline.grade_one(submission, **options).to_json()


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
    assert all(set(c) - {"name_zh"} == CHECK_KEYS for c in results["checks"]) and results["max_score"] == 3
    assert [c["passed"] for c in results["checks"]][:2] == [True, True]
    assert all(isinstance(c["borderline"], bool) for c in results["checks"])
    assert results["dataset"]["official"] is False and results["dataset"]["test_count"] == len(data.test_labels)
    latency = results["model"]["latency_ms_per_image"]
    assert isinstance(latency, float) and latency > 0
    _, logits = serve({"form": "pickled-module", "weights": str(folder / "model.pth")}, data.test_images)
    assert results["accuracy"] == float((logits.argmax(1) == data.test_labels).mean())
    json.dumps(results, allow_nan=False)


@pytest.fixture
def cli(monkeypatch, data):
    monkeypatch.setattr(grading_commands, "load_cifar10", lambda _path, **_options: data)
    return CliRunner()


@pytest.mark.slow  # a whole grade end to end; run with make test-all
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

    graded = GradeResult.from_json(json.loads((tmp_path / "o1" / "results.json").read_text()))
    always = tmp_path / "always.toml"
    always.write_text('[[check]]\nmetric = "accuracy"\ncondition = "x >= 0"\n')
    rubric_seen = []

    def regrade(submission, *, data, rubric, sandbox, robustness=None):  # re-check the stored result: no second child
        rubric_seen.append(rubric)
        from grader.results import metrics, with_verdict
        from grader.rubric import check
        return with_verdict(graded, check(metrics(graded), rubric), total_seconds=0.0)

    monkeypatch.setattr(grading_commands, "grade_one", regrade)
    passed = cli.invoke(main, ["grade", str(folder), "--out", str(tmp_path / "o0"), "--rubric", str(always)])
    assert passed.exit_code == 0, passed.output
    assert rubric_seen[0].checks[0].condition == "x >= 0"


# --- submissions that cannot be graded ---------------------------------------------------------


def _truncated(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    path = folder / "model.pth"
    path.write_bytes(path.read_bytes()[:2000])
    return folder


def _bad_crc(tmp_path):
    """A valid zip whose largest stored member has one byte flipped: only its CRC tells."""
    folder = write_form("pickled-module", tmp_path / "s")
    path = folder / "model.pth"
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    local = member.header_offset  # local header: 30 bytes, then name and extra (lengths at 26, 28)
    start = local + 30 + int.from_bytes(raw[local + 26:local + 28], "little") + \
        int.from_bytes(raw[local + 28:local + 30], "little")
    raw[start + member.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:  # still a readable zip: the checksum is what is wrong
        assert member.compress_type == zipfile.ZIP_STORED and archive.testzip() == member.filename
    return folder


def _random_bytes(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(np.random.default_rng(0).bytes(512))  # starts b"_\x82": no known magic
    return path


def _hostile(tmp_path):
    return write_hostile_pickle(tmp_path / "evil.pth", tmp_path / "pwned")


def _model_py_raises(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text("raise RuntimeError('broken on purpose')\n")
    return folder


def _net_with_head(tmp_path, *, outputs: int = 10, bias: float | None = None):
    net = small_net()
    net[4] = torch.nn.Linear(8 * 8 * 8, outputs)
    if bias is not None:
        with torch.no_grad():
            net[4].bias.fill_(bias)
    return write_form("pickled-module", tmp_path / "s", net.eval())


def _state_dict_misfit(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    state = small_net().state_dict()
    state["extra.weight"] = state.pop("4.weight")
    torch.save(state, folder / "weights.pth")
    return folder


def _bad_manifest(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "submission.toml").write_text("student = \"s1\n")  # an unclosed string
    return folder


UNGRADABLE = [  # (id, write the submission, what the error must name, graded through the CLI)
    ("truncated", _truncated, r"model\.pth is truncated or corrupt", True),
    ("bad-crc", _bad_crc, r"model\.pth is corrupt \(model/data/\d+ fails its checksum\)", False),
    ("unknown-format", _random_bytes, r"model\.pth: unknown format", False),
    ("os-system-pickle", _hostile, r"evil\.pth asks to load posix\.system", False),
    ("model-py-raises", _model_py_raises, r"model\.py failed to import: RuntimeError: broken on purpose", False),
    ("seven-logits", lambda t: _net_with_head(t, outputs=7), r"network outputs 7 logits per image, expected 10",
     True),
    ("nan-logits", lambda t: _net_with_head(t, bias=float("nan")), r"output holds NaN for 100% of the images", False),
    ("inf-logits", lambda t: _net_with_head(t, bias=float("inf")), r"output holds infinite values for 100% of the images", False),
    ("bad-manifest", _bad_manifest, r"s/submission\.toml is not valid TOML", False),  # the error names a path
    ("state-dict-misfit", _state_dict_misfit,
     r"weights\.pth does not fit the network model\.py builds: missing keys 4\.weight; unexpected keys extra\.weight",
     False),
]


@pytest.mark.parametrize("write, problem, via_cli", [case[1:] for case in UNGRADABLE],
                         ids=[case[0] for case in UNGRADABLE])
def test_ungradable_submission_ends_as_an_actionable_error_result(tmp_path, data, cli, write, problem, via_cli):
    submission = write(tmp_path)
    out = tmp_path / "out"
    if via_cli:  # the `grade` command itself: exit code 2, the error on the terminal
        ran = cli.invoke(main, ["grade", str(submission), "--out", str(out), "--no-sandbox"])
        assert ran.exit_code == 2, ran.output
        assert "NOT GRADED" in ran.output and re.search(problem, ran.output)
    else:
        write_results(pipeline.grade_one(submission, data=data, sandbox=False), out)
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "error" and re.search(problem, results["error"]), results["error"]
    assert re.search(r"\n  hint: \S", results["error"])  # GraderError's what-to-do, not a grader crash
    assert results["accuracy"] is None and results["memorisation"] is None and results["samples"] == []
    assert results["score"] == 0 and results["max_score"] == 3 and len(results["checks"]) == 3
    for c in results["checks"]:
        assert not c["passed"] and c["score"] == 0 and c["borderline"] is False
        assert c["detail"].startswith("not graded: ") and re.search(problem, c["detail"])
        assert str(tmp_path) not in c["detail"]  # a student sees the hand-in's name, not the TA's folders
    assert not (tmp_path / "pwned").exists()  # the os.system payload never ran


@pytest.mark.parametrize("text, problem", [
    ("[[check]\nmetric = 'accuracy'\n", r"is not valid TOML"),
    (b"\xff\xfe rubric", r"is not valid TOML: 'utf-8' codec can't decode"),
    ("check = [1, 2]\n", r"check 1 is not a table \(found int\)"),
    ("limits = 5\n[[check]]\nmetric = 'accuracy'\ncondition = 'x >= 0'\n", r"limits is not a table"),
], ids=["bad-toml", "not-utf8", "check-not-a-table", "limits-not-a-table"])
def test_cli_refuses_an_invalid_rubric_with_exit_code_2(tmp_path, cli, text, problem):
    folder = write_form("pickled-module", tmp_path / "s")
    rubric = tmp_path / "rubric.toml"
    rubric.write_bytes(text if isinstance(text, bytes) else text.encode())
    ran = cli.invoke(main, ["grade", str(folder), "--out", str(tmp_path / "o"), "--rubric", str(rubric)])
    assert ran.exit_code == 2 and isinstance(ran.exception, SystemExit), ran.output
    assert re.search(r"Error: .*rubric\.toml", ran.output) and re.search(problem, ran.output), ran.output
    assert "\n  hint: " in ran.output and "Traceback" not in ran.output
    assert not (tmp_path / "o").exists()  # refused before any grading


def test_a_threshold_inside_the_accuracy_interval_is_borderline(tmp_path):
    data = colour_data()  # the colour net gets every one of the 80 images right: 95% CI about [0.954, 1]
    folder = tmp_path / "s"
    folder.mkdir()
    torch.save(colour_net(), folder / "model.pth")
    rubric = parse_rubric({"check": [{"name": "near", "metric": "accuracy", "condition": "x >= 0.97"},
                                     {"name": "far", "metric": "accuracy", "condition": "x >= 0.9"}]})
    write_results(pipeline.grade_one(folder, data=data, rubric=rubric, sandbox=False), tmp_path / "o")
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["status"] == "graded" and results["accuracy"] == 1.0
    lo, hi = results["accuracy_ci"]
    assert lo < 0.97 < hi and not lo < 0.9 < hi
    near, far = results["checks"]
    assert near["passed"] and near["borderline"] is True and "borderline" in near["detail"]
    assert far["passed"] and far["borderline"] is False and "borderline" not in far["detail"]
    assert "borderline" in results["flags"]


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
    real = pipeline.run_submission
    monkeypatch.setattr(pipeline, "run_submission",
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


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_machine_without_the_sandbox_is_refused_before_any_student_is_graded(tmp_path, cli, monkeypatch):
    import grader.sandbox.bwrap as bwrap
    from grader.batch.run import run_batch
    from grader.batch.worker import GradeSettings
    from grader.errors import GraderError
    from tests.conftest import make_image_tree

    monkeypatch.setattr(bwrap.shutil, "which", lambda name: None)  # no bubblewrap here
    folder = write_form("pickled-module", tmp_path / "s")
    ran = cli.invoke(main, ["grade", str(folder), "--out", str(tmp_path / "out")])
    assert ran.exit_code == 2 and "bubblewrap (bwrap) is not on PATH" in ran.output and "hint:" in ran.output
    assert not (tmp_path / "out" / "results.json").exists()  # not recorded as the student's error
    with pytest.raises(GraderError, match="not on PATH"):
        run_batch(folder, tmp_path / "batch", settings=GradeSettings(
            data_path=str(make_image_tree(tmp_path / "tree")), partial=True))
    assert not (tmp_path / "batch").exists()
    ran = cli.invoke(main, ["grade", str(folder), "--out", str(tmp_path / "out"), "--no-sandbox"])
    assert ran.exit_code in (0, 1) and (tmp_path / "out" / "results.json").exists()  # the TA's explicit choice


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_network_with_its_own_class_order_scores_as_the_plain_one(tmp_path, data):
    net = small_net(seed=3)
    plain = grade_submission(write_form("pickled-module", tmp_path / "plain", net), data=data, sandbox=False)
    flipped = copy.deepcopy(net)
    with torch.no_grad():  # output i is class 9 - i
        flipped[-1].weight.copy_(flipped[-1].weight.flip(0))
        flipped[-1].bias.copy_(flipped[-1].bias.flip(0))
    folder = write_form("pickled-module", tmp_path / "flipped", flipped)
    tutorial = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "Truck"]
    (folder / "submission.toml").write_text(f"classes = {json.dumps(tutorial[::-1])}\n")
    results = grade_submission(folder, data=data, sandbox=False)
    assert results["status"] == "graded"
    for key in ("accuracy", "per_class_accuracy", "confusion_matrix", "confused_pairs"):
        assert results[key] == plain[key], key
    assert results["loss"] == pytest.approx(plain["loss"], rel=1e-6)  # the softmax sums in another order
    assert results["submission"]["manifest"]["classes"] == list(CLASSES[::-1])
    assert any("reordered into CIFAR-10's class order" in n for n in results["submission"]["notes"])
    assert not any("reordered" in n for n in plain["submission"]["notes"])
