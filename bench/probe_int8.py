"""Why the grader has no int8 tier: a static int8 copy of the network against its bf16 tier.

    GRADER_DATA=... python bench/probe_int8.py --weights trained.pth [--n 10000]

An int8 copy (PyTorch's FX static quantization for the x86 engine: per-channel int8 weights,
uint8 activations observed on the 500 calibration images) runs the convolutions with AVX512-VNNI,
about twice bf16's multiply rate, so it would be the next step below bf16 if its predictions
could still be made identical to float32's. They can only be through the margin check of
``grader.runner.tiers.calibrate``, which holds while no image's spread (how far the copy moved a
difference of two of its logits) exceeds the bound, ``bf16_safety`` x the largest spread seen on
the calibration images. This prints, for bf16 (as the grader builds it) and for int8: seconds
per 10,000 images (batches of 100, after calibration), the calibration spread, the largest
spread over all images as a multiple of it, the share of images a bound of 3x would send on to
float32, how many changed predictions it would keep (each one a wrong grade), and how many
predictions the copy alone would change.

Quantized tensors are deprecated in PyTorch; this probe is the only place that uses them.

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from grader.data import load_cifar10
from grader.runner.network import Inference, Loaded, to_input
from grader.runner.tiers import margins, reduce_precision

BATCH = 100


def int8_copy(net: torch.nn.Module, calibration: torch.Tensor) -> torch.nn.Module:
    """``net`` quantized statically (x86 engine), activations observed on ``calibration``."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(copy.deepcopy(net), get_default_qconfig_mapping("x86"), example_inputs=(calibration[:8],))
    with torch.inference_mode():
        for start in range(0, len(calibration), BATCH):
            prepared(calibration[start:start + BATCH])
    return convert_fx(prepared)


def run(forward, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Logits of ``x`` in batches, and seconds per 10,000 images (second of two passes)."""
    with torch.inference_mode():
        forward(x[:BATCH])
        start = time.perf_counter()
        y = torch.cat([forward(x[i:i + BATCH]).to(torch.float32) for i in range(0, len(x), BATCH)])
        return y, (time.perf_counter() - start) / len(x) * 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="a trained homework net, torch.save(net)")
    parser.add_argument("--n", type=int, default=10_000, help="test images to use")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the quantization API's deprecation notices

    data = load_cifar10(expect_full=False)
    net = torch.load(args.weights, weights_only=False).eval()  # the bench's own trusted file
    loaded = Loaded(net, net, "pickled-module", {"scale": 1.0, "mean": None, "std": None})
    x = to_input(np.array(data.test_images[:args.n]), loaded.input)
    calibration = Inference.calibration_images
    reference, seconds = run(net, x)
    print(f"{args.weights.name} on {len(x)} images, {torch.get_num_threads()} threads; float32 eager "
          f"{seconds:.2f} s per 10k")
    with torch.inference_mode():
        half = reduce_precision(loaded, x[:calibration], reference[:calibration], Inference())
    copies = {"bfloat16": half.forward if half else None, "int8": int8_copy(net, x[:calibration])}
    for name, forward in copies.items():
        if forward is None:
            print(f"{name}: declined by the grader's calibration (no native bf16, or a network it refuses)")
            continue
        y, seconds = run(forward, x)
        moved = y - reference
        spread = (moved.amax(dim=1) - moved.amin(dim=1)).numpy()
        error = float(spread[:calibration].max())
        kept = margins(y[calibration:]) >= Inference.bf16_safety * error
        changed = (y.argmax(1) != reference.argmax(1)).numpy()
        flipped, wrongly_kept = int(changed.sum()), int((changed[calibration:] & kept).sum())
        print(f"{name:9s} {seconds:5.2f} s per 10k; calibration spread {error:.3f}; largest spread "
              f"{spread.max():.3f} = {spread.max() / error:.2f} x it (the bound allows {Inference.bf16_safety:g} x); "
              f"a bound of {Inference.bf16_safety:g} x sends {1 - kept.mean():.1%} on to float32 and keeps "
              f"{wrongly_kept} changed predictions; {flipped} predictions changed in all")


if __name__ == "__main__":
    main()
