"""Inference: uint8 images in, float32 logits out, in batches.

The first images run eagerly in float32 and are the reference; the faster paths (a traced,
frozen float32 graph, and bfloat16 with float32 recomputation of low-margin images) are used
only where they reproduce its predictions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from grader.runner.loaders import ChildError, Loaded, one_line
from grader.runner.protocol import BATCH_SIZE

TRACE_ROWS = 8  # rows of the example the tracer sees; the other calibration images check its graph
CHECK_ROWS = 64  # calibration images a float32 trace must reproduce bit for bit


@dataclass(frozen=True)
class Inference:
    """How the child runs the network.

    Attributes:
        batch_size: images per forward pass (``protocol.BATCH_SIZE``, 100: see there why).
        calibration_images: the first images, run eagerly in float32: the reference that the
            traced and bf16 paths must reproduce (predictions) before they are used.
        threads: intra-op threads; 0 means all the cores this process may use.
        fast: trace and freeze plain nn.Modules when that reproduces the eager output bit for bit
            (about 1.25x less CPU for the homework net), and allow ``bf16``.
        bf16: run plain nn.Modules in bfloat16 (traced, frozen, channels-last; about 2x less CPU
            where the CPU has native bf16) and recompute in float32 every image whose bf16 top-1
            margin is below the calibrated bound (see ``reduce_precision``), so the predictions
            are the float32 ones.
        bf16_safety: the margin bound is ``bf16_safety * d``, where ``d`` is the largest amount
            by which bf16 moved the difference of two logits of one image on the calibration
            batch (logit units; see ``reduce_precision``). Measured on all 10,000 test images,
            the largest such amount was 1.4 ``d`` (homework net after 1 epoch) and 1.94 ``d``
            (after its 20 epochs).
        bf16_max_recompute: fraction of the calibration images; above it bf16 would not pay off
            (or the network is too sensitive to rounding) and everything runs in float32.
    """

    batch_size: int = BATCH_SIZE
    calibration_images: int = 500
    threads: int = 0
    fast: bool = True
    bf16: bool = True
    bf16_safety: float = 3.0
    bf16_max_recompute: float = 0.5


def to_input(images: np.ndarray, net_input: dict) -> torch.Tensor:
    """uint8 (n, 32, 32, 3) -> float32 (n, 3, 32, 32): /255 as ToTensor does, then scale, mean, std.

    The same elementwise operations as ``transforms.ToTensor()``, so the inputs equal the
    homework's bit for bit.
    """
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).contiguous()  # n, c, h, w
    x = x.to(torch.float32).div(255)
    if net_input.get("scale", 1.0) != 1.0:
        x = x.mul(float(net_input["scale"]))
    if net_input.get("mean") is not None:
        x = x.sub(torch.tensor(net_input["mean"], dtype=torch.float32).view(1, 3, 1, 1))
    if net_input.get("std") is not None:
        x = x.div(torch.tensor(net_input["std"], dtype=torch.float32).view(1, 3, 1, 1))
    return x


def infer(loaded: Loaded, images: np.ndarray, *, config: Inference = Inference(),
          stats: dict | None = None) -> np.ndarray:
    """Logits, float32 (n, classes), for uint8 ``images`` (n, 32, 32, 3), in batches.

    The first ``config.calibration_images`` run eagerly in float32; their output is the
    reference every faster path is checked against (see ``accelerate`` and
    ``reduce_precision``), so speed never changes a prediction. With bf16, the images whose bf16 margin is below the bound are recomputed in
    float32 and their float32 logits are returned (loss and calibration use those).

    Args:
        stats: if given, filled with ``precision`` (``"float32"`` or ``"bfloat16+float32"``),
            ``margin_bound``, ``bf16_error`` (see ``Reduced.error``) and ``recomputed``
            (images recomputed in float32).

    Raises:
        ChildError: when the network fails, or returns something other than one (batch, k) tensor.
    """
    n = len(images)
    batch = loaded.fixed_batch or config.batch_size
    info = {"precision": "float32", "margin_bound": None, "bf16_error": None, "recomputed": 0}
    if n == 0:
        return np.zeros((0, 0), np.float32)
    first = min(n, max(batch, config.calibration_images))
    with torch.inference_mode():
        x = to_input(images[:first], loaded.input)  # n, c, h, w: converted once, for every path
        reference = _run_chunks(loaded.forward, x, loaded, batch)
        logits = np.empty((n, reference.shape[1]), np.float32)
        logits[:first] = reference.numpy()
        fast = config.fast and n > first
        half = reduce_precision(loaded, x, reference, config) if fast and config.bf16 else None
        full = accelerate(loaded, x[:CHECK_ROWS], reference[:CHECK_ROWS]) if fast else loaded.forward
        recompute = np.zeros(0, np.int64)
        if half is None and n > first:
            logits[first:] = _run_chunks(full, images[first:], loaded, batch).numpy()
        elif half is not None:
            low = []
            for start in range(first, n, batch):
                y = half.forward(to_input(images[start:start + batch], loaded.input))
                logits[start:start + len(y)] = y.numpy()
                low.append(start + np.flatnonzero(~(_margins(y) >= half.bound)))  # NaN too
            recompute = np.concatenate(low)
            if len(recompute):
                logits[recompute] = _run_chunks(full, images[recompute], loaded, batch).numpy()
    if half is not None:
        info.update(precision="bfloat16+float32", margin_bound=half.bound, bf16_error=half.error,
                    recomputed=int(len(recompute)))
    if stats is not None:
        stats.update(info)
    return logits


def _run_chunks(forward: Callable, images: np.ndarray | torch.Tensor, loaded: Loaded,
                batch: int) -> torch.Tensor:
    """float32 logits (n, k) of ``images``, ``batch`` at a time (checked by _run_batch).

    ``images``: uint8 (n, 32, 32, 3), converted a batch at a time, or their float32 input
    (n, 3, 32, 32) already made by ``to_input``.
    """
    outputs = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        y = _run_batch(forward, _batch_input(chunk, loaded, batch))
        outputs.append(y.detach().to(torch.float32)[:len(chunk)])
    try:
        return torch.cat(outputs)
    except RuntimeError:
        raise ChildError(f"the network returned {len({o.shape[1] for o in outputs})} different numbers of "
                         "logits for different batches", "forward() must return logits of shape (n, 10)") from None


def _batch_input(chunk: np.ndarray | torch.Tensor, loaded: Loaded, batch: int) -> torch.Tensor:
    """The network's input for ``chunk`` (images, or their input: then a copy, which the network
    may overwrite in place without touching the caller's); padded with zero images to a static
    exported batch."""
    x = chunk.clone() if isinstance(chunk, torch.Tensor) else to_input(chunk, loaded.input)
    if loaded.fixed_batch and len(x) < batch:  # the padding rows are dropped by _run_chunks
        c, h, w = x.shape[1:]
        zeros = np.zeros((batch - len(x), h, w, c), np.uint8)  # n, h, w, c
        x = torch.cat([x, to_input(zeros, loaded.input)])
    return x


def _spreads(difference: torch.Tensor) -> np.ndarray:
    """Per row, the largest minus the smallest entry (n,): how far a difference of two logits moved."""
    return (difference.amax(dim=1) - difference.amin(dim=1)).numpy()


def _margins(y: torch.Tensor) -> np.ndarray:
    """Top-1 minus top-2 logit per row (n,)."""
    top = torch.topk(y.to(torch.float32), 2, dim=1).values
    return (top[:, 0] - top[:, 1]).numpy()


def _run_batch(forward: Callable, x: torch.Tensor) -> torch.Tensor:
    try:
        y = forward(x)
    except Exception as exc:
        raise ChildError(f"the network failed on a batch of {tuple(x.shape)} images: {one_line(exc)[:400]}",
                         "it must accept float32 (n, 3, 32, 32) input") from None
    if not isinstance(y, torch.Tensor):
        raise ChildError(f"the network returned a {type(y).__name__}, not a tensor",
                         "forward() must return the logits tensor (n, 10)")
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ChildError(f"the network returned shape {tuple(y.shape)} for {x.shape[0]} images",
                         "forward() must return logits of shape (n, 10)")
    return y


def _traceable(loaded: Loaded) -> bool:
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


def accelerate(loaded: Loaded, x: torch.Tensor, reference: torch.Tensor) -> Callable:
    """A faster float32 forward for a plain nn.Module: traced and frozen (oneDNN prepacked
    weights, fused conv+ReLU). Used only when it reproduces ``reference`` (the eager output on
    ``x``) bit for bit; otherwise the eager forward, unchanged.

    Channels-last is not tried: oneDNN then picks other convolution kernels, whose sums round
    differently from the eager (contiguous) ones, so it never passes the bit-for-bit check.
    """
    if not _traceable(loaded):
        return loaded.forward
    try:
        traced = _trace(loaded.module, x)
        if torch.equal(traced(x), reference):
            return traced
    except Exception:  # anything the tracer cannot handle simply runs eagerly
        pass
    return loaded.forward


@dataclass(frozen=True)
class Reduced:
    """A bfloat16 forward and the margin below which its predictions are not trusted.

    Attributes:
        forward: float32 (n, 3, 32, 32) -> float32 logits (n, classes), computed in bfloat16.
        bound: top-1 minus top-2 logit below which an image is recomputed in float32.
        error: on the calibration images, the largest amount by which bf16 moved the difference of
            two logits of one image (logit units).
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    bound: float
    error: float


def reduce_precision(loaded: Loaded, x: torch.Tensor, reference: torch.Tensor,
                     config: Inference) -> Reduced | None:
    """A bfloat16 copy of the network, calibrated against its float32 output, or None.

    Why the bound is safe: write the bf16 logits as l + D (l the float32 ones) and
    d_i = max_j D_ij - min_j D_ij, how far bf16 moved any difference of two of image i's logits.
    If bf16 changes the top class from a (fp32) to b, its bf16 margin is
    (l_b + D_b) - (l_a + D_a) <= D_b - D_a - m32 < d_i, with m32 > 0 the fp32 margin. So an image
    whose bf16 margin is at least ``safety * d`` keeps its fp32 prediction as long as
    d_i <= safety * d, where d is the largest d_i on the calibration images (the first 500
    shuffled test images, already computed in float32). The bench measures the largest d_i / d
    over all 10,000 test images (1.4 and 1.94 for homework nets after 1 and 20 epochs; the safety
    factor is 3).

    None when: the network is not a plain nn.Module, the CPU lacks native bf16 (emulated bf16 is
    slower than float32), the copy cannot be converted or traced, its output is not finite or of
    another shape, or more than ``config.bf16_max_recompute`` of the calibration images would be
    recomputed.
    """
    if not _traceable(loaded) or not _native_bf16():
        return None
    try:
        half, input_dtype = _bf16_copy(loaded.module)
        traced = _trace(half, _layout(x, input_dtype))

        def forward(t: torch.Tensor) -> torch.Tensor:
            return traced(_layout(t, input_dtype)).to(torch.float32)

        y = torch.cat([forward(x[i:i + config.batch_size]) for i in range(0, len(x), config.batch_size)])
    except Exception:  # a network that cannot run in bf16 runs in float32
        return None
    if y.shape != reference.shape:
        return None
    error = float(_spreads(y - reference.to(torch.float32)).max())
    if not math.isfinite(error):
        return None
    bound = config.bf16_safety * error
    if float((_margins(y) < bound).mean()) > config.bf16_max_recompute:
        return None
    return Reduced(forward, bound, error)


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)  # exact types: a subclass may compute anything


class _Float32Layer(nn.Module):
    """Runs ``layer`` in float32 inside a bf16 network: float32 in, bfloat16 out."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.to(torch.float32)).to(torch.bfloat16)


def _bf16_copy(module: nn.Module) -> tuple[nn.Module, torch.dtype]:
    """A bfloat16, channels-last copy of ``module``, and the dtype its input must have.

    Convolutions on the image itself (at most 4 input channels) stay float32 and take the float32
    input: rounding the pixels to bf16's 8-bit mantissa was measured to cause half of the logit
    error, and those layers are a few percent of the work (3 input channels vectorise poorly in
    bf16 anyway).
    """
    import copy

    image_convs = [name for name, sub in module.named_modules()
                   if name and type(sub) in _CONVS and sub.in_channels <= 4]
    half = copy.deepcopy(module).to(torch.bfloat16)
    for name in image_convs:  # a copy of the float32 original: its weights never saw bf16
        parent_name, _, child_name = name.rpartition(".")
        parent = half.get_submodule(parent_name) if parent_name else half
        setattr(parent, child_name, _Float32Layer(copy.deepcopy(module.get_submodule(name))))
    input_dtype = torch.float32 if image_convs else torch.bfloat16
    return half.to(memory_format=torch.channels_last), input_dtype


def _layout(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


def _native_bf16() -> bool:
    """Whether oneDNN has bf16 instructions here (AVX512-BF16, AMX, or Arm BF16)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # a private probe: when it is gone, assume no
        return False
