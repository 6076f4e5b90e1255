"""Describing a loaded network: parameter count, layers with their output shapes, MACs per image.

``describe_model`` counts a torch module's MACs with one forward; ``onnx_macs_per_image`` counts
an ONNX graph's from its inferred shapes (the ONNX loader calls it: there is no module to run).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from grader.runner.network import Loaded, to_input
from grader.runner.protocol import BLOCK_NAME_CHARS, MAX_BLOCKS

# Layers whose multiply-accumulates follow from their output shape (per image: output elements
# times the weights that feed each), and parameterised layers that do no matrix products (their
# arithmetic is not counted, as FlopCounterMode does not count it either).
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NO_MATMUL = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
              nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.Embedding, nn.PReLU)


def describe_model(loaded: Loaded) -> dict:
    """Parameter count, layers (leaf modules with output shapes), blocks (the class of every
    container) and MACs per image (one forward).

    TorchScript layers and blocks are named by their original class names, the layers without
    output shapes (a ScriptModule takes no forward hooks); an export and ONNX list none.

    MACs are counted from the output shapes of Conv and Linear layers when every parameter sits
    in such a layer or in a norm/embedding layer (the homework's case: no extra cost). Otherwise
    (a custom layer with its own weights, TorchScript, an export) one forward under
    FlopCounterMode counts every matrix product; its first use costs about a CPU-second.
    Without a module (ONNX), the counts are the loader's (see ``onnx_macs_per_image``). An export
    with a static batch runs one batch of that size, and its count is divided by it.
    """
    module = loaded.module
    info = {"parameters": loaded.parameters, "macs_per_image": loaded.macs_per_image, "layers": [], "blocks": {}}
    if module is None:
        return info
    info["parameters"] = int(sum(p.numel() for p in module.parameters()))
    batch = loaded.fixed_batch or 1  # an export with a static batch takes no other batch size
    x = to_input(np.zeros((batch, 32, 32, 3), np.uint8), loaded.input)
    layers, hooks, macs = [], [], [0]
    scripted = isinstance(module, torch.jit.ScriptModule)
    by_shape = not scripted and loaded.form != "exported"
    if scripted:  # no forward hooks on TorchScript: its layers are listed without output shapes
        layers = [_layer(name, sub, getattr(sub, "original_name", type(sub).__name__), None)
                  for name, sub in module.named_modules() if name and not list(sub.children())]
    else:
        for name, sub in module.named_modules():
            if name and not list(sub.children()):
                hooks.append(sub.register_forward_hook(_record(name, sub, layers, macs)))
                if type(sub) not in (*_CONV, nn.Linear, *_NO_MATMUL) and next(sub.parameters(False), None) is not None:
                    by_shape = False
    try:
        if by_shape:
            with torch.inference_mode():
                loaded.forward(x)
            info["macs_per_image"] = macs[0] // batch
        else:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            with torch.inference_mode(), counter:
                loaded.forward(x)
            info["macs_per_image"] = int(counter.get_total_flops()) // 2 // batch  # one MAC = two FLOPs
    except Exception:  # MACs are informative only; a model the counter cannot trace still grades
        pass
    finally:
        for hook in hooks:
            hook.remove()
    info["layers"] = layers
    info["blocks"] = {} if loaded.form == "exported" else _blocks(module, scripted)  # an export keeps no classes
    return info


def _blocks(module: nn.Module, scripted: bool) -> dict[str, str]:
    """Module name -> class name of each named container (a module with children), for the
    report's layer table: ``{"layer1": "Sequential", "layer1.0": "BasicBlock", ...}``. The names
    come from student code: at most MAX_BLOCKS of them, each cut to BLOCK_NAME_CHARS."""
    blocks: dict[str, str] = {}
    for name, sub in module.named_modules():
        if len(blocks) == MAX_BLOCKS:
            break
        if name and next(sub.children(), None) is not None:
            kind = getattr(sub, "original_name", type(sub).__name__) if scripted else type(sub).__name__
            blocks[name] = " ".join(str(kind).split())[:BLOCK_NAME_CHARS]
    return blocks


def _layer(name: str, sub: nn.Module, kind: str, shape: list[int] | None) -> dict:
    """One row of ``layers``: a leaf module, its output shape per image (None when unknown)."""
    return {"name": name, "type": kind, "output_shape": shape,
            "parameters": int(sum(p.numel() for p in sub.parameters(recurse=False)))}


def _record(name: str, sub: nn.Module, layers: list, macs: list[int]) -> Callable:
    def hook(_module, _inputs, output):
        shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        layers.append(_layer(name, sub, type(sub).__name__, shape))
        if isinstance(output, torch.Tensor) and type(sub) in _CONV:
            fan_in = sub.in_channels // sub.groups * math.prod(sub.kernel_size)
            macs[0] += output.numel() * fan_in
        elif isinstance(output, torch.Tensor) and type(sub) is nn.Linear:
            macs[0] += output.numel() * sub.in_features
    return hook


def onnx_macs_per_image(model) -> int | None:
    """Multiply-accumulates per image of an ONNX model (``onnx.ModelProto``), from inferred shapes.

    Counted as ``describe_model`` counts a torch module, with the first (batch) dimension left out
    of every output, whatever it is (symbolic or fixed): Conv: output elements times the product
    of the weight's shape after its first dimension (input channels per group times the kernel);
    Gemm: output elements times K (from B, the weight, as ``transB`` lays it out); MatMul: output
    elements times the inner dimension (the first input's last). Other operators (pooling,
    elementwise, normalisation) are not counted, as ``describe_model`` counts no such layer.

    Returns:
        the count, or None when a shape it needs is unknown after shape inference, or the graph
        holds subgraphs (If, Loop, Scan), whose work cannot be counted from shapes, or calls a
        local function the inliner left in place.
    """
    import onnx

    functions = {(function.domain, function.name) for function in model.functions}
    if functions:  # a model-local function's nodes are counted where it is called
        import onnx.inliner

        model = onnx.inliner.inline_local_functions(model)
    graph = onnx.shape_inference.infer_shapes(model).graph
    shapes = {value.name: _onnx_dims(value) for value in (*graph.input, *graph.value_info, *graph.output)}
    shapes.update({tensor.name: list(tensor.dims) for tensor in graph.initializer})
    macs = 0
    for node in graph.node:
        if (node.domain, node.op_type) in functions or any(
                attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute):
            return None
        if node.op_type not in ("Conv", "Gemm", "MatMul") or node.domain not in ("", "ai.onnx"):
            continue
        out, a, b = (shapes.get(name) for name in (node.output[0], node.input[0], node.input[1]))
        if out is None or None in out[1:]:
            return None
        if node.op_type == "Conv":
            fan_in = None if b is None or None in b[1:] else math.prod(b[1:])
        elif node.op_type == "Gemm":
            trans_b = next((attr.i for attr in node.attribute if attr.name == "transB"), 0)
            fan_in = b[1 if trans_b else 0] if b is not None and len(b) == 2 else None
        else:
            fan_in = a[-1] if a else None
        if fan_in is None:
            return None
        macs += math.prod(out[1:]) * fan_in
    return macs


def _onnx_dims(value) -> list[int | None] | None:
    """The dimensions of a graph value (None for a symbolic or unknown one), or None without a shape."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
