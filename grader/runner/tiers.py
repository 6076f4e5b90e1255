"""The faster copies of a network ("tiers") and how each is calibrated against the eager one.

A tier is a forward and a bound: an image whose top-1 margin on the tier is at least the bound
keeps the tier's logits (see ``calibrate`` for why). Two kinds: a bfloat16 copy
(``reduce_precision``) and a channels-last float32 copy (``channels_last_float32``). The order
they run in is ``grader.runner.infer``'s.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from grader.runner.batches import run_chunks
from grader.runner.network import Inference, Loaded

TRACE_ROWS = 8  # rows of the example the tracer sees; the other calibration images check its graph
FLOAT32_FLOOR = 2.0 ** -14  # the float32 tier's least bound, relative to the largest |logit| seen
FLOAT32_LINEAR_MACS = 2 ** 18  # nn.Linear layers up to this many weights run in float32 in the bf16 copy
# Tiers copy the network twice (float32 and bf16): above this many bytes of parameters and buffers
# the copies would eat into the child's memory cap (the rubric's memory_mb, 4 GiB by default)
# that the eager inference itself may need, so such a network runs eagerly.
TIER_MAX_MODEL_BYTES = 2 ** 29


@dataclass(frozen=True)
class Tier:
    """A faster forward and the margin below which its predictions are not trusted.

    Attributes:
        name: ``"bfloat16"`` or ``"float32-channels-last"`` (the keys of ``stats["paths"]``).
        forward: float32 (n, 3, 32, 32) -> float32 logits (n, classes).
        bound: top-1 minus top-2 logit below which an image goes on to the next tier.
        error: on the calibration images, the largest amount by which this tier moved the
            difference of two logits of one image (logit units).
    """

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    bound: float
    error: float


def _spreads(difference: torch.Tensor) -> np.ndarray:
    """Per row, the largest minus the smallest entry (n,): how far a difference of two logits moved."""
    return (difference.amax(dim=1) - difference.amin(dim=1)).numpy()


def margins(y: torch.Tensor) -> np.ndarray:
    """Top-1 minus top-2 logit per row (n,)."""
    top = torch.topk(y.to(torch.float32), 2, dim=1).values
    return (top[:, 0] - top[:, 1]).numpy()


def small_enough(module: nn.Module) -> bool:
    """Whether copies of ``module`` fit beside it (``TIER_MAX_MODEL_BYTES``)."""
    tensors = itertools.chain(module.parameters(), module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) <= TIER_MAX_MODEL_BYTES


def traceable(loaded: Loaded) -> bool:
    """A plain nn.Module the tracer can take (not TorchScript, an export, ONNX or a static batch)."""
    module = loaded.module
    return not (module is None or loaded.form == "exported" or loaded.fixed_batch
                or isinstance(module, torch.jit.ScriptModule))


class _Untraceable(Exception):
    """The tracer warned that its graph may hold only for the example input."""


def _trace(module: nn.Module, x: torch.Tensor) -> Callable:
    """``module`` traced on the first ``TRACE_ROWS`` rows of ``x`` and frozen.

    Callers then check the result on all of ``x``: a forward whose Python code looks at values
    (``.item()``, a hash, a branch on data) traces to a graph that replays its example, which
    the rows it was not traced on expose. The tracer's own warning about such code refuses it
    outright.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded, never shown: they are about student code
        traced = torch.jit.freeze(torch.jit.trace(module, x[:TRACE_ROWS], check_trace=False))
    if any(issubclass(w.category, torch.jit.TracerWarning) for w in caught):
        raise _Untraceable()
    return traced


def channels_last_float32(loaded: Loaded, x: torch.Tensor, reference: torch.Tensor,
                          config: Inference) -> Tier | None:
    """The float32 tier: a channels-last copy of the network, run eagerly (oneDNN's
    channels-last convolutions, about 1.3x less CPU than the contiguous ones for the homework
    net). Its sums round in another order than the eager network's, so it is calibrated like
    bf16, on ``x`` (whose eager output is ``reference``), with a bound of at least
    ``FLOAT32_FLOOR`` times the largest |logit|.

    None when the network is not a plain nn.Module or the copy fails (a ``.view`` that needs
    contiguous memory, say); see ``calibrate`` for the rest.
    """
    try:
        twin = copy.deepcopy(loaded.module).to(memory_format=torch.channels_last)

        def forward(t: torch.Tensor) -> torch.Tensor:
            return twin(t.contiguous(memory_format=torch.channels_last)).to(torch.float32)

        y = run_chunks(forward, x, loaded, config.batch_size)
    except Exception:  # a network that cannot take channels-last input runs eagerly
        return None
    floor = FLOAT32_FLOOR * float(reference.abs().max()) if reference.numel() else 0.0
    return calibrate("float32-channels-last", forward, y, reference, config.float32_safety, 0.0, config, floor)


def calibrate(name: str, forward: Callable, y: torch.Tensor, reference: torch.Tensor, safety: float,
              slack: float, config: Inference, floor: float = 0.0) -> Tier | None:
    """A tier whose output on the calibration images is ``y`` (``reference``: the trusted one).

    Why the bound is safe: write the tier's logits as l + D (l the trusted ones) and
    d_i = max_j D_ij - min_j D_ij, how far the tier moved any difference of two of image i's
    logits. If the tier changes the top class from a to b, its margin is
    (l_b + D_b) - (l_a + D_a) <= D_b - D_a - m < d_i, with m > 0 the trusted margin. So an image
    whose margin on the tier is at least its bound keeps its trusted prediction as long as d_i
    does not exceed the bound. The bound is ``safety * (d + slack)``, at least ``floor``: d is
    the largest d_i on the calibration images, and ``slack`` the trusted logits' own largest
    distance from the eager ones (the float32 tier's bound, when the bf16 tier is calibrated on
    logits that tier produced; spreads add). That d_i stays below it is an assumption, checked
    by the bench on all 10,000 test images; it holds for networks whose logits move smoothly
    with rounding, and not for one whose output jumps (an argmax or a rounding inside the
    forward): hence the refusals below.

    None when the output is of another shape or not finite; when it moved nothing at all
    (d = 0: no evidence of how far it can move, as with one-hot outputs, which either move
    nothing or a whole class; a whole class moved makes d, and so the bound, as large as the
    logits); or when more than ``config.max_recompute`` of the calibration images would go on
    to the next tier.
    """
    if y.shape != reference.shape:
        return None
    trusted = reference.to(torch.float32)
    error = float(_spreads(y - trusted).max())
    if not math.isfinite(error) or error == 0.0:
        return None
    bound = max(safety * (error + slack), floor)
    if float((margins(y) < bound).mean()) > config.max_recompute:
        return None
    return Tier(name, forward, bound, error)


def reduce_precision(loaded: Loaded, x: torch.Tensor, reference: torch.Tensor, config: Inference,
                     slack: float = 0.0) -> Tier | None:
    """The bf16 tier: a bfloat16 copy of the network, calibrated on ``x`` against ``reference``
    (the trusted float32 logits of ``x``; ``slack``: their largest distance from the eager ones).

    Channels-last first (oneDNN's fastest bf16 kernels); a forward that cannot take it (a
    ``.view`` that needs contiguous memory) gets a contiguous copy instead. Each with float32
    linear layers first (see ``_bf16_copy``), then without.

    None when: the CPU lacks native bf16 (emulated bf16 is slower than float32), neither copy
    can be converted or traced, or ``calibrate`` declines it.
    """
    if not native_bf16():
        return None
    for memory_format, float32_linear in itertools.product((torch.channels_last, torch.contiguous_format),
                                                           (True, False)):
        try:
            half, input_dtype = _bf16_copy(loaded.module, memory_format, float32_linear)
            traced = _trace(half, _layout(x, input_dtype, memory_format))

            def forward(t: torch.Tensor, traced=traced, input_dtype=input_dtype,
                        memory_format=memory_format) -> torch.Tensor:
                return traced(_layout(t, input_dtype, memory_format)).to(torch.float32)

            y = run_chunks(forward, x, loaded, config.batch_size)
        except Exception:  # this layout cannot run in bf16: the next one, else float32
            continue
        return calibrate("bfloat16", forward, y, reference, config.bf16_safety, slack, config)
    return None


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)  # exact types: a subclass may compute anything


class _Float32Layer(nn.Module):
    """Runs ``layer`` in float32 inside a bf16 network: float32 in, ``out_dtype`` out."""

    def __init__(self, layer: nn.Module, out_dtype: torch.dtype):
        super().__init__()
        self.layer = layer
        self.out_dtype = out_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.to(torch.float32)).to(self.out_dtype)


def _bf16_copy(module: nn.Module, memory_format: torch.memory_format = torch.channels_last,
               float32_linear: bool = True) -> tuple[nn.Module, torch.dtype]:
    """A bfloat16 copy of ``module`` in ``memory_format``, and the dtype its input must have.

    Convolutions on the image itself (at most 4 input channels) stay float32 and take the float32
    input: rounding the pixels to bf16's 8-bit mantissa was measured to cause half of the logit
    error, and those layers are a few percent of the work (3 input channels vectorise poorly in
    bf16 anyway). With ``float32_linear``, each small nn.Linear (at most ``FLOAT32_LINEAR_MACS``
    weights: a classifier head, not the bulk of an MLP) runs in float32 and its output stays
    float32, and so do the layers after it: bf16 logits are rounded to a step of 1/16 between 8
    and 16, and for the homework net (whose three linear layers are 0.5% of its work) this cut
    the calibration error from 0.145 to 0.119 and the images recomputed by 15%. A network whose
    later layers cannot take float32 then fails to trace, and the caller tries without.
    """
    image_convs = [name for name, sub in module.named_modules()
                   if name and type(sub) in _CONVS and sub.in_channels <= 4]
    linears = [name for name, sub in module.named_modules()
               if float32_linear and name and type(sub) is nn.Linear
               and sub.in_features * sub.out_features <= FLOAT32_LINEAR_MACS]
    half = copy.deepcopy(module).to(torch.bfloat16)
    for names, out_dtype in ((image_convs, torch.bfloat16), (linears, torch.float32)):
        for name in names:  # copies of the float32 original: never rounded
            parent_name, _, child_name = name.rpartition(".")
            parent = half.get_submodule(parent_name) if parent_name else half
            setattr(parent, child_name, _Float32Layer(copy.deepcopy(module.get_submodule(name)), out_dtype))
    return half.to(memory_format=memory_format), torch.float32 if image_convs else torch.bfloat16


def _layout(x: torch.Tensor, dtype: torch.dtype,
            memory_format: torch.memory_format = torch.channels_last) -> torch.Tensor:
    return x.to(dtype).contiguous(memory_format=memory_format)


def native_bf16() -> bool:
    """Whether oneDNN has bf16 instructions here (AVX512-BF16, AMX, or Arm BF16)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # a private probe: when it is gone, assume no
        return False
