"""Evaluation speed: the grader's inference path vs the homework's own evaluation loop, same run.

Target: >= 2.5x faster than the homework loop on the 10,000 test images, identical predictions.

    GRADER_DATA=... python bench/bench_eval.py [--n 10000] [--repeats 1]

The homework loop: torchvision-style dataset with per-image ``ToTensor()``, ``DataLoader(batch_size
=100)``, ``net(images)``, ``torch.max``. The grader path is ``grader.runner.child.infer``, the very
function the child process runs while grading (whole-array conversion, large batches,
inference_mode). Both use the same network, in the same process, timed back to back.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from grader.data import load_cifar10
from grader.models import build
from grader.runner.child import Inference, Loaded, infer


class HomeworkTestSet(Dataset):
    """As the homework read the test set: one PIL image at a time through ToTensor."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels, self.to_tensor = images, labels, transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.to_tensor(Image.fromarray(self.images[i])), int(self.labels[i])


def homework_eval(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The homework's loop (batch 100, torch.no_grad); returns predicted classes."""
    loader = DataLoader(HomeworkTestSet(images, labels), batch_size=100, shuffle=False)
    predicted = []
    net.eval()
    with torch.no_grad():
        for x, _ in loader:
            outputs = net(x)
            _, p = torch.max(outputs.data, 1)
            predicted.append(p.numpy())
    return np.concatenate(predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="test images to use")
    parser.add_argument("--repeats", type=int, default=1, help="timed repetitions of each (best kept)")
    args = parser.parse_args()

    data = load_cifar10(expect_full=False)
    images, labels = data.test_images[:args.n], data.test_labels[:args.n]
    torch.manual_seed(0)
    net = build("homework_net").eval()
    loaded = Loaded(net, net, "pickled-module", {"scale": 1.0, "mean": None, "std": None})
    print(f"homework_net on {len(images)} test images, {torch.get_num_threads()} threads, torch {torch.__version__}")

    infer(loaded, images[:500])  # warm up oneDNN's kernels for both paths
    base_s, fast_s, base_cpu, fast_cpu = [], [], [], []
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        base = homework_eval(net, images, labels)
        base_s.append(time.perf_counter() - t)
        base_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        logits = infer(loaded, images, config=Inference())
        fast_s.append(time.perf_counter() - t)
        fast_cpu.append(time.process_time() - c)
    fast = logits.argmax(axis=1)
    same = int((fast == base).sum())
    print(f"homework loop  {min(base_s):7.2f} s")
    print(f"grader infer   {min(fast_s):7.2f} s   ({1000 * min(fast_s) / len(images):.3f} ms/image)")
    print(f"speed-up       {min(base_s) / min(fast_s):7.2f} x wall   (target >= 2.5 x)")
    print(f"CPU seconds    {min(base_cpu):7.2f} vs {min(fast_cpu):.2f}: {min(base_cpu) / min(fast_cpu):.2f} x "
          "(robust when other work shares the cores)")
    print(f"identical predictions: {same}/{len(images)}{'' if same == len(images) else '  <-- MISMATCH'}")


if __name__ == "__main__":
    main()
