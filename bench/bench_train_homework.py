"""Bench: the homework recipe's training step against the homework's own loop, same run.

Baseline (the notebook's way): a torchvision-style Dataset that turns each uint8 image into a
PIL image and applies ToTensor, a DataLoader(batch_size=100, shuffle=True), homework_net, SGD
lr 0.03, cross-entropy. Ours: grader.train.loop.train with the homework recipe, which slices
batches from uint8 tensors. Same network, same threads, same process.

Timing a whole epoch (500 steps) takes many minutes on a 2-core CPU, so each side times
``--steps`` training steps after one warm-up step, in alternating rounds (to share out the
machine's load), and the per-step median is extrapolated to seconds per epoch (x 500).
Test-set evaluation is not timed (both sides do the same one). A third line times the float32
arithmetic alone (forward, backward and SGD step on one fixed batch): the floor under any
float32 loop, and so under the target ratio.

    GRADER_DATA=/work/shared/data/cifar10-jpeg.tar.gz nice -n 15 .venv/bin/python bench/bench_train_homework.py

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from grader.data import load_cifar10
from grader.models import build
from grader.train.loop import Progress, train
from grader.train.recipes import HomeworkRecipe

from homework_notebook import NotebookDataset  # bench/, beside this script


def time_notebook_loop(data, recipe: HomeworkRecipe, steps: int) -> float:
    """Seconds per step of the notebook's loop (median over ``steps`` after one warm-up)."""
    torch.manual_seed(0)
    net = build(recipe.arch, **recipe.arch_args).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr)
    loader = torch.utils.data.DataLoader(NotebookDataset(data.train_images, data.train_labels),
                                         batch_size=recipe.batch_size, shuffle=True)
    times, last = [], time.perf_counter()
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        now = time.perf_counter()
        if i > 0:  # step 0 warms up oneDNN
            times.append(now - last)
        last = now
        if i == steps:
            break
    return statistics.median(times)


class StepClock(Progress):
    """Records the time of each step and stops the run after ``steps`` + 1 of them."""

    def __init__(self, steps: int):
        self.steps, self.stamps = steps, []

    def step(self, epoch: int, loss: float, acc: float, done: int) -> None:
        self.stamps.append(time.perf_counter())
        if len(self.stamps) == self.steps + 1:
            raise KeyboardInterrupt  # the loop's own clean stop


def time_grader_loop(data, recipe: HomeworkRecipe, steps: int) -> float:
    clock = StepClock(steps)
    train(recipe, data, seed=0, device="cpu", progress=clock)
    return statistics.median(np.diff(clock.stamps))


def time_arithmetic_floor(recipe: HomeworkRecipe, steps: int) -> float:
    """Seconds per step of the network's arithmetic alone: one fixed channels_last batch, reused,
    so no data is read, converted or shuffled. No loop in float32 can beat it."""
    torch.manual_seed(0)
    net = build(recipe.arch, **recipe.arch_args).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr)
    x = torch.rand(recipe.batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (recipe.batch_size,))
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_cifar10()
    recipe = HomeworkRecipe()
    steps_per_epoch = math.ceil(len(data.train_labels) / recipe.batch_size)
    print(f"homework recipe, batch {recipe.batch_size}, {steps_per_epoch} steps/epoch, "
          f"{args.threads} threads; {args.rounds} rounds x {args.steps} steps per side, "
          f"median step extrapolated to an epoch (not a full epoch timed)", flush=True)
    notebook, ours, floor = [], [], []
    for r in range(args.rounds):
        notebook.append(time_notebook_loop(data, recipe, args.steps))
        ours.append(time_grader_loop(data, recipe, args.steps))
        floor.append(time_arithmetic_floor(recipe, args.steps))
        print(f"  round {r + 1}: notebook {notebook[-1] * 1000:.0f} ms/step, grader {ours[-1] * 1000:.0f} ms/step, "
              f"float32 arithmetic alone {floor[-1] * 1000:.0f} ms/step; "
              f"ratio {ours[-1] / notebook[-1]:.2f}x", flush=True)
    nb, gr = statistics.median(notebook), statistics.median(ours)
    print(f"notebook loop (DataLoader + ToTensor): {nb * steps_per_epoch:.1f} s/epoch")
    print(f"grader loop (uint8 tensors):          {gr * steps_per_epoch:.1f} s/epoch")
    # The median of the per-round ratios compares steps timed back to back, under the same load.
    ratio = statistics.median(o / n for o, n in zip(ours, notebook))
    print(f"ratio grader / notebook: {ratio:.2f}x, median of per-round ratios (target <= 0.6x)")
    best = statistics.median(f / n for f, n in zip(floor, notebook))
    print(f"ratio float32 arithmetic alone / notebook: {best:.2f}x (the least any float32 loop can reach)")


if __name__ == "__main__":
    main()
