"""Evaluation speed: the grader's inference path vs the homework's own evaluation loop, same run.

Target: >= 2.5x faster than the homework loop on the 10,000 test images, identical predictions;
the compute bound on the 2-core AMD EPYC is about 5.7 s in float32 and half that in bfloat16.

    GRADER_DATA=... python bench/bench_eval.py [--weights trained.pth] [--n 10000] [--repeats 1]
        [--child]

``--weights``: a trained homework network saved as the homework does (``torch.save(net)``).
Without it the network is randomly initialised; its logits barely differ (margins far below
bfloat16's rounding), so the calibrated bf16 path rightly declines and only float32 runs.

The homework loop: torchvision-style dataset with per-image ``ToTensor()``, ``DataLoader(batch_size
=100)``, ``net(images)``, ``torch.max``. The grader path is ``grader.runner.infer.infer``, the very
function the child process runs while grading (batches of 100; a bfloat16 tier, then a
channels-last float32 tier, then the eager network for the images whose margins are too small).
"grader, float32" is that without the bf16 tier; "grader, eager" everything eagerly (the
reference, as the homework runs it but without its data loader). Both use the same network, in
the same process, timed back to back; CPU seconds are printed beside wall time because other
work may share the cores. The process first fixes glibc's malloc thresholds, as the grading child
does (``grader.allocator``): without that the homework loop runs at one of two speeds, 6.9 s or
9.5-11.4 s here, depending on the process; with it, at the quicker one, every time. ``--child``
also times one whole child process (start-up included), unsandboxed and sandboxed.

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from grader.allocator import keep_freed_memory
from grader.data import load_cifar10
from grader.models import build
from grader.runner.infer import infer
from grader.runner.network import Inference, Loaded, to_input
from grader.runner.tiers import channels_last_float32, reduce_precision

from homework_notebook import NotebookDataset  # bench/, beside this script

COMPUTE_BOUND_S = 5.7  # float32, whole test set, 2 cores; bfloat16 about half


def homework_eval(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The homework's loop (batch 100, torch.no_grad); returns predicted classes."""
    loader = DataLoader(NotebookDataset(images, labels), batch_size=100, shuffle=False)
    predicted = []
    net.eval()
    with torch.no_grad():
        for x, _ in loader:
            outputs = net(x)
            _, p = torch.max(outputs.data, 1)
            predicted.append(p.numpy())
    return np.concatenate(predicted)


def timed(fn):
    """(result, wall seconds, CPU seconds of this process)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="a trained homework net, torch.save(net) [default: random init]")
    parser.add_argument("--n", type=int, default=10_000, help="test images to use")
    parser.add_argument("--repeats", type=int, default=1, help="timed repetitions of each (best kept)")
    parser.add_argument("--child", action="store_true", help="also time whole child processes")
    args = parser.parse_args()
    # The grading child fixes the allocator; here it is fixed for the homework loop too, which
    # then runs at its quickest (without it, 6.9 s or 9.5-11.4 s from process to process).
    allocator = "fixed" if keep_freed_memory() else "as it is"

    data = load_cifar10(expect_full=False)
    images, labels = np.array(data.test_images[:args.n]), data.test_labels[:args.n]
    torch.manual_seed(0)
    if args.weights:
        net = torch.load(args.weights, weights_only=False).eval()  # the bench's own trusted file
    else:
        net = build("homework_net").eval()
    loaded = Loaded(net, net, "pickled-module", {"scale": 1.0, "mean": None, "std": None})
    print(f"homework_net ({'trained: ' + args.weights.name if args.weights else 'random init'}) on "
          f"{len(images)} test images, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; malloc thresholds {allocator} "
          f"(grader.allocator)")

    infer(loaded, images[:1000])  # warm up oneDNN's kernels for every path
    runs: dict[str, list] = {"homework": [], "grader": [], "float32": [], "eager": []}
    stats: dict = {}
    for _ in range(args.repeats):
        base, *t = timed(lambda: homework_eval(net, images, labels))
        runs["homework"].append(t)
        fast, *t = timed(lambda: infer(loaded, images, config=Inference(), stats=stats))
        runs["grader"].append(t)
        _, *t = timed(lambda: infer(loaded, images, config=Inference(bf16=False)))
        runs["float32"].append(t)
        full, *t = timed(lambda: infer(loaded, images, config=Inference(fast=False)))
        runs["eager"].append(t)
        (hw, hw_c), (gr, gr_c) = runs["homework"][-1], runs["grader"][-1]
        print(f"  round {len(runs['grader'])}: load {os.getloadavg()[0]:.1f}, homework {hw:.2f} s, grader {gr:.2f} s: "
              f"{hw / gr:.2f} x wall, {hw_c / gr_c:.2f} x CPU", flush=True)
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    hw_wall, hw_cpu = best["homework"]
    bound = COMPUTE_BOUND_S * len(images) / 10_000
    for name, label in (("homework", "homework loop"), ("eager", "grader, eager"), ("float32", "grader, float32"),
                        ("grader", "grader (default)")):
        wall, cpu = best[name]
        print(f"{label:18s} {wall:6.2f} s wall {cpu:6.2f} s CPU   speed-up {hw_wall / wall:5.2f} x wall, "
              f"{hw_cpu / cpu:5.2f} x CPU   ({wall / bound:4.2f} x the fp32 bound of {bound:.2f} s)")
    print(f"target >= 2.5 x; precision {stats['precision']}; images per path {stats['paths']}")
    calibration = to_input(images[:Inference.calibration_images], loaded.input)
    trusted = torch.from_numpy(full[:Inference.calibration_images])  # eager float32
    with torch.inference_mode():  # each tier alone, calibrated as infer does, on every image
        f32 = channels_last_float32(loaded, calibration[:Inference.batch_size], trusted[:Inference.batch_size],
                                    Inference())
        half = reduce_precision(loaded, calibration, trusted, Inference())
    for tier in (f32, half):
        if tier is None:
            continue
        with torch.inference_mode():
            alone = np.concatenate([tier.forward(to_input(images[i:i + 100], loaded.input)).numpy()
                                    for i in range(0, len(images), 100)])
        moved = alone - full
        spread = moved.max(axis=1) - moved.min(axis=1)  # how far the tier moved a difference of two logits
        flipped = int((alone.argmax(1) != full.argmax(1)).sum())
        print(f"{tier.name} alone on all {len(images)} images: {flipped} predictions differ from float32; "
              f"calibration spread {tier.error:.3g}, bound {tier.bound:.3g}; largest spread {spread.max():.3g} = "
              f"{spread.max() / tier.error:.2f} x the calibration spread, {spread.max() / tier.bound:.3f} of the bound")
    if stats["margin_bound"] is not None:
        print(f"grader's bf16 tier: margin bound {stats['margin_bound']:.4f} (calibration spread "
              f"{stats['bf16_error']:.4f}), recomputed in float32: {stats['recomputed']}/{len(images)}")
    for name, predicted in (("grader vs homework loop", fast.argmax(1)), ("grader vs float32", fast.argmax(1)),
                            ("float32 vs homework loop", full.argmax(1))):
        other = base if "homework" in name else full.argmax(1)
        same = int((predicted == other).sum())
        print(f"identical predictions, {name}: {same}/{len(images)}{'' if same == len(images) else '  <-- MISMATCH'}")
    if args.child:
        time_child(net, images)


def time_child(net: torch.nn.Module, images: np.ndarray) -> None:
    """One whole child process per mode: wall time, parent side, and where the child spent it."""
    from grader.runner.launch import run_submission
    from grader.sandbox import check_available
    from grader.submission import inspect_submission

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pth"
        torch.save(net, path)
        submission = inspect_submission(path)
        modes = [("unsandboxed", False)]
        try:
            check_available()
            modes.append(("sandboxed", True))
        except Exception as exc:  # noqa: BLE001 - the bench reports and goes on
            print(f"no sandbox: {exc}")
        for label, sandbox in modes:
            out, wall, _ = timed(lambda: run_submission(submission, images, classes=10, sandbox=sandbox))
            t = out.info["timings"]
            rest = wall - t["load"] - t["inference"] - t["describe"]
            print(f"child, {label:11s} {wall:6.2f} s wall: start-up + transfer {rest:.2f}, load {t['load']:.2f}, "
                  f"inference {t['inference']:.2f}, describe {t['describe']:.2f}")


if __name__ == "__main__":
    main()
