"""torch's legacy (non-zip) checkpoints, written the way pretrained CIFAR repositories wrote them:
``torch.save({'state_dict': ..., 'best_prec1': ...}, 'model_best.pth.tar',
_use_new_zipfile_serialization=False)`` on a GPU, under DataParallel (``module.`` keys)."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from grader import pipeline
from grader.errors import GraderError
from grader.runner.loaders import load
from grader.submission import inspect_submission
from grader.submission.precheck import COUNT_BYTES, LEGACY_PICKLE, check_file
from tests.fixtures.make_submissions import MODEL_PY, small_net, tiny_data, write_form
from tests.hostile.payloads import legacy_layout

CHECKPOINT = "model_best.pth.tar"


def save_legacy(obj, path: Path, *, location: str | None = None) -> Path:
    """``torch.save`` in the legacy format; ``location`` tags every storage as saved there
    (``cuda:0``: what a GPU run writes), so a CPU-only machine can write what a GPU run writes."""
    tag = torch.serialization.location_tag
    if location is not None:
        torch.serialization.location_tag = lambda storage: location
    try:
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    finally:
        torch.serialization.location_tag = tag
    return path


def legacy_hand_in(folder: Path, net: torch.nn.Module, *, location: str | None = "cuda:0") -> Path:
    """A folder as a student hands in a pretrained repository's checkpoint: model.py beside a
    legacy ``{'state_dict', 'best_prec1', 'epoch'}`` written from a DataParallel network on a GPU."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(MODEL_PY)
    state = OrderedDict((f"module.{k}", v) for k, v in net.state_dict().items())
    save_legacy({"epoch": 164, "state_dict": state, "best_prec1": 91.73}, folder / CHECKPOINT,
                location=location)
    return folder


class _System:
    """Pickles as os.system(command)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_a_gpu_checkpoint_is_read_and_its_form_named(tmp_path):
    folder = legacy_hand_in(tmp_path / "s", small_net())
    raw = (folder / CHECKPOINT).read_bytes()
    assert raw[:1] == b"\x80" and b"cuda:0" in raw and not raw.startswith(b"PK")
    check = check_file(folder / CHECKPOINT)
    assert check.problems == [] and LEGACY_PICKLE in check.pickles
    submission = inspect_submission(folder)
    assert submission.form == "state-dict" and submission.weights.name == CHECKPOINT


def test_cuda_storages_load_on_cpu_and_module_prefixes_are_stripped(tmp_path):
    net = small_net(seed=4)
    folder = legacy_hand_in(tmp_path / "s", net)
    submission = inspect_submission(folder)
    loaded = load({"form": submission.form, "weights": str(submission.weights),
                   "entry": [str(submission.entry[0]), submission.entry[1]], "input": None})
    for key, value in net.state_dict().items():
        assert loaded.module.state_dict()[key].device.type == "cpu"
        assert torch.equal(loaded.module.state_dict()[key], value)
    assert any("module." in note for note in loaded.notes)


def test_storages_an_old_torch_named_torch_cuda_load_on_cpu(tmp_path):
    """torch before 1.0 named a GPU storage's class ``torch.cuda.FloatStorage``."""
    folder = legacy_hand_in(tmp_path / "s", small_net())
    path = folder / CHECKPOINT
    path.write_bytes(path.read_bytes().replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n"))
    assert b"torch.cuda\nFloatStorage" in path.read_bytes()
    submission = inspect_submission(folder)
    loaded = load({"form": submission.form, "weights": str(submission.weights),
                   "entry": [str(submission.entry[0]), submission.entry[1]], "input": None})
    assert torch.equal(loaded.module.state_dict()["4.bias"], small_net().state_dict()["4.bias"])


def test_a_legacy_checkpoint_grades_like_its_plain_state_dict(tmp_path):
    data = tiny_data(40)
    net = small_net(seed=2)
    plain = pipeline.grade_one(write_form("state-dict", tmp_path / "plain", net), data=data, sandbox=False)
    legacy = pipeline.grade_one(legacy_hand_in(tmp_path / "legacy", net), data=data, sandbox=False)
    assert plain.graded and legacy.graded, legacy.error
    assert legacy.evaluation.accuracy == plain.evaluation.accuracy
    assert legacy.submission.format == "state-dict"
    assert any("module." in note for note in legacy.submission.notes)


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_legacy_checkpoint_grades_in_the_sandbox(tmp_path):
    from grader.sandbox import check_available

    try:
        check_available()
    except GraderError as exc:
        pytest.skip(f"no sandbox here: {exc}")
    data = tiny_data(40)
    net = small_net(seed=2)
    plain = pipeline.grade_one(write_form("state-dict", tmp_path / "plain", net), data=data, sandbox=False)
    legacy = pipeline.grade_one(legacy_hand_in(tmp_path / "legacy", net), data=data, sandbox=True)
    assert legacy.graded, legacy.error
    assert legacy.sandbox.enabled and legacy.evaluation.accuracy == plain.evaluation.accuracy


def test_a_legacy_pickle_naming_os_system_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL_PY)
    save_legacy({"state_dict": small_net().state_dict(), "best_prec1": _System(f"touch {marker}")},
                folder / CHECKPOINT)
    with pytest.raises(GraderError) as err:
        inspect_submission(folder)
    assert "posix.system" in err.value.message and "was refused before loading" in err.value.message
    result = pipeline.grade_one(folder, data=tiny_data(10), sandbox=False)
    assert not result.graded and "posix.system" in result.error
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.01, 0.2, 0.5, 0.9, 1.0])
def test_a_truncated_legacy_checkpoint_is_refused(tmp_path, keep):
    folder = legacy_hand_in(tmp_path / "s", small_net())
    path = folder / CHECKPOINT
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep) if keep < 1 else len(raw) - 1])  # 1.0: one byte short
    with pytest.raises(GraderError) as err:
        inspect_submission(folder)
    assert "was refused before loading" in err.value.message
    assert "truncated" in err.value.message or "bare pickle" in err.value.message


def test_storages_that_claim_more_than_the_file_holds_are_refused(tmp_path):
    path = tmp_path / "w.pt"
    four_floats = (4).to_bytes(COUNT_BYTES, "little") + bytes(16)
    path.write_bytes(legacy_layout({"0": 4}, ["0"], four_floats))
    assert check_file(path).problems == []
    assert torch.equal(torch.load(path, weights_only=True)["w0"], torch.zeros(4))  # the layout is torch's

    path.write_bytes(legacy_layout({"0": 1000}, ["0"], (1000).to_bytes(COUNT_BYTES, "little") + bytes(16)))
    assert check_file(path).problems == ["it is truncated: storage 0 claims 3.91 KiB but the file holds 16 B "
                                         "from there on"]
    path.write_bytes(legacy_layout({"0": 2 ** 38}, ["0"], (2 ** 38).to_bytes(COUNT_BYTES, "little") + bytes(16)))
    assert check_file(path).problems == ["its tensors claim 1 TiB, over the 2 GiB cap"]
    path.write_bytes(legacy_layout({"0": 4}, ["0"], (5).to_bytes(COUNT_BYTES, "little") + bytes(20)))
    assert check_file(path).problems == ["storage 0 holds 5 elements where its pickle names 4"]
    path.write_bytes(legacy_layout({"0": 4}, ["1"], four_floats))
    assert check_file(path).problems == ["its list of storages does not match its pickle (storage 1)"]


def test_a_whole_network_in_the_legacy_format_is_refused_with_the_fix(tmp_path):
    """torch's weights-only loader cannot read a legacy pickled module (its classes are
    persistent ids), so it is refused here rather than failing in the child."""
    path = save_legacy(small_net(), tmp_path / "net.pth")
    with pytest.raises(GraderError) as err:
        inspect_submission(path)
    assert "whole network in torch's legacy format" in err.value.message
    assert "state_dict" in err.value.message + err.value.hint


def test_a_plain_pickle_is_still_refused(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    assert check_file(path).problems[0].startswith("it is a bare pickle (pickle.dump)")
