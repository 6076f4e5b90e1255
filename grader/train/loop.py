"""The one training loop every recipe runs: the data as tensors and its augmentation
(``grader.train.data``), the recipe's network (``grader.train.init``) and optimizer
(``grader.train.optim``), evaluation.

    train(recipe, data, seed=..., device=...) -> TrainResult
    run_epoch(setup, state, progress) -> bool   one epoch's steps, advancing the TrainState (state.py)

Pure of file I/O: the caller (``grader.commands.train.train_command``) writes the run folder from the
result and from the snapshots handed to ``on_epoch``.

What the history logs is what the homework and ``grader grade`` mean: ``train_loss`` is the plain
cross-entropy of the training batches (train mode, before each step; no label smoothing), averaged
over the epoch's images (the mean of its batch means when the batches are of one size);
``test_acc`` is the accuracy of the network alone, in eval mode and float32, on the run's input
normalisation (``predict_logits``): the number ``grader grade`` measures on the run folder.

Speed: batches are sliced from uint8 tensors made once from the data cache (``as_tensors``), so
an epoch does no per-image Python work. On a GPU the data, each epoch's random plan and the
running sums stay on the device, which is read back only every few steps (``steps_between_reads``).

Determinism: the shuffle order, flips and shifts of epoch e are drawn for the whole epoch up front
from a generator seeded by (seed, e) (``epoch_plan``); dropout draws from torch's global
generator, seeded at each epoch start and saved in the resume state. So a run interrupted at
any step and resumed repeats the uninterrupted history on the same machine.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from grader.data import Cifar10
from grader.errors import GraderError
from grader.train.data import as_tensors, augment, epoch_plan, normalise
from grader.train.init import new_model
from grader.train.optim import Optimizers, make_optimizer, set_lrs
from grader.train.recipes import Recipe
from grader.train.state import TrainState


@dataclass
class TrainResult:
    """What a (possibly stopped) run produced.

    Attributes:
        model: the network, weights as they are at the stop (on ``device``).
        history: per completed epoch: ``epoch`` (1-based), ``train_loss`` (plain cross-entropy in
            train mode, averaged over the epoch's training images), ``train_acc`` (running
            accuracy over the epoch's batches, 0..1), ``test_acc`` (0..1, ``measure_accuracy``),
            ``elapsed_s`` (training seconds since the run began, summed across resumes).
        stopped: "complete", "time_budget" or "interrupted".
        resume: the state ``train(..., resume=...)`` continues from (its ``optimizer`` filled in);
            None when complete.
        steps_done: optimizer steps finished in the run, resumed ones included.
        steps_total: optimizer steps of the whole run.
    """

    model: nn.Module
    history: dict
    stopped: str
    resume: TrainState | None = None
    steps_done: int = 0
    steps_total: int = 0


class Progress:
    """What the loop reports as it goes; the default says nothing.

    ``step`` comes after every step on a CPU and every few on a GPU (``steps_between_reads``),
    with the running loss and accuracy of the epoch and ``done``, the steps finished in the run.
    """

    def start(self, total_steps: int, done_steps: int, epochs: int) -> None: ...
    def step(self, epoch: int, loss: float, acc: float, done: int) -> None: ...
    def epoch_end(self, record: dict) -> None: ...
    def stop(self) -> None: ...


def pick_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu.

    Raises:
        GraderError: for ``cuda`` on a machine without a usable CUDA GPU, or an unknown name.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise GraderError("--device cuda: no CUDA GPU is visible to torch",
                          "use --device cpu (or auto), or install a CUDA build of torch")
    if device not in ("cpu", "cuda"):
        raise GraderError(f"unknown device {device!r}", "use auto, cpu or cuda")
    return torch.device(device)


def bf16_pays(device: torch.device) -> bool:
    """Whether bfloat16 autocast makes training faster here: on CUDA, and on a CPU whose oneDNN has
    native bf16 (AVX512-BF16, AMX). Elsewhere torch emulates it: a fast-recipe step on a 2-core
    AVX2 CPU took 10-17 s in bf16 against 1.6-3.2 s in float32, so such a CPU trains in float32."""
    from grader.runner.tiers import native_bf16

    return device.type == "cuda" or (device.type == "cpu" and native_bf16())


def _layout(x: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if recipe.channels_last else x


@contextlib.contextmanager
def _exact_float32(device: torch.device):
    """Full float32 arithmetic on CUDA (no TF32 rounding of convolutions and matmuls) for a while."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@torch.no_grad()
def predict_logits(net: nn.Module, images_u8: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """float32 logits (n, classes) of ``net`` alone, computed as ``grader grade`` computes them.

    Eval mode, float32 (no autocast, no TF32), the recipe's input normalisation (the run folder's
    ``input``), one view of each image: the network the run folder holds, nothing around it. Only
    the order of float32 sums may differ from the grader's (channels_last, larger batches).
    """
    was_training = net.training
    net.eval()
    out = []
    with _exact_float32(images_u8.device):
        for start in range(0, len(images_u8), recipe.eval_batch_size):
            x = _layout(normalise(images_u8[start:start + recipe.eval_batch_size], recipe), recipe)
            out.append(net(x).float())  # (b, classes)
    net.train(was_training)
    return torch.cat(out)


def measure_accuracy(net: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, recipe: Recipe) -> float:
    """Top-1 accuracy (0..1) of ``net`` on the images, correct / n as ``grader grade`` reports it
    (``predict_logits``)."""
    return int((predict_logits(net, images_u8, recipe).argmax(1) == labels).sum()) / len(labels)


def steps_between_reads(device: torch.device) -> int:
    """How often the loop reads the running loss and accuracy back (and reports progress).

    They are summed on the device; reading them makes the host wait for the device to finish its
    queued work, which on a GPU costs the overlap of one step's launch with the previous step's
    compute. So every step on the CPU (free there), every 10 steps (and at each epoch's end) else.
    """
    return 1 if device.type == "cpu" else 10


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 7_919 + epoch * 104_729 + 1) % (2**63)


class RunningSums:
    """The epoch's summed batch losses and correct count, kept on the device between reads, because a
    read waits for the device (``steps_between_reads``)."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)

    def add(self, loss: torch.Tensor, correct: torch.Tensor) -> None:
        self.loss += loss
        self.correct += correct

    def move_into(self, state: TrainState) -> None:
        """Add the sums to the state's (Python numbers, saved with a resume) and restart them at 0."""
        state.loss_sum += self.loss.item()
        state.correct += int(self.correct.item())
        self.loss.zero_()
        self.correct.zero_()


@dataclass(frozen=True)
class LoopSetup:
    """What stays fixed through one call of ``train``.

    Attributes:
        recipe: every hyperparameter.
        seed: seeds each epoch's plan and dropout.
        device: where the data, the network and the running sums live.
        tensors: ``as_tensors``'s uint8 images and int64 labels of both splits, on ``device``.
        net: the network being trained.
        forward: ``net``, or its ``torch.compile`` (``recipe.compile``).
        bf16: the training forward runs under bfloat16 autocast (``recipe.bf16`` where ``bf16_pays``).
        optimizer: the recipe's optimizer over ``net``.
        steps_per_epoch: optimizer steps per pass over the training images (the last may be short).
        report_every: steps between reads of the running sums (``steps_between_reads``).
        started: ``time.monotonic()`` when this call began training.
        elapsed_before: training seconds of the run before this call (from its resume state).
        time_budget: seconds for this call (None: no limit).
    """

    recipe: Recipe
    seed: int
    device: torch.device
    tensors: dict[str, torch.Tensor]
    net: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    bf16: bool
    optimizer: torch.optim.Optimizer | Optimizers
    steps_per_epoch: int
    report_every: int
    started: float
    elapsed_before: float
    time_budget: float | None

    @property
    def total_steps(self) -> int:
        return self.recipe.epochs * self.steps_per_epoch

    def steps_done(self, state: TrainState) -> int:
        return state.epoch * self.steps_per_epoch + state.step

    def elapsed(self) -> float:
        """Training seconds of the whole run, this call's included."""
        return self.elapsed_before + time.monotonic() - self.started

    def out_of_time(self) -> bool:
        return self.time_budget is not None and time.monotonic() - self.started >= self.time_budget


def train(recipe: Recipe, data: Cifar10, *, seed: int = 0, device: str = "auto",
          subset: int | None = None, time_budget: float | None = None, resume: TrainState | None = None,
          model: nn.Module | None = None, progress: Progress | None = None,
          on_epoch: Callable[[TrainResult], None] | None = None) -> TrainResult:
    """Train ``recipe`` on ``data`` and return the model, its history and how it stopped.

    Args:
        recipe: every hyperparameter (``recipe.epochs`` is the total, including resumed epochs).
        data: the dataset; ``subset`` keeps N of its training images (a fixed draw: ``as_tensors``).
        seed: seeds initialisation, shuffling, augmentation and dropout.
        device: "auto", "cpu" or "cuda".
        time_budget: seconds for this call; at the first step past it, stop with a resume state.
        resume: a previous result's ``resume`` state; ``model`` must then hold its weights.
        model: the network to continue training (with ``resume``).
        progress: receives per-step and per-epoch reports.
        on_epoch: called after each completed epoch but the last with a resumable snapshot (to save it).

    Returns:
        TrainResult; Ctrl-C (KeyboardInterrupt) returns one with stopped = "interrupted".

    Raises:
        GraderError: on an unusable device or data, or a loss that stops being finite.
    """
    setup, state = _set_up(recipe, data, seed, pick_device(device), subset, time_budget, resume, model)
    progress = progress or Progress()
    setup.net.train()
    progress.start(setup.total_steps, setup.steps_done(state), recipe.epochs)
    stopped = "complete"
    try:
        while state.epoch < recipe.epochs:
            if not run_epoch(setup, state, progress):
                stopped = "time_budget"
                break
            test_acc = measure_accuracy(setup.net, setup.tensors["test_x"], setup.tensors["test_y"], recipe)
            state.elapsed_s = setup.elapsed()
            progress.epoch_end(state.end_epoch(test_acc))
            if on_epoch is not None and state.epoch < recipe.epochs:
                on_epoch(_snapshot(setup, state, "running"))
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        progress.stop()
    return _snapshot(setup, state, stopped)


def _set_up(recipe: Recipe, data: Cifar10, seed: int, dev: torch.device, subset: int | None,
            time_budget: float | None, resume: TrainState | None,
            model: nn.Module | None) -> tuple[LoopSetup, TrainState]:
    """The data on ``dev``, the network (new, or ``model`` to continue) and its optimizer, and the
    state to start from (``resume``'s, without its optimizer state, which is loaded)."""
    if dev.type == "cuda":  # deterministic: the same seed repeats its history on the same GPU
        torch.backends.cudnn.benchmark = not recipe.deterministic
        torch.backends.cudnn.deterministic = recipe.deterministic
    tensors = as_tensors(data, subset, dev)
    steps_per_epoch = math.ceil(len(tensors["train_y"]) / recipe.batch_size)
    if resume is None:
        net, state = new_model(recipe, tensors["train_x"], seed, dev), TrainState()
    elif model is None:
        raise ValueError("resume needs the model to continue")
    else:
        net = model.to(dev)
        net = net.to(memory_format=torch.channels_last) if recipe.channels_last else net
        state = replace(resume, optimizer=None, history={k: list(v) for k, v in resume.history.items()})
    optimizer = make_optimizer(net, recipe, steps_per_epoch)
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer)
    setup = LoopSetup(recipe, seed, dev, tensors, net, torch.compile(net) if recipe.compile else net,
                      recipe.bf16 and bf16_pays(dev), optimizer, steps_per_epoch, steps_between_reads(dev),
                      time.monotonic(), state.elapsed_s, time_budget)
    return setup, state


def run_epoch(setup: LoopSetup, state: TrainState, progress: Progress) -> bool:
    """Train epoch ``state.epoch`` from step ``state.step`` to its last step, advancing ``state``
    after each step, so a stop anywhere leaves a state that resumes the same history.

    Returns:
        True when the epoch's steps are all done, False when the time budget ran out first.

    Raises:
        GraderError: when the running loss stops being finite.
        KeyboardInterrupt: passed on, with ``state`` holding every finished step.
    """
    recipe, epoch = setup.recipe, state.epoch
    plan = epoch_plan(len(setup.tensors["train_y"]), epoch, setup.seed, recipe)
    plan = {k: v.to(setup.device) for k, v in plan.items()}  # one copy per epoch, not per step
    if state.step == 0 or state.rng is None:
        torch.manual_seed(_epoch_seed(setup.seed, epoch))  # dropout's generator
    else:
        torch.set_rng_state(state.rng)
    sums = RunningSums(setup.device)
    try:
        while state.step < setup.steps_per_epoch:
            if setup.out_of_time():
                return False
            state.seen += _train_step(setup, plan, epoch, state.step, sums)
            # Count the step only once the weights have moved, so a resume never repeats it.
            state.step += 1
            state.rng = torch.get_rng_state()
            state.elapsed_s = setup.elapsed()
            if state.step % setup.report_every == 0 or state.step == setup.steps_per_epoch:
                sums.move_into(state)
                _check_finite(state, setup.steps_per_epoch)
                progress.step(epoch, state.loss_sum / state.seen, state.correct / state.seen,
                              setup.steps_done(state))
    finally:
        sums.move_into(state)
    return True


def _train_step(setup: LoopSetup, plan: dict[str, torch.Tensor], epoch: int, step: int,
                sums: RunningSums) -> int:
    """One optimizer step on the plan's batch ``step`` of ``epoch``; adds the batch's summed plain
    cross-entropy (``batch_loss``) and its correct predictions to ``sums``. Returns the batch's size."""
    recipe, train_x, train_y = setup.recipe, setup.tensors["train_x"], setup.tensors["train_y"]
    idx = plan["order"][step * recipe.batch_size:(step + 1) * recipe.batch_size]
    x = augment(normalise(train_x[idx], recipe), idx, plan, recipe)  # (b, 3, 32, 32)
    y = train_y[idx]
    set_lrs(setup.optimizer, epoch * setup.steps_per_epoch + step, setup.total_steps, recipe)
    with torch.autocast(setup.device.type, dtype=torch.bfloat16, enabled=setup.bf16):
        logits = setup.forward(_layout(x, recipe)).float()  # (b, classes)
    objective = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing,
                                reduction="sum" if recipe.loss_sum else "mean")
    setup.optimizer.zero_grad(set_to_none=True)
    objective.backward()
    setup.optimizer.step()
    sums.add(batch_loss(logits, y, objective, recipe), (logits.detach().argmax(1) == y).sum())
    return len(y)


def batch_loss(logits: torch.Tensor, y: torch.Tensor, objective: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """The batch's part of the logged ``train_loss``: its plain cross-entropy summed over its images
    (float64), whatever the recipe optimises (label smoothing, a summed loss).

    Args:
        logits: the batch's training-mode logits (b, classes), as the step computed them.
        objective: the loss the step minimised, reused when it is plain cross-entropy (the
            homework recipe: the same numbers as its notebook's log).
    """
    if recipe.label_smoothing == 0:
        return objective.detach().double() * (1 if recipe.loss_sum else len(y))
    return F.cross_entropy(logits.detach(), y, reduction="sum").double()


def _check_finite(state: TrainState, steps_per_epoch: int) -> None:
    if not math.isfinite(state.loss_sum):
        raise GraderError(f"training diverged: the loss became {state.loss_sum} in epoch {state.epoch + 1} "
                          f"(step {state.step} of {steps_per_epoch})",
                          "lower the learning rate; the run folder keeps the last finished epoch")


def _snapshot(setup: LoopSetup, state: TrainState, stopped: str) -> TrainResult:
    """The result as it stands; unless complete, with a copy of the state to resume from."""
    history = {k: list(v) for k, v in state.history.items()}
    resume = None if stopped == "complete" else replace(state, history=history,
                                                        optimizer=setup.optimizer.state_dict())
    return TrainResult(setup.net, history, stopped, resume, setup.steps_done(state), setup.total_steps)
