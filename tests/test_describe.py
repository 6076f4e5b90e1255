"""What describe_model says of a network: MACs per image (the ONNX count from inferred shapes
against the torch count from hooks) and its layers."""

from __future__ import annotations

import numpy as np
import pytest

from grader.models import build
from grader.runner.child import serve
from grader.runner.describe import describe_model, onnx_macs_per_image
from tests.fixtures.make_submissions import as_loaded, homework_net, tiny_data, write_form

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
