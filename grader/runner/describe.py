"""Describing a loaded network: parameter count, layers with their output shapes, MACs per image."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from grader.runner.infer import to_input
from grader.runner.loaders import Loaded

# Layers whose multiply-accumulates follow from their output shape (per image: output elements
# times the weights that feed each), and parameterised layers that do no matrix products (their
# arithmetic is not counted, as FlopCounterMode does not count it either).
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NO_MATMUL = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
              nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.Embedding, nn.PReLU)


def describe_model(loaded: Loaded) -> dict:
    """Parameter count, layers (leaf modules with output shapes) and MACs per image (one forward).

    MACs are counted from the output shapes of Conv and Linear layers when every parameter sits
    in such a layer or in a norm/embedding layer (the homework's case: no extra cost). Otherwise
    (a custom layer with its own weights, TorchScript, an export) one forward under
    FlopCounterMode counts every matrix product; its first use costs about a CPU-second.
    """
    module = loaded.module
    info = {"parameters": loaded.parameters, "macs_per_image": None, "layers": []}
    if module is None:
        return info
    info["parameters"] = int(sum(p.numel() for p in module.parameters()))
    x = to_input(np.zeros((1, 32, 32, 3), np.uint8), loaded.input)
    layers, hooks, macs = [], [], [0]
    by_shape = not isinstance(module, torch.jit.ScriptModule) and loaded.form != "exported"
    if not isinstance(module, torch.jit.ScriptModule):
        for name, sub in module.named_modules():
            if name and not list(sub.children()):
                hooks.append(sub.register_forward_hook(_record(name, sub, layers, macs)))
                if type(sub) not in (*_CONV, nn.Linear, *_NO_MATMUL) and next(sub.parameters(False), None) is not None:
                    by_shape = False
    try:
        if by_shape:
            with torch.inference_mode():
                loaded.forward(x)
            info["macs_per_image"] = macs[0]
        else:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            with torch.inference_mode(), counter:
                loaded.forward(x)
            info["macs_per_image"] = int(counter.get_total_flops()) // 2  # one MAC = two FLOPs
    except Exception:  # MACs are informative only; a model the counter cannot trace still grades
        pass
    finally:
        for hook in hooks:
            hook.remove()
    info["layers"] = layers
    return info


def _record(name: str, sub: nn.Module, layers: list, macs: list[int]) -> Callable:
    def hook(_module, _inputs, output):
        shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        layers.append({"name": name, "type": type(sub).__name__, "output_shape": shape,
                       "parameters": int(sum(p.numel() for p in sub.parameters(recurse=False)))})
        if isinstance(output, torch.Tensor) and type(sub) in _CONV:
            fan_in = sub.in_channels // sub.groups * math.prod(sub.kernel_size)
            macs[0] += output.numel() * fan_in
        elif isinstance(output, torch.Tensor) and type(sub) is nn.Linear:
            macs[0] += output.numel() * sub.in_features
    return hook
