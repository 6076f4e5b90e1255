"""Bench: time to 94% on one CUDA GPU, the fast-gpu recipe against airbench94, same GPU, same run.

Both train on the same data: whatever ``grader.data.load_cifar10`` finds (GRADER_DATA or --data;
the shared JPEG copy here), handed to airbench as its own ``cifar10/train.pt`` and ``test.pt``.

airbench94 is the published ``airbench`` package (``pip install airbench==0.1.8``), run exactly
as its ``train94()`` runs by default, timed by its own clock: CUDA events around the whitening
setup, every training epoch and the final multi-crop TTA evaluation; not around loading the data
to the GPU or its per-epoch progress evaluations.

fast-gpu is ``grader.train.loop.train`` with the recipe of that name, timed the same way by the
loop's progress hooks (every hook that reports reads the GPU's results, so the clock is synced):
from the call (data to the GPU, building and whitening the network included) to the end of the
final evaluation, less the progress evaluations after the other epochs, plus the time of
airbench's multi-crop TTA on the trained network (``tta_accuracy``). The run's own log measures
the network alone, as ``grader grade`` does; airbench94's accuracy is a TTA accuracy, so the
comparison uses fast-gpu's TTA accuracy too, and prints both. Each side runs one warm-up first
(cuDNN's kernel choice, allocator, and torch.compile when asked).

    GRADER_DATA=... python bench/bench_train_gpu.py [--runs 5] [--variant epochs=7] [--budget 300]

``--variant`` adds a run of fast-gpu with some fields replaced (key=value,...; repeatable).
``--budget`` stops starting new runs after that many seconds (a lease on a GPU is short).

Not run yet (no GPU has been available); bench/gpu_check.sh is the whole check as one
prepared command, and docs/benchmarks.md is where its figures belong.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import statistics
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from grader.data import load_cifar10
from grader.train.data import as_tensors, normalise
from grader.train.loop import Progress, train
from grader.train.recipes import get_recipe

TARGET = 0.94


class Clock(Progress):
    """Training time, per epoch, without the progress evaluations (the last one counts)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.setup = None
        self.last_step = None
        self.eval_s = 0.0
        self.points = []  # (seconds with this epoch's evaluation, test accuracy)

    def start(self, total_steps, done_steps, epochs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.setup = time.perf_counter() - self.t0

    def step(self, epoch, loss, acc, done):
        self.last_step = time.perf_counter()  # the loop has just read the loss: the GPU is done

    def epoch_end(self, record):
        now = time.perf_counter()
        self.points.append((now - self.t0 - self.eval_s, record["test_acc"]))
        self.eval_s += now - self.last_step


@torch.no_grad()
def tta_accuracy(net, test_x, test_y, recipe) -> float:
    """airbench94's evaluation of ``net``: the logits of each image, its mirror image, and both
    shifted one pixel up-left and down-right (reflect-padded) at half weight, summed; under
    bfloat16 autocast on CUDA, as airbench evaluates."""
    def views(x):  # (n, c, h, w) -> (n, classes): the image and its mirror image
        return net(x).float() + net(x.flip(3)).float()

    net.eval()
    correct = 0
    for start in range(0, len(test_y), recipe.eval_batch_size):
        x = normalise(test_x[start:start + recipe.eval_batch_size], recipe)
        x = x.contiguous(memory_format=torch.channels_last) if recipe.channels_last else x
        h, w = x.shape[2:]
        padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")  # (n, c, h+2, w+2)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
            logits = views(x) + 0.5 * (views(padded[:, :, :h, :w]) + views(padded[:, :, 2:, 2:]))
        correct += int((logits.argmax(1) == test_y[start:start + len(x)]).sum())
    return correct / len(test_y)


def run_fast_gpu(recipe, data, seed: int, device: str = "cuda", subset: int | None = None) -> dict:
    clock = Clock()
    result = train(recipe, data, seed=seed, device=device, subset=subset, progress=clock)
    seconds, acc = clock.points[-1]
    tensors = as_tensors(data, subset, torch.device(device))
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    acc_tta = tta_accuracy(result.model, tensors["test_x"], tensors["test_y"], recipe)  # reads back: synced
    tta_s = time.perf_counter() - began
    reached = [s for s, a in clock.points if a >= TARGET]
    return {"seconds": seconds + tta_s, "acc": acc_tta, "acc_network_alone": acc, "tta_s": tta_s,
            "setup_s": clock.setup, "to_target_s_network_alone": reached[0] if reached else None,
            "per_epoch": [round(a, 4) for _, a in clock.points], "stopped": result.stopped}


def write_airbench_data(data, root: Path) -> None:
    """airbench reads cifar10/{train,test}.pt: uint8 NHWC images, int64 labels, class names."""
    folder = root / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    for split, images, labels in (("train", data.train_images, data.train_labels),
                                  ("test", data.test_images, data.test_labels)):
        torch.save({"images": torch.tensor(images), "labels": torch.tensor(labels, dtype=torch.int64),
                    "classes": list(data.classes)}, folder / f"{split}.pt")


def run_airbench(airbench) -> dict:
    """One airbench94 run with its own logging; its final row holds the TTA accuracy and time."""
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        airbench.train94(verbose=True)
    wall = time.perf_counter() - start
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.getvalue().splitlines()
            if line.startswith("|")]
    final = [r for r in rows if len(r) == 7 and r[1] == "eval"]
    if not final:
        raise RuntimeError(f"no final row in airbench's output:\n{out.getvalue()[-2000:]}")
    return {"seconds": float(final[-1][6]), "acc": float(final[-1][5]), "wall_s": wall}


def airbench_runs(count: int, data, time_left) -> list[dict]:
    """airbench94's warm-up, then up to ``count`` timed runs, in a folder holding its data files."""
    runs = []
    try:
        import airbench

        with tempfile.TemporaryDirectory() as tmp:
            write_airbench_data(data, Path(tmp))
            here = os.getcwd()
            os.chdir(tmp)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    airbench.warmup94()
                for _ in range(count):
                    if not time_left():
                        print(f"   budget spent: airbench94 stopped after {len(runs)} runs", flush=True)
                        break
                    r = run_airbench(airbench)
                    runs.append(r)
                    print(f"   airbench94: {r['acc']:.2%} in {r['seconds']:.2f} s (wall {r['wall_s']:.2f} s)",
                          flush=True)
            finally:
                os.chdir(here)
    except Exception:
        traceback.print_exc()
    return runs


def summarise(name: str, runs: list[dict]) -> dict:
    if not runs:
        return {"name": name, "runs": 0}
    secs, accs = [r["seconds"] for r in runs], [r["acc"] for r in runs]
    s = {"name": name, "runs": len(runs), "mean_s": statistics.mean(secs), "min_s": min(secs),
         "mean_acc": statistics.mean(accs), "min_acc": min(accs), "max_acc": max(accs)}
    print(f"== {name}: {len(runs)} runs, {s['mean_s']:.2f} s mean (min {s['min_s']:.2f}), "
          f"accuracy {s['mean_acc']:.2%} mean ({s['min_acc']:.2%}..{s['max_acc']:.2%})", flush=True)
    return s


def parse_variant(text: str) -> dict:
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {k.strip(): ast.literal_eval(v.strip()) for k, v in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--variant", action="append", default=[], help="fast-gpu fields, key=value,...")
    parser.add_argument("--skip-airbench", action="store_true")
    parser.add_argument("--budget", type=float, default=float("inf"), help="seconds; no new run after it")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--smoke", type=int, default=None, metavar="N",
                        help="check the script on the CPU: fast-gpu only, N training images, one epoch")
    args = parser.parse_args()
    began = time.perf_counter()
    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: this bench compares GPU training times (--smoke N checks it on the CPU)")
    data = load_cifar10(args.data)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU smoke test"
    print(f"data: {data.source} ({len(data.train_labels)} train, {len(data.test_labels)} test); "
          f"torch {torch.__version__}; {gpu}", flush=True)

    def time_left() -> bool:
        return time.perf_counter() - began < args.budget

    results = {"device": gpu, "torch": torch.__version__, "sides": []}
    base = get_recipe("fast-gpu")
    if args.smoke:
        base = replace(base, epochs=1, batch_size=250, eval_batch_size=500)
        args.skip_airbench = True
    variants = [(f"fast-gpu {v}", replace(base, **parse_variant(v))) for v in args.variant]
    # airbench right after the default recipe: a budget spent on variants never costs the baseline
    for name, recipe in [("fast-gpu", base), ("airbench94", None)] + variants:
        if recipe is None:
            if not args.skip_airbench and time_left():
                results["sides"].append({**summarise(name, runs := airbench_runs(args.runs, data, time_left)),
                                         "all": runs})
            continue
        runs = []
        try:
            run_fast_gpu(replace(recipe, epochs=1), data, 100, device, args.smoke)  # warm-up
            for seed in range(args.runs):
                if not time_left():
                    print(f"   budget spent: {name} stopped after {len(runs)} runs", flush=True)
                    break
                r = run_fast_gpu(recipe, data, seed, device, args.smoke)
                runs.append(r)
                print(f"   {name} seed {seed}: {r['acc']:.2%} with TTA in {r['seconds']:.2f} s (setup "
                      f"{r['setup_s']:.2f} s, TTA {r['tta_s']:.2f} s); network alone {r['acc_network_alone']:.2%}; "
                      f"per epoch {r['per_epoch']}", flush=True)
        except Exception:
            traceback.print_exc()
        results["sides"].append({**summarise(name, runs), "all": runs})

    ours = results["sides"][0]
    theirs = [s for s in results["sides"] if s["name"] == "airbench94" and s["runs"]]
    if ours["runs"] and theirs:
        t = theirs[0]
        print(f"fast-gpu / airbench94 time: {ours['mean_s'] / t['mean_s']:.2f}x; accuracy "
              f"{ours['mean_acc']:.2%} vs {t['mean_acc']:.2%} (target {TARGET:.0%})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
