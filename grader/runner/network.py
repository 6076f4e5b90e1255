"""What every part of the child shares: the loaded network, its input, and how it is run.

``Loaded`` is what a loader returns and everything after it reads; ``to_input`` turns images into
the network's input; ``Inference`` holds the child's settings; ``one_line`` quotes an exception in
a message for the student.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from grader.runner.protocol import BATCH_SIZE


@dataclass
class Loaded:
    """A network ready to run.

    Attributes:
        forward: float32 (n, 3, 32, 32) -> logits (n, classes).
        module: the nn.Module behind ``forward`` (None for ONNX).
        form: the form actually loaded (a grader checkpoint reports ``run-folder``).
        input: the normalisation the network expects: ``{"scale", "mean", "std"}``.
        history: training history carried by the checkpoint, or None.
        notes: things worth telling a TA (ignored keys, ...).
        parameters: parameter count when ``module`` cannot say (ONNX), else None.
        macs_per_image: multiply-accumulates per image when ``module`` cannot say (ONNX), else None.
        fixed_batch: the only batch size the network accepts (an export with a static batch), or None.
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    module: nn.Module | None
    form: str
    input: dict
    history: dict | None = None
    notes: list[str] = field(default_factory=list)
    parameters: int | None = None
    macs_per_image: int | None = None
    fixed_batch: int | None = None


def to_input(images: np.ndarray, net_input: dict) -> torch.Tensor:
    """uint8 (n, 32, 32, 3) -> float32 (n, 3, 32, 32): channels reversed for ``channels = "bgr"``,
    /255 as ToTensor does, then scale, mean, std.

    The same elementwise operations as ``transforms.ToTensor()``, so the inputs equal the
    homework's bit for bit.
    """
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).contiguous()  # n, c, h, w
    if net_input.get("channels") == "bgr":  # trained on OpenCV's channel order
        x = x.flip(1)
    x = x.to(torch.float32).div(255)
    if net_input.get("scale", 1.0) != 1.0:
        x = x.mul(float(net_input["scale"]))
    if net_input.get("mean") is not None:
        x = x.sub(torch.tensor(net_input["mean"], dtype=torch.float32).view(1, 3, 1, 1))
    if net_input.get("std") is not None:
        x = x.div(torch.tensor(net_input["std"], dtype=torch.float32).view(1, 3, 1, 1))
    return x


@dataclass(frozen=True)
class Inference:
    """How the child runs the network.

    Attributes:
        batch_size: images per forward pass (``protocol.BATCH_SIZE``, 100: see there why).
        calibration_images: the first images; the bf16 tier is calibrated on them (their first
            batch runs eagerly and calibrates the float32 tier; the rest run through the float32
            tier, checked as every later image is).
        threads: intra-op threads; 0 means all the cores this process may use.
        fast: for plain nn.Modules, use the tiers (otherwise every image runs eagerly).
        bf16: the bfloat16 tier (traced, frozen, channels-last; about 2x less CPU than float32
            where the CPU has native bf16).
        bf16_safety: the bf16 tier's bound is ``bf16_safety * (d + b)``, where ``d`` is the
            largest amount by which bf16 moved the difference of two logits of one image on the
            calibration images (logit units) and ``b`` the float32 tier's bound (see ``tiers.calibrate``).
            Measured on all 10,000 test images, the largest such amount was 1.72 ``d`` (homework
            net after its 20 epochs; 1.94 ``d`` before the float32 linear layers of ``tiers._bf16_copy``).
        float32_safety: the same factor for the channels-last float32 tier, whose sums differ from
            the eager ones only in rounding order (about 1e-5 of a logit for the homework net);
            its bound is at least ``tiers.FLOAT32_FLOOR`` times the largest |logit|.
        max_recompute: a tier that would pass on more than this fraction of the calibration
            images is not used (it would not pay off, or the network is too sensitive to rounding).
    """

    batch_size: int = BATCH_SIZE
    calibration_images: int = 500
    threads: int = 0
    fast: bool = True
    bf16: bool = True
    bf16_safety: float = 3.0
    float32_safety: float = 10.0
    max_recompute: float = 0.5


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for an error message that quotes ``exc``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
