"""Inference: uint8 images in, float32 logits out, in batches.

The predictions are those of the network run eagerly in float32, as it was loaded (under the one
measured assumption that ``tiers.calibrate`` states, which bench/bench_eval.py checks). Faster
paths ("tiers": bfloat16, then a channels-last float32 copy; ``grader.runner.tiers``) are
calibrated against that eager output on the first images and then run in order: an image whose
top-1 margin on a tier is below the tier's calibrated bound goes on to the next tier, and the last
one is the eager network.
"""

from __future__ import annotations

import numpy as np
import torch

from grader.errors import GraderError
from grader.messages import say
from grader.runner.batches import run_chunks
from grader.runner.network import Inference, Loaded, to_input
from grader.runner.tiers import Tier, channels_last_float32, margins, reduce_precision, small_enough, traceable


def infer(loaded: Loaded, images: np.ndarray | torch.Tensor, *, config: Inference = Inference(),
          stats: dict | None = None) -> np.ndarray:
    """Logits, float32 (n, classes), for uint8 ``images`` (n, 32, 32, 3), in batches; or for the
    network's input already made from them (float32 (n, 3, 32, 32), ``network.to_input``).

    A plain nn.Module runs through the tiers (see the module docstring): its first batch
    eagerly, the rest of the calibration images through the float32 tier, every later image
    through bf16, then float32, then eager, each image going on while its margin is below the
    tier's bound or a logit is not finite. Every other network (and one too large to copy twice,
    ``tiers.TIER_MAX_MODEL_BYTES``) runs eagerly. Eager batches
    start where they would without tiers (0, batch, 2 batch, ...) until a tier is used.

    Args:
        stats: if given, filled with ``precision`` (``"float32"`` or ``"bfloat16+float32"``),
            ``margin_bound`` and ``bf16_error`` (the bf16 tier's ``bound`` and ``error``, or
            None), ``recomputed`` (images that bf16 passed on to float32), ``float32_bound`` and
            ``float32_error`` (the channels-last tier's, or None), and ``paths``: how many images
            got their logits from each of ``bfloat16``, ``float32-channels-last`` and
            ``float32`` (eager).

    Raises:
        GraderError: when the network fails, or returns something other than one (batch, k) tensor.
    """
    n = len(images)
    batch = loaded.fixed_batch or config.batch_size
    paths = {"bfloat16": 0, "float32-channels-last": 0, "float32": 0}
    info = {"precision": "float32", "margin_bound": None, "bf16_error": None, "recomputed": 0,
            "float32_bound": None, "float32_error": None, "paths": paths}
    if stats is not None:
        stats.update(info)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    with torch.inference_mode():
        if not (config.fast and traceable(loaded) and small_enough(loaded.module)):
            paths["float32"] = n
            return run_chunks(loaded.forward, images, loaded, batch).numpy()
        first = min(n, max(batch, config.calibration_images))
        head = min(first, batch)
        x = images[:first] if isinstance(images, torch.Tensor) else to_input(images[:first], loaded.input)
        reference = run_chunks(loaded.forward, x[:head], loaded, batch)
        classes = reference.shape[1]
        logits = np.empty((n, classes), np.float32)
        logits[:head] = reference.numpy()
        paths["float32"] += head
        f32 = channels_last_float32(loaded, x[:head], reference, config) if n > head else None
        tiers = [f32] if f32 else []
        logits[head:first] = cascade(tiers, loaded, x[head:first], batch, classes, paths)
        half = None
        if config.bf16 and n > first:
            trusted = torch.from_numpy(logits[:first])  # eager, or the float32 tier's within its bound
            half = reduce_precision(loaded, x, trusted, config, slack=f32.bound if f32 else 0.0)
        if n > first:
            logits[first:] = cascade([half] + tiers if half else tiers, loaded, images[first:], batch,
                                     classes, paths)
    if f32 is not None:
        info.update(float32_bound=f32.bound, float32_error=f32.error)
    if half is not None:
        info.update(precision="bfloat16+float32", margin_bound=half.bound, bf16_error=half.error,
                    recomputed=n - first - paths["bfloat16"])
    if stats is not None:
        stats.update(info)
    return logits


def cascade(tiers: list[Tier], loaded: Loaded, images: np.ndarray | torch.Tensor, batch: int,
            classes: int, paths: dict[str, int]) -> np.ndarray:
    """float32 logits (n, classes) of ``images`` through ``tiers`` in order, then the eager network.

    Each image goes on to the next tier while its top-1 margin is below the tier's bound or one
    of its logits is not finite. The images a stage gets are gathered into batches again; the
    eager network's last batch is padded with zero images to ``batch`` (so it computes as in
    whole batches, and a forward that squeezes never sees one image). ``paths`` counts where
    each image's logits came from.
    """
    out = np.empty((len(images), classes), np.float32)
    pending = np.arange(len(images))
    for tier in tiers + [None]:
        if not len(pending):
            break
        forward = tier.forward if tier else loaded.forward
        part = images if len(pending) == len(images) else images[pending]
        y = run_chunks(forward, part, loaded, batch, pad=tier is None).numpy()
        if y.shape[1] != classes:
            raise GraderError(say("run.logits_vary_images", found=y.shape[1], expected=classes))
        out[pending] = y
        if tier is None:
            passed = np.ones(len(y), bool)
        else:
            passed = np.isfinite(y).all(axis=1) & (margins(torch.from_numpy(y)) >= tier.bound)
        paths[tier.name if tier else "float32"] += int(passed.sum())
        pending = pending[~passed]
    return out
