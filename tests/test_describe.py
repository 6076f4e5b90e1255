"""What describe_model says of a network: MACs per image (the ONNX count from inferred shapes
against the torch count from hooks), its layers and the classes of its blocks."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from grader.models import build
from grader.report.layers import condense
from grader.runner.child import serve
from grader.runner.describe import describe_model, onnx_macs_per_image
from grader.runner.launch import reply_problem
from grader.runner.protocol import BLOCK_NAME_CHARS, MAX_BLOCKS
from grader.submission import inspect_submission
from tests.fixtures.make_submissions import RESNET20_PY, as_loaded, homework_net, tiny_data, write_form

HOMEWORK_MACS = 65_915_392  # as test_runner's hand count


def torch_macs(net) -> int:
    loaded = as_loaded(net)
    return describe_model(loaded)["macs_per_image"]


@pytest.mark.parametrize("name", ["homework_net", "fast_net"])  # Conv and Gemm; Conv (BN folded) and MatMul
def test_onnx_count_equals_the_torch_count_of_the_same_network(tmp_path, name):
    onnx = pytest.importorskip("onnx")
    net = build(name).eval()
    folder = write_form("onnx", tmp_path / "s", net)
    expected = torch_macs(net)
    assert onnx_macs_per_image(onnx.load(str(folder / "model.onnx"))) == expected
    assert name != "homework_net" or expected == HOMEWORK_MACS


def test_onnx_submission_reports_its_macs(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    folder = write_form("onnx", tmp_path / "s", homework_net())
    request = {"form": "onnx", "weights": str(folder / "model.onnx"), "batch_size": 4}
    info, _ = serve(request, tiny_data(4).test_images)
    assert info["macs_per_image"] == HOMEWORK_MACS and info["parameters"] == 1_244_106


def _graph(node, x_dims, weight_dims, out_dims):
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros(weight_dims, np.float32), "w")
    return helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)], [weight]))


def test_onnx_count_honours_transb_and_gives_up_on_unknown_shapes():
    pytest.importorskip("onnx")
    from onnx import helper

    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)  # w is (N=5, K=4)
    assert onnx_macs_per_image(_graph(gemm, ["n", 4], [5, 4], ["n", 5])) == 5 * 4
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"])  # w is (K=4, N=5)
    assert onnx_macs_per_image(_graph(gemm, [2, 4], [4, 5], [2, 5])) == 5 * 4
    matmul = helper.make_node("MatMul", ["x", "w"], ["y"])  # per image (7, 4) @ (4, 5)
    assert onnx_macs_per_image(_graph(matmul, ["n", 7, 4], [4, 5], ["n", 7, 5])) == 7 * 5 * 4
    assert onnx_macs_per_image(_graph(matmul, ["n", "seq", 4], [4, 5], ["n", "seq", 5])) is None


def test_onnx_count_looks_inside_local_functions(monkeypatch):
    pytest.importorskip("onnx")
    import onnx.inliner
    from onnx import helper

    model = _graph(helper.make_node("Lin", ["x", "w"], ["y"], domain="local"), ["n", 4], [4, 5], ["n", 5])
    model.opset_import.append(helper.make_opsetid("local", 1))
    body = [helper.make_node("MatMul", ["a", "b"], ["c"])]
    model.functions.append(helper.make_function("local", "Lin", ["a", "b"], ["c"], body, [model.opset_import[0]]))
    assert onnx_macs_per_image(model) == 5 * 4
    monkeypatch.setattr(onnx.inliner, "inline_local_functions", lambda m: m)  # a call the inliner leaves
    assert onnx_macs_per_image(model) is None


def test_torchscript_lists_the_same_layers_as_the_module_without_shapes():
    import torch

    net = build("homework_net").eval()
    scripted = torch.jit.trace(net, torch.zeros(1, 3, 32, 32))
    plain = as_loaded(net)
    traced = as_loaded(scripted, "torchscript")
    eager, script = describe_model(plain)["layers"], describe_model(traced)["layers"]
    assert [(l["name"], l["type"], l["parameters"]) for l in script] == \
        [(l["name"], l["type"], l["parameters"]) for l in eager]
    assert {l["type"] for l in script} >= {"Conv2d", "ReLU", "MaxPool2d", "Linear", "Dropout"}
    assert all(l["output_shape"] is None for l in script)
    assert all(l["output_shape"] is not None for l in eager)
    assert describe_model(traced)["macs_per_image"] == HOMEWORK_MACS


@pytest.fixture(scope="module")
def resnet20_reply(tmp_path_factory) -> dict:
    """The child's reply for a ResNet-20 handed in as model.py (its own BasicBlock) and weights."""
    import torch

    folder = tmp_path_factory.mktemp("resnet20")
    (folder / "model.py").write_text(RESNET20_PY, encoding="utf-8")
    namespace: dict = {}
    exec(compile(RESNET20_PY, "model.py", "exec"), namespace)
    torch.manual_seed(0)
    torch.save(namespace["ResNet20"]().state_dict(), folder / "weights.pth")
    sub = inspect_submission(folder)
    request = {"form": sub.form, "weights": str(sub.weights), "input": sub.input,
               "entry": [str(sub.entry[0]), sub.entry[1]], "batch_size": 4}
    info, _ = serve(request, tiny_data(4).test_images)
    return info


def test_the_child_names_the_blocks_of_a_students_own_classes(resnet20_reply):
    blocks = resnet20_reply["blocks"]
    assert {blocks[f"layer{s}.{i}"] for s in (1, 2, 3) for i in range(3)} == {"BasicBlock"}
    assert blocks["layer1"] == "Sequential" and blocks["layer2.0.shortcut"] == "Sequential"
    assert "conv1" not in blocks and "" not in blocks  # leaves and the network itself are not blocks
    assert reply_problem(resnet20_reply) is None
    rows = condense(resnet20_reply["layers"], blocks)
    assert ("layer1.0–2", "3 × BasicBlock") in [(r.names, r.types) for r in rows]


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


def test_torchscript_keeps_the_blocks_original_class_names():
    import torch

    net = nn.Sequential(Pair(), Pair(), nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    scripted = torch.jit.trace(net, torch.zeros(1, 3, 32, 32))
    assert describe_model(as_loaded(scripted, "torchscript"))["blocks"] == {"0": "Pair", "1": "Pair"}


@pytest.mark.parametrize("blocks, problem", [
    ([["layer1.0", "BasicBlock"]], "blocks is list"),
    ({"layer1.0": 3}, "class name"),
    ({"layer1.0": "B" * (BLOCK_NAME_CHARS + 1)}, "class name"),
    ({str(i): "B" for i in range(MAX_BLOCKS + 1)}, "more than"),
])
def test_a_reply_with_forged_blocks_is_refused(resnet20_reply, blocks, problem):
    assert problem in reply_problem({**resnet20_reply, "blocks": blocks})
    without = {k: v for k, v in resnet20_reply.items() if k != "blocks"}
    assert reply_problem(without) is None  # optional: a reply without names shows layer types
