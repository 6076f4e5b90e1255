"""The child (in-process here, for speed) and the parent side (one real child process)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from grader.errors import GraderError
from grader.runner.child import serve
from grader.sandbox.messages import complete_messages
from grader.runner.infer import cascade, infer
from grader.runner.network import Inference, to_input
from grader.runner.tiers import Tier, calibrate, channels_last_float32, native_bf16
from grader.runner.loaders import build_from_entry, load, strip_prefixes
from grader.limits import Limits
from grader.runner.launch import check_logits, run_submission, sandbox_caps, submission_paths
from grader.runner.protocol import ProtocolError, decode, encode
from grader.submission import inspect_submission
from grader.submission.forms import import_time_work
from tests.fixtures.make_submissions import (
    MODEL_PY, as_loaded, homework_net, small_net, tiny_data, write_form, write_hostile_pickle)

FORMS = ["pickled-module", "state-dict", "state-dict-nested", "safetensors", "torchscript", "exported", "onnx"]


def request_for(path) -> dict:
    sub = inspect_submission(path)
    return {"form": sub.form, "weights": str(sub.weights), "input": sub.input,
            "entry": [str(sub.entry[0]), sub.entry[1]] if sub.entry else None, "batch_size": 16}


def reference_logits(net, images, mean=None, std=None) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div(255)  # as ToTensor: NCHW
    if mean is not None:
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return net(x).numpy()


def assert_close_to_float32(logits, expected, precision: dict) -> None:
    """float32 rows equal to 1e-5; rows that came back from bf16 differ by a calibrated amount."""
    close = np.isclose(logits, expected, rtol=1e-4, atol=1e-5).all(axis=1)
    if precision["precision"] == "float32":
        assert close.all()
        return
    moved = logits - expected  # how far bf16 moved each difference of two logits
    assert (moved.max(axis=1) - moved.min(axis=1)).max() <= Inference.bf16_safety * precision["bf16_error"]
    assert np.abs(moved).max() < 0.1 * np.abs(expected).max()


@pytest.mark.parametrize("form", FORMS)
def test_every_form_round_trips_with_identical_predictions(tmp_path, form):
    data = tiny_data(40)
    net = small_net(seed=3)
    info, logits = serve(request_for(write_form(form, tmp_path / "s", net)), data.test_images)
    expected = reference_logits(net, data.test_images)
    assert np.array_equal(logits.argmax(1), expected.argmax(1))
    assert_close_to_float32(logits, expected, info["precision"])
    assert info["parameters"] == sum(p.numel() for p in net.parameters())


def test_run_folder_applies_its_own_normalisation_and_returns_history(tmp_path):
    data = tiny_data(12)
    net = homework_net(seed=1)
    info, logits = serve(request_for(write_form("run-folder", tmp_path / "run", net)), data.test_images)
    expected = reference_logits(net, data.test_images, mean=[0.5] * 3, std=[0.25] * 3)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    assert info["form"] == "run-folder" and info["history"]["train_acc"] == [0.6, 0.8]


def test_model_info_counts_macs_and_layers(tmp_path):
    info, _ = serve(request_for(write_form("pickled-module", tmp_path / "s", homework_net())),
                    tiny_data(4).test_images)
    assert info["parameters"] == 1_244_106
    assert info["macs_per_image"] == 65_915_392  # hand count: convs 7x7,5x5,3x3x3 + linears
    assert [layer["output_shape"] for layer in info["layers"]][:3] == [[16, 32, 32], [16, 32, 32], [16, 16, 16]]


def test_hostile_pickle_is_refused_in_the_child_too_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_hostile_pickle(tmp_path / "evil.pth", marker)
    for form in ("pickled-module", "state-dict", "run-folder"):  # whatever the parent had guessed
        request = {"form": form, "weights": str(path), "entry": [str(tmp_path / "m.py"), "build_model"]}
        with pytest.raises(GraderError, match="refused without running it"):
            load(request)
    assert not marker.exists()


def test_prefixes_are_stripped_in_one_place():
    assert list(strip_prefixes({"module._orig_mod.0.weight": 1, "fc.bias": 2})) == ["0.weight", "fc.bias"]


@pytest.mark.parametrize("code, match", [
    ("import no_such_module\n", "model.py failed to import: ModuleNotFoundError"),
    ("def build_model(:\n", "model.py failed to import: SyntaxError.*line 1"),
    ("x = 1\n", "defines no build_model"),
    ("def build_model():\n    return 3\n", "returned a int, not an nn.Module"),
])
def test_model_py_problems_are_reported(tmp_path, code, match):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text(code)
    with pytest.raises(GraderError, match=match):
        serve(request_for(folder), tiny_data(2).test_images)


def test_state_dict_that_does_not_fit_names_the_keys(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text(MODEL_PY.replace("nn.Linear(8 * 8 * 8, 10)", "nn.Linear(8 * 8 * 8, 10), nn.Linear(10, 10)"))
    with pytest.raises(GraderError, match=r"missing keys 5\.weight, 5\.bias"):
        serve(request_for(folder), tiny_data(2).test_images)
    (folder / "model.py").write_text(MODEL_PY.replace("nn.Conv2d(3, 8, 3", "nn.Conv2d(3, 9, 3"))
    with pytest.raises(GraderError, match=r"does not fit the network model\.py builds: 0\.weight is \[8, 3, 3, 3\] in "
                                          r"the file but \[9, 3, 3, 3\] in the network"):
        serve(request_for(folder), tiny_data(2).test_images)


def test_wrong_output_shape_is_reported(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text(MODEL_PY + "\n_b = build_model\ndef build_model():\n"
                                     "    import torch.nn as nn\n    return nn.Sequential(_b(), nn.Flatten(0))\n")
    (folder / "weights.pth").unlink()
    torch.save({f"0.{k}": v for k, v in small_net().state_dict().items()}, folder / "weights.pth")
    with pytest.raises(GraderError, match="returned shape"):
        serve(request_for(folder), tiny_data(4).test_images)


def test_a_network_out_of_memory_is_told_so_not_blamed_on_its_input(monkeypatch):
    import resource

    from grader.runner.batches import run_chunks

    def hungry(x):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024 << 20, 1024 << 20))
    loaded = as_loaded(small_net())
    with pytest.raises(GraderError) as raised:
        run_chunks(hungry, np.zeros((3, 32, 32, 3), np.uint8), loaded, 100)
    assert raised.value.message == "the network, on a batch of 3 images, ran out of memory (the cap here is 1024 MiB)"
    assert "memory_mb" in raised.value.hint and "float32" not in raised.value.hint


def test_parent_checks_shape_and_finite_values():
    check_logits(np.zeros((3, 10), np.float32), n=3, classes=10)
    with pytest.raises(GraderError, match="outputs 9 logits per image, expected 10"):
        check_logits(np.zeros((3, 9), np.float32), n=3, classes=10)
    with pytest.raises(GraderError, match="has 1 dimensions, expected 2"):
        check_logits(np.zeros(30, np.float32), n=3, classes=10)
    with pytest.raises(GraderError, match="one row of logits per image"):
        check_logits(np.zeros((4, 10), np.float32), n=3, classes=10)
    with pytest.raises(GraderError, match="not float"):
        check_logits(np.zeros((3, 10), np.int64), n=3, classes=10)
    rows = [[0.0] * 10, [np.nan] * 10, [1.0] * 10, [np.inf] + [0.0] * 9]
    with pytest.raises(GraderError, match="holds NaN and infinite values for 50% of the images") as raised:
        check_logits(np.array(rows, np.float32), n=4, classes=10)
    assert " of 4" not in str(raised.value)  # n counts the probe's copies: never shown


def test_protocol_round_trip_and_refuses_garbage():
    header, array = decode(encode({"a": 1}, np.arange(6, dtype=np.float32).reshape(2, 3)))
    assert header == {"a": 1} and array.shape == (2, 3)
    for frame in (b"", b"nonsense", encode({"a": 1})[:-3]):
        with pytest.raises(ProtocolError):
            decode(frame)


@pytest.mark.parametrize("sandbox", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_child_process_gets_shuffled_images_and_parent_restores_the_order(tmp_path, sandbox):
    if sandbox:
        try:
            from grader.sandbox import check_available
            check_available()
        except GraderError as exc:
            pytest.skip(f"no sandbox here: {exc}")
    data = tiny_data(30)
    net = small_net(seed=5)
    folder = write_form("pickled-module", tmp_path / "s", net)
    # a network that prints must not corrupt the reply
    out = run_submission(inspect_submission(folder), data.test_images, classes=10,
                         sandbox=sandbox, limits=Limits(wall_seconds=120))
    np.testing.assert_allclose(out.logits, reference_logits(net, data.test_images), rtol=1e-4, atol=1e-5)
    assert out.sandbox["enabled"] is sandbox


def test_student_prints_and_nan_weights_end_as_clear_errors(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").write_text("print('hello from the student')\n" + MODEL_PY)
    state = small_net().state_dict()
    state["4.bias"] = torch.full_like(state["4.bias"], float("nan"))
    torch.save(state, folder / "weights.pth")
    with pytest.raises(GraderError, match="holds NaN for 100% of the images"):
        run_submission(inspect_submission(folder), tiny_data(8).test_images, classes=10, sandbox=False)


def _require_sandbox():
    from grader.sandbox import check_available

    try:
        check_available()
    except GraderError as exc:
        pytest.skip(f"no sandbox here: {exc}")


def test_child_is_shown_only_what_the_submission_consists_of(tmp_path):
    from grader.submission.rules import IntakeRules

    folder = write_form("state-dict", tmp_path / "s")
    (folder / "notes.txt").write_text("not needed by the child")
    assert submission_paths(inspect_submission(folder)) == [folder.resolve()]
    single = write_form("pickled-module", tmp_path / "one")
    (single / "neighbour.txt").write_text("secret")
    assert submission_paths(inspect_submission(single / "model.pth")) == [(single / "model.pth").resolve()]
    # a bare state_dict: the file and the TA's model code, never the model.py beside it
    ta_code = tmp_path / "ta" / "net.py"
    ta_code.parent.mkdir()
    ta_code.write_text(MODEL_PY)
    bare = inspect_submission(folder / "weights.pth", rules=IntakeRules(model_code=ta_code))
    assert submission_paths(bare) == [(folder / "weights.pth").resolve(), ta_code.resolve()]


def test_rubric_limits_reach_the_sandbox():
    limits = sandbox_caps(Limits(wall_seconds=2000, memory_mb=1500))
    assert limits.wall_seconds == 2000.0 and limits.memory_bytes == 1500 << 20
    assert limits.cpu_seconds >= 2000  # a longer wall clock is not cut short by the CPU cap
    assert sandbox_caps(Limits()).cpu_seconds >= 600


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_sandboxed_single_file_sees_no_sibling_files(tmp_path):
    _require_sandbox()
    from grader.submission.rules import IntakeRules

    folder = write_form("state-dict", tmp_path / "s")
    secret = folder / "neighbour-secret.txt"
    secret.write_text("another student's work")
    checks = ("import os\n"
              f"assert not os.path.exists({str(secret)!r}), 'sibling file visible'\n"
              f"assert sorted(os.listdir({str(folder)!r})) == ['weights.pth'], 'folder listing'\n")
    ta_code = tmp_path / "ta" / "net.py"
    ta_code.parent.mkdir()
    ta_code.write_text(checks + MODEL_PY)
    bare = inspect_submission(folder / "weights.pth", rules=IntakeRules(model_code=ta_code))
    out = run_submission(bare, tiny_data(4).test_images, classes=10, limits=Limits(wall_seconds=120))
    assert out.sandbox["enabled"] and out.logits.shape == (4, 10)
    (folder / "model.py").write_text(checks + MODEL_PY)
    with pytest.raises(GraderError, match="sibling file visible"):  # the folder form shows it all
        run_submission(inspect_submission(folder), tiny_data(4).test_images, classes=10,
                       limits=Limits(wall_seconds=120))


def test_sandboxed_file_directly_in_tmp_is_graded():
    _require_sandbox()
    import os
    import tempfile

    fd, name = tempfile.mkstemp(prefix="grader-test-", suffix=".pth", dir="/tmp")
    os.close(fd)
    try:
        net = small_net(seed=7)
        torch.save(net, name)
        images = tiny_data(6).test_images
        out = run_submission(inspect_submission(name), images, classes=10, limits=Limits(wall_seconds=120))
        np.testing.assert_allclose(out.logits, reference_logits(net, images), rtol=1e-4, atol=1e-5)
    finally:
        os.unlink(name)


def _scaled_net(seed: int, gain: float) -> torch.nn.Module:
    """small_net with its last layer multiplied by ``gain``: wider logit margins, like a trained net."""
    net = small_net(seed=seed)
    with torch.no_grad():
        net[4].weight.mul_(gain)
        net[4].bias.mul_(gain)
    return net


def test_bf16_path_keeps_every_float32_prediction_and_recomputes_low_margins():
    if not native_bf16():
        pytest.skip("no native bf16 on this CPU: the float32 path is the only one")
    images = tiny_data(400).test_images
    net = _scaled_net(seed=4, gain=40.0)
    loaded = as_loaded(net)
    stats = {}
    logits = infer(loaded, images, config=Inference(batch_size=64, calibration_images=64), stats=stats)
    exact = reference_logits(net, images)
    assert stats["precision"] == "bfloat16+float32"
    assert 0 < stats["recomputed"] < len(images) - 64  # some, not all, of the bf16 images
    assert np.array_equal(logits.argmax(1), exact.argmax(1))
    top = np.sort(exact, axis=1)
    fp32_rows = np.isclose(logits, exact, rtol=1e-5, atol=1e-5).all(axis=1)
    # every image with a small margin came back in float32 (the first batch always does)
    assert fp32_rows[:64].all() and fp32_rows[top[:, -1] - top[:, -2] < stats["margin_bound"] / 2].all()
    assert_close_to_float32(logits, exact, stats)  # the rest are bf16, within the calibrated error


def test_bf16_is_refused_when_rounding_would_flip_too_many_predictions(monkeypatch):
    if not native_bf16():
        pytest.skip("no native bf16 on this CPU")
    from grader.runner import tiers

    class Rough(torch.nn.Module):  # a "bf16 copy" that moves logits by far more than their margins
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            y = self.net(x)
            return y + 5.0 * torch.sin(1000.0 * y)

    real_copy = tiers._bf16_copy

    def rough_copy(*args):
        half, input_dtype = real_copy(*args)
        return Rough(half), input_dtype
    monkeypatch.setattr(tiers, "_bf16_copy", rough_copy)
    images = tiny_data(200).test_images
    net = _scaled_net(seed=4, gain=40.0)  # a network bf16 passes when rounded honestly
    stats = {}
    logits = infer(as_loaded(net), images, config=Inference(batch_size=64, calibration_images=64), stats=stats)
    assert stats["precision"] == "float32" and stats["recomputed"] == 0 and stats["paths"]["bfloat16"] == 0
    np.testing.assert_allclose(logits, reference_logits(net, images), rtol=1e-5, atol=1e-7)
    monkeypatch.setattr(tiers, "_bf16_copy", real_copy)
    infer(as_loaded(net), images, config=Inference(batch_size=64, calibration_images=64), stats=stats)
    assert stats["precision"] == "bfloat16+float32"  # the honest copy is used


@pytest.fixture(scope="module")
def trained_net():
    """The committed homework-recipe example (20 epochs), loaded as the child loads it: a network
    whose channels-last float32 copy rounds differently (small_net's is bit for bit identical)
    and whose margins leave most images to bf16."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "submissions" / "s2400001.pth"
    return load(request_for(path)).module


def test_channels_last_tier_is_calibrated_and_refused_when_it_disagrees(trained_net):
    images = tiny_data(200).test_images
    net = trained_net
    loaded = as_loaded(net)
    x = to_input(images[:64], loaded.input)
    config = Inference(batch_size=64, calibration_images=64)
    with torch.inference_mode():
        reference = net(x)
        tier = channels_last_float32(loaded, x, reference, config)
        assert tier is not None and 0 < tier.error < 1e-4 and 0 < tier.bound < 1e-2
        shifted = reference.clone()
        shifted[:, 0] += torch.linspace(0, 5, len(reference))  # a copy that computes something else
        assert channels_last_float32(loaded, x, shifted, config) is None
    stats = {}
    logits = infer(loaded, images, config=Inference(batch_size=64, calibration_images=64, bf16=False), stats=stats)
    exact = reference_logits(net, images)
    assert np.array_equal(logits.argmax(1), exact.argmax(1))
    np.testing.assert_allclose(logits, exact, rtol=1e-4, atol=1e-5)
    assert stats["paths"]["float32"] >= 64 and sum(stats["paths"].values()) == len(images)
    assert stats["paths"]["float32-channels-last"] > 0


def test_calibration_bound_is_the_safety_times_the_largest_spread_plus_slack():
    reference = torch.tensor([[4.0, 1.0, 0.0], [0.0, 5.0, 1.0], [2.0, 0.0, 7.0]])
    moved = torch.tensor([[0.1, 0.0, 0.0], [0.0, -0.05, 0.25], [0.0, 0.0, 0.0]])  # spreads 0.1, 0.3, 0
    config = Inference(max_recompute=1.0)
    tier = calibrate("bfloat16", None, reference + moved, reference, 3.0, 0.01, config)
    assert tier.error == pytest.approx(0.3) and tier.bound == pytest.approx(3.0 * (0.3 + 0.01))
    assert calibrate("x", None, reference + moved, reference, 3.0, 0.0, config, floor=2.0).bound == 2.0
    # refused: nothing moved (no evidence of how far it can), NaN, a bad shape
    assert calibrate("x", None, reference.clone(), reference, 3.0, 0.0, config) is None
    assert calibrate("x", None, reference + float("nan"), reference, 3.0, 0.0, config) is None
    assert calibrate("x", None, reference[:, :2], reference, 3.0, 0.0, config) is None
    # refused: more than max_recompute of the calibration images would go on
    assert calibrate("x", None, reference + moved, reference, 30.0, 0.0, Inference(max_recompute=0.5)) is None


def test_two_tiers_in_order_then_eager_and_only_finite_rows_are_kept():
    images = tiny_data(300).test_images
    net = small_net(seed=6)
    loaded = as_loaded(net)
    exact = reference_logits(net, images)
    top = np.sort(exact, axis=1)
    margins = top[:, -1] - top[:, -2]
    first_bound, second_bound = (float(q) for q in np.quantile(margins, [0.6, 0.2]))

    seen = []

    def rough(t):  # every third row of a batch gets a -inf logit: such a row must go on
        seen.append(len(t))
        y = net(t) + 1e-2
        y[::3, 0] = float("-inf")
        return y

    def finer(t):
        return net(t) + 1e-4
    paths = {"bfloat16": 0, "float32-channels-last": 0, "float32": 0}
    tiers = [Tier("bfloat16", rough, first_bound, 0.0), Tier("float32-channels-last", finer, second_bound, 0.0)]
    with torch.inference_mode():
        logits = cascade(tiers, loaded, images, 64, 10, paths)
    infinite = np.arange(len(images)) % 64 % 3 == 0  # the first tier sees every image, in batches of 64
    kept_first = (margins >= first_bound) & ~infinite
    kept_second = ~kept_first & (margins >= second_bound)
    eager = ~kept_first & ~kept_second
    np.testing.assert_allclose(logits[kept_first], exact[kept_first] + 1e-2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits[kept_second], exact[kept_second] + 1e-4, rtol=1e-6, atol=1e-6)
    assert np.array_equal(logits[eager], exact[eager])  # bit for bit: the eager network's own
    assert sum(seen) == len(images)  # the first tier saw every image once
    assert eager.any() and kept_second.any() and (infinite & (margins >= first_bound)).any()
    assert paths == {"bfloat16": int(kept_first.sum()), "float32-channels-last": int(kept_second.sum()),
                     "float32": int(eager.sum())}


def test_eager_stage_pads_a_lone_image_so_a_squeezing_forward_still_works():
    class Squeezing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_net(seed=2)

        def forward(self, x):
            return self.net(x).squeeze()  # (10,) for a batch of one

    images = tiny_data(40).test_images
    net = Squeezing().eval()
    exact = reference_logits(net, images)
    top = np.sort(exact, axis=1)
    lone = int(np.argmin(top[:, -1] - top[:, -2]))
    bound = float(np.sort(top[:, -1] - top[:, -2])[1])  # only the lowest margin is below it
    paths = {"bfloat16": 0, "float32-channels-last": 0, "float32": 0}
    with torch.inference_mode():
        logits = cascade([Tier("bfloat16", lambda t: net(t) + 1e-3, bound, 0.0)], as_loaded(net), images,
                         16, 10, paths)
    assert paths["float32"] == 1 and np.array_equal(logits[lone], exact[lone])


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_default_sized_run_calibrates_through_the_float32_tier_and_keeps_every_prediction(trained_net):
    images = tiny_data(900).test_images
    net = trained_net
    stats = {}
    logits = infer(as_loaded(net), images, stats=stats)  # batches of 100, 500 calibration images
    exact = reference_logits(net, images)
    paths = stats["paths"]
    assert np.array_equal(logits.argmax(1), exact.argmax(1))
    assert sum(paths.values()) == len(images) and paths["float32"] >= 100
    assert stats["float32_bound"] is not None and paths["float32-channels-last"] >= 300
    if native_bf16():
        assert stats["precision"] == "bfloat16+float32"
        assert stats["recomputed"] == len(images) - 500 - paths["bfloat16"] > 0
        assert stats["margin_bound"] >= Inference.bf16_safety * (stats["bf16_error"] + stats["float32_bound"]) * 0.999
        top = np.sort(exact, axis=1)
        low = top[:, -1] - top[:, -2] < stats["margin_bound"] / 2
        np.testing.assert_allclose(logits[low], exact[low], rtol=1e-4, atol=1e-4)  # float32, not bf16


def test_one_hot_outputs_get_no_tier():
    class OneHot(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _scaled_net(seed=4, gain=40.0)

        def forward(self, x):  # output that jumps: rounding moves nothing, or a whole class
            return torch.nn.functional.one_hot(self.net(x).argmax(1), 10).float() * 5

    images = tiny_data(700).test_images
    stats = {}
    logits = infer(as_loaded(OneHot().eval()), images, stats=stats)
    assert stats["precision"] == "float32" and stats["float32_bound"] is None
    assert stats["paths"]["float32"] == len(images)
    np.testing.assert_array_equal(logits, reference_logits(OneHot().eval(), images))


def test_a_forward_that_views_contiguous_memory_still_gets_bf16():
    class Viewing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _scaled_net(seed=4, gain=40.0)

        def forward(self, x):
            h = self.net[2](self.net[1](self.net[0](x)))
            return self.net[4](h.view(h.size(0), -1))  # fails on channels-last memory

    if not native_bf16():
        pytest.skip("no native bf16 on this CPU")
    images = tiny_data(700).test_images
    net = Viewing().eval()
    stats = {}
    logits = infer(as_loaded(net), images, stats=stats)
    assert stats["float32_bound"] is None  # channels-last float32 is impossible for it
    assert stats["precision"] == "bfloat16+float32" and stats["paths"]["bfloat16"] > 0
    assert np.array_equal(logits.argmax(1), reference_logits(net, images).argmax(1))


def test_bf16_copy_keeps_small_linear_layers_in_float32_and_large_ones_in_bf16():
    from grader.runner.tiers import _bf16_copy, _Float32Layer

    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    half, input_dtype = _bf16_copy(mlp)
    assert input_dtype == torch.bfloat16  # no convolution on the image
    assert type(half[1]) is torch.nn.Linear and half[1].weight.dtype == torch.bfloat16  # the bulk: bf16
    assert isinstance(half[3], _Float32Layer) and half[3].layer.weight.dtype == torch.float32  # the head
    with torch.inference_mode():
        assert half(torch.rand(4, 3, 32, 32).to(torch.bfloat16)).dtype == torch.float32
    plain, _ = _bf16_copy(mlp, float32_linear=False)
    assert not any(isinstance(m, _Float32Layer) for m in plain.modules())


def test_a_network_that_cannot_take_float32_after_its_head_still_gets_bf16():
    if not native_bf16():
        pytest.skip("no native bf16 on this CPU")
    net = _scaled_net(seed=4, gain=40.0)
    net.append(torch.nn.BatchNorm1d(10).eval())  # bf16 parameters meeting the float32 head's output
    images = tiny_data(700).test_images
    stats = {}
    logits = infer(as_loaded(net), images, stats=stats)
    assert stats["precision"] == "bfloat16+float32" and stats["paths"]["bfloat16"] > 0
    assert np.array_equal(logits.argmax(1), reference_logits(net, images).argmax(1))


class _PerImageBranch(torch.nn.Module):
    """Data-dependent Python code: a trace would replay its example's branch for every image."""

    def __init__(self):
        super().__init__()
        self.net = small_net(seed=8)

    def forward(self, x):
        rows = [self.net(r[None]) * (2.0 if float(r.mean()) > 0.5 else -1.0) for r in x]
        return torch.cat(rows)


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_data_dependent_forward_is_never_traced():
    images = tiny_data(120).test_images
    net = _PerImageBranch().eval()
    loaded = as_loaded(net)
    stats = {}
    logits = infer(loaded, images, config=Inference(batch_size=32, calibration_images=32), stats=stats)
    assert stats["precision"] == "float32"
    np.testing.assert_allclose(logits, reference_logits(net, images), rtol=1e-5, atol=1e-6)


def test_a_network_too_large_to_copy_runs_eagerly(monkeypatch):
    from grader.runner import tiers

    net = _scaled_net(seed=4, gain=40.0)
    size = sum(p.numel() * p.element_size() for p in net.parameters())
    monkeypatch.setattr(tiers, "TIER_MAX_MODEL_BYTES", size - 1)
    images = tiny_data(300).test_images
    stats = {}
    logits = infer(as_loaded(net), images, config=Inference(batch_size=64, calibration_images=64), stats=stats)
    assert stats["paths"] == {"bfloat16": 0, "float32-channels-last": 0, "float32": len(images)}
    np.testing.assert_array_equal(logits, reference_logits(net, images))
    monkeypatch.setattr(tiers, "TIER_MAX_MODEL_BYTES", size)
    infer(as_loaded(net), images, config=Inference(batch_size=64, calibration_images=64), stats=stats)
    assert stats["paths"]["float32"] < len(images)  # at the limit, the tiers run


# --- state_dict variants, labels kept back, manifest entry classes, ONNX without onnxruntime, static exports


def _outputs_equal(loaded, net) -> None:
    """The loaded network's outputs equal ``net``'s bit for bit on a few inputs."""
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        assert torch.equal(loaded.forward(x.clone()), net(x.clone()))


# Every nesting key, prefix and suffix appears at least once (not their 60-case product).
@pytest.mark.parametrize("nesting, prefix, suffix", [
    (None, "", ".pt"),
    ("state_dict", "module.", ".pth"),
    ("model", "_orig_mod.", ".th"),
    ("net", "module.", ".bin"),
    ("model_state_dict", "module._orig_mod.", ".pt"),  # DataParallel around torch.compile: both stripped
])
def test_state_dict_variants_load_to_the_same_network(tmp_path, nesting, prefix, suffix):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL_PY)
    net = small_net(seed=9)
    state = {f"{prefix}{k}": v for k, v in net.state_dict().items()}
    torch.save(state if nesting is None else {"epoch": 7, nesting: state}, folder / f"weights{suffix}")
    sub = inspect_submission(folder)
    assert sub.form == "state-dict" and sub.weights.name == f"weights{suffix}"
    loaded = load(request_for(folder))
    _outputs_equal(loaded, net)
    assert bool(prefix) == any("stripped" in note for note in loaded.notes)


@pytest.mark.parametrize("change, match", [
    (lambda s: s.update({"4.extra": torch.zeros(1)}), r"unexpected keys 4\.extra$"),
    (lambda s: s.pop("0.bias"), r"missing keys 0\.bias$"),
    (lambda s: s.update({"fc.weight": s.pop("4.weight")}), r"missing keys 4\.weight; unexpected keys fc\.weight$"),
])
def test_state_dict_with_extra_or_missing_keys_names_them(tmp_path, change, match):
    folder = write_form("state-dict", tmp_path / "s")
    state = small_net().state_dict()
    change(state)
    torch.save(state, folder / "weights.pth")
    with pytest.raises(GraderError) as info:
        load(request_for(folder))
    assert info.value.message.startswith("weights.pth does not fit the network")
    assert re.search(match, info.value.message), info.value.message  # the keys end the message, the hint follows


def test_child_request_carries_shuffled_images_and_no_labels(tmp_path, monkeypatch):
    from grader.pipeline import grade_one
    from grader.integrity.memorisation import MemorisationProbe, probe_images
    from grader.runner import launch

    sent = []
    real_launch = launch.launch_child

    def capture(request: bytes, **kwargs):
        sent.append(request)
        return real_launch(request, **kwargs)

    monkeypatch.setattr(launch, "launch_child", capture)
    data = tiny_data(30, seed=4)
    net = small_net(seed=5)
    probe = MemorisationProbe(subset_size=6)
    results = grade_one(write_form("pickled-module", tmp_path / "s", net), data=data, sandbox=False,
                        memorisation=probe).to_json()
    assert results["status"] == "graded", results.get("error")
    expected_accuracy = float((reference_logits(net, data.test_images).argmax(1) == data.test_labels).mean())
    assert results["accuracy"] == pytest.approx(expected_accuracy)  # the parent un-shuffled the logits

    assert len(sent) == 1  # one child, one request: 30 test images are too few for a diagnosis
    (frame,), end = complete_messages(sent[0])
    assert end == len(sent[0])  # one whole message
    header, images = decode(frame)
    assert set(header) == {"form", "weights", "entry", "input", "batch_size", "threads", "classes"}
    assert frame == encode(header, images)  # the header and the images: nothing else travels
    assert images.dtype == np.uint8 and images.shape == (30 + 6, 32, 32, 3)
    _, copies = probe_images(data, probe)
    expected = np.concatenate([data.test_images, copies])  # the test images, then the probe's copies
    assert sorted(i.tobytes() for i in images) == sorted(i.tobytes() for i in expected)  # same multiset
    assert not np.array_equal(images, expected)  # shuffled: a permutation, not the original order
    assert not np.array_equal(images[:30], data.test_images)


NET_CLASS_PY = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))
'''


def test_manifest_entry_class_and_input_normalisation_reach_the_child(tmp_path):
    namespace: dict = {}
    exec(NET_CLASS_PY, namespace)
    torch.manual_seed(12)
    net = namespace["Net"]().eval()
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "model.py").write_text(NET_CLASS_PY)  # no build_model(): only the class
    torch.save(net.state_dict(), folder / "weights.pth")
    scale, mean, std = 255.0, [125.3, 123.0, 113.9], [63.0, 62.1, 66.7]
    (folder / "submission.toml").write_text(
        f'entry = "model.py:Net"\n[input]\nscale = {scale}\nmean = {mean}\nstd = {std}\n')
    images = tiny_data(30, seed=2).test_images
    out = run_submission(inspect_submission(folder), images, classes=10, sandbox=False,
                         limits=Limits(wall_seconds=120))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).mul(scale)  # the manifest's input
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(out.logits, expected, rtol=1e-6, atol=1e-6)
    assert out.info["input"] == {"scale": scale, "mean": mean, "std": std}


def test_onnx_without_onnxruntime_says_how_to_install_it(tmp_path, monkeypatch):
    import sys
    import tomllib
    from pathlib import Path

    pytest.importorskip("onnx")
    folder = write_form("onnx", tmp_path / "s")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extra = next(name for name, deps in pyproject["project"]["optional-dependencies"].items()
                 if name != "test" and any(d.startswith("onnxruntime") for d in deps))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(GraderError) as info:
        load(request_for(folder))
    assert info.value.message == "model.onnx is ONNX, and onnxruntime is not installed"
    assert f"pip install '{pyproject['project']['name']}[{extra}]'" in info.value.hint


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_export_with_a_static_batch_is_graded_through_the_child(tmp_path):
    net = small_net(seed=13)
    folder = tmp_path / "s"
    folder.mkdir()
    program = torch.export.export(net, (torch.zeros(4, 3, 32, 32),))  # no dynamic_shapes: batch 4 only
    torch.export.save(program, str(folder / "model.pt2"))
    sub = inspect_submission(folder)
    assert sub.form == "exported"
    assert load(request_for(folder)).fixed_batch == 4
    images = tiny_data(10, seed=6).test_images  # 4 + 4 + 2: the last batch must be padded
    out = run_submission(sub, images, classes=10, sandbox=False, limits=Limits(wall_seconds=120))
    np.testing.assert_allclose(out.logits, reference_logits(net, images), rtol=1e-5, atol=1e-6)
    assert out.info["form"] == "exported"
    assert out.info["parameters"] == sum(p.numel() for p in net.parameters())
    assert out.info["macs_per_image"] == 8 * 32 * 32 * 3 * 3 * 3 + 8 * 8 * 8 * 10  # conv + linear


# --- model.py as students write it: no build_model, or the whole training script ---------------

TUTORIAL_NET = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
'''
# The rest of the tutorial's script, left at the top of model.py: it downloads CIFAR-10 and trains.
TUTORIAL_TRAINING = '''
import torchvision
import torchvision.transforms as transforms
import torch.optim as optim

transform = transforms.Compose([transforms.ToTensor()])
trainset = torchvision.datasets.CIFAR10(root='./data', train=True, download={download}, transform=transform)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=4, shuffle=True, num_workers=2)
net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
for epoch in range(2):
    for inputs, labels in trainloader:
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
torch.save(net.state_dict(), './cifar_net.pth')
'''


def tutorial_hand_in(folder, model_py: str, seed: int = 0):
    """model.py as given, beside the weights of the tutorial's Net (seeded) as cifar_net.pth."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    namespace: dict = {}
    exec(TUTORIAL_NET, namespace)
    torch.manual_seed(seed)
    net = namespace["Net"]().eval()
    torch.save(net.state_dict(), folder / "cifar_net.pth")
    (folder / "model.py").write_text(model_py)
    return folder, net


def test_model_py_with_only_class_net_is_built_and_noted(tmp_path):
    from grader import pipeline

    data = tiny_data(40)
    folder, net = tutorial_hand_in(tmp_path / "s", TUTORIAL_NET, seed=3)
    result = pipeline.grade_one(folder, data=data, sandbox=False)
    assert result.graded, result.error
    expected = reference_logits(net, data.test_images).argmax(1)
    assert result.evaluation.accuracy == float((expected == data.test_labels).mean())
    assert "built model.py's Net() (no build_model)" in result.submission.notes


def test_model_py_classes_that_need_arguments_are_not_candidates(tmp_path):
    block = "\n\nclass Block(nn.Module):\n    def __init__(self, c_in, c_out):\n        super().__init__()\n"
    folder, net = tutorial_hand_in(tmp_path / "s", TUTORIAL_NET + block)
    module, notes = build_from_entry(folder / "model.py", "build_model")
    assert type(module).__name__ == "Net" and notes == ["built model.py's Net() (no build_model)"]


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_model_py_with_two_networks_lists_them_and_the_entry_line(tmp_path):
    second = "\n\nclass BigNet(Net):\n    def __init__(self, width=64):\n        super().__init__()\n"
    folder, _ = tutorial_hand_in(tmp_path / "s", TUTORIAL_NET + second)
    with pytest.raises(GraderError) as err:
        build_from_entry(folder / "model.py", "build_model")
    assert "defines no build_model, and several networks: Net, BigNet" in err.value.message
    assert 'entry = "model.py:BigNet"' in err.value.hint
    result = pipeline_error(folder)
    assert "several networks: Net, BigNet" in result and 'entry = "model.py:BigNet"' in result


def test_a_class_that_downloads_pretrained_weights_is_named_and_told_grading_is_offline(tmp_path, monkeypatch):
    """Net() (built in place of build_model) fetches ImageNet weights in __init__; grading has no
    network, so the message names Net() and the hint says to build without a download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # nothing cached
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # refused at once, as offline
    downloads = TUTORIAL_NET.replace(
        "        self.conv1 =", "        import torchvision\n"
        "        self.base = torchvision.models.resnet18(weights='IMAGENET1K_V1')\n        self.conv1 =")
    folder, _ = tutorial_hand_in(tmp_path / "s", downloads)
    with pytest.raises(GraderError) as err:
        build_from_entry(folder / "model.py", "build_model")
    assert err.value.message.startswith("model.py: Net() failed: URLError")
    assert "build_model" not in err.value.message + err.value.hint
    assert err.value.hint.startswith("grading has no network")
    assert err.value.message.text("zh").startswith("model.py：调用 Net() 时出错")
    assert err.value.message.hint("zh").startswith("评分时没有网络连接")


def test_weights_of_other_layer_sizes_list_the_shapes_and_point_at_model_py(tmp_path):
    """cifar_net.pth from the tutorial's Net, model.py's Net widened since: each tensor whose shape
    differs is said with both shapes, in Chinese too, and the hint names the class built."""
    wider = TUTORIAL_NET.replace("nn.Conv2d(3, 6, 5)", "nn.Conv2d(3, 8, 5)").replace("nn.Conv2d(6, 16, 5)",
                                                                                   "nn.Conv2d(8, 16, 5)")
    folder, _ = tutorial_hand_in(tmp_path / "s", wider)
    with pytest.raises(GraderError) as err:
        load(request_for(folder))
    message = err.value.message
    assert message == ("cifar_net.pth does not fit the network model.py builds: conv1.weight is [6, 3, 5, 5] in "
                       "the file but [8, 3, 5, 5] in the network; conv1.bias is [6] in the file but [8] in the "
                       "network; conv2.weight is [16, 6, 5, 5] in the file but [16, 8, 5, 5] in the network")
    assert "build_model" not in err.value.hint and "(Net)" in err.value.hint
    assert message.text("zh").startswith("cifar_net.pth 与 model.py 构建的网络不匹配：conv1.weight 在文件中是 "
                                         "[6, 3, 5, 5]，在网络中是 [8, 3, 5, 5]；")
    assert message.hint("zh") == "model.py 构建的网络（Net）必须与保存这些权重时的网络有相同的层：名称相同、尺寸相同"
    renamed = TUTORIAL_NET.replace("self.fc3 = nn.Linear(84, 10)", "self.out = nn.Linear(84, 10)").replace(
        "self.fc3(x)", "self.out(x)")
    (folder / "model.py").write_text(renamed)
    with pytest.raises(GraderError) as err:
        load(request_for(folder))
    assert err.value.message.text("zh") == ("cifar_net.pth 与 model.py 构建的网络不匹配：缺少键 out.weight, out.bias；"
                                            "多出的键 fc3.weight, fc3.bias")
    assert "build_model" not in err.value.hint and "(Net)" in err.value.hint


def pipeline_error(folder) -> str:
    from grader import pipeline

    result = pipeline.grade_one(folder, data=tiny_data(10), sandbox=False)
    assert not result.graded
    return result.error


def test_model_py_with_no_network_class_says_what_to_define(tmp_path):
    folder, _ = tutorial_hand_in(tmp_path / "s", "import torch\n")
    with pytest.raises(GraderError, match="defines no build_model and no nn.Module class") as err:
        build_from_entry(folder / "model.py", "build_model")
    assert "def build_model()" in err.value.hint or "define build_model()" in err.value.hint


def test_a_training_script_as_model_py_gets_the_main_guard_as_its_hint(tmp_path):
    """Without the data (download=False here, no network in the sandbox) the import fails on the
    dataset line; the hint names that line and the fix."""
    script = TUTORIAL_NET + TUTORIAL_TRAINING.format(download=False)
    folder, _ = tutorial_hand_in(tmp_path / "s", script)
    line = script.splitlines().index(next(s for s in script.splitlines() if s.startswith("trainset"))) + 1
    with pytest.raises(GraderError, match="model.py failed to import") as err:
        build_from_entry(folder / "model.py", "build_model")
    assert 'put the training code under `if __name__ == "__main__":`' in err.value.hint
    assert f"line {line}: `trainset = torchvision.datasets.CIFAR10(" in err.value.hint
    guarded = TUTORIAL_NET + 'if __name__ == "__main__":\n' + "".join(
        f"    {s}\n" for s in TUTORIAL_TRAINING.format(download=False).splitlines())
    (folder / "model.py").write_text(guarded)
    assert type(build_from_entry(folder / "model.py", "build_model")[0]).__name__ == "Net"


def test_an_unrelated_import_error_keeps_the_plain_hint(tmp_path):
    folder, _ = tutorial_hand_in(tmp_path / "s", "import not_a_module_anywhere\n" + TUTORIAL_NET)
    with pytest.raises(GraderError) as err:
        build_from_entry(folder / "model.py", "build_model")
    assert err.value.hint == "run `python model.py` locally and fix the error"


def test_import_time_work_is_read_from_the_top_level_only():
    source = TUTORIAL_NET + TUTORIAL_TRAINING.format(download=True) + (
        "\nN_CLASSES = 10\nSIZES = [3, 6, 16]\n"
        'if __name__ == "__main__":\n    net = Net()\n'
        "try:\n    import google.colab\nexcept ImportError:\n    pass\n")
    work = import_time_work(source)
    first = [s.text for s in work[:2]]
    assert first == ["`for epoch in range(2):...`", "`torch.save(net.state_dict(), './cifar_net.pth')`"]
    texts = " ".join(s.text for s in work)
    assert "trainset = torchvision.datasets.CIFAR10(" in texts and "net = Net()" in texts
    assert "N_CLASSES" not in texts and "SIZES" not in texts and "google" not in texts
    assert "class Net" not in texts and "import" not in texts
    assert import_time_work(TUTORIAL_NET) == [] and import_time_work("def (") == []


def test_a_model_py_that_trains_past_the_wall_clock_gets_the_main_guard_as_its_hint(tmp_path):
    from grader.runner.launch import read_reply
    from grader.sandbox import RunResult

    folder, _ = tutorial_hand_in(tmp_path / "s", TUTORIAL_NET + TUTORIAL_TRAINING.format(download=True))
    timed_out = RunResult(returncode=None, stdout=b"", stderr=b"", timed_out=True,
                          reason="killed after 300 s wall clock", seconds=300.0)
    with pytest.raises(GraderError, match="took too long") as err:
        read_reply(timed_out, inspect_submission(folder), b"")
    assert 'under `if __name__ == "__main__":`' in err.value.hint and "`for epoch in range(2):...`" in err.value.hint
    (folder / "model.py").write_text(TUTORIAL_NET)
    with pytest.raises(GraderError) as err:
        read_reply(timed_out, inspect_submission(folder), b"")
    assert "make sure forward() finishes" in err.value.hint


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_model_py_that_downloads_cifar_at_import_is_told_the_fix_in_the_sandbox(tmp_path):
    _require_sandbox()
    from grader import pipeline

    folder, _ = tutorial_hand_in(tmp_path / "s", TUTORIAL_NET + TUTORIAL_TRAINING.format(download=True))
    result = pipeline.grade_one(folder, data=tiny_data(10), sandbox=True)
    assert not result.graded and "model.py failed to import" in result.error, result.error
    assert 'put the training code under `if __name__ == "__main__":`' in result.error
    assert "trainset = torchvision.datasets.CIFAR10(" in result.error
    assert not (folder / "data").exists()  # the child's cwd is its own scratch, not the hand-in
