"""The one training loop every recipe runs: the data as tensors and its augmentation
(``grader.train.data``), the recipe's network (``grader.train.init``) and optimizer
(``grader.train.optim``), evaluation.

    train(recipe, data, seed=..., device=...) -> TrainResult

Pure of file I/O: the caller (``grader.train.train_command``) writes the run folder from the
result and from the snapshots handed to ``on_epoch``.

Speed: batches are sliced from uint8 tensors made once from the data cache (``as_tensors``), so
an epoch does no per-image Python work. On a GPU the data, each epoch's random plan and the
running sums stay on the device, which is read back only every few steps (``steps_between_reads``).

Determinism: the shuffle order, flips and shifts of epoch e are drawn for the whole epoch up front
from a generator seeded by (seed, e) (``epoch_plan``); dropout draws from torch's global
generator, seeded at each epoch start and saved in the resume state. So a run interrupted at
any step and resumed repeats the uninterrupted history on the same machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from grader.data import Cifar10
from grader.errors import GraderError
from grader.train.data import as_tensors, augment, epoch_plan, normalise
from grader.train.init import new_model
from grader.train.optim import make_optimizer, set_lrs
from grader.train.recipes import Recipe

# What the training loop logs per epoch: the homework's history (grader.submission.HISTORY_KEYS) and
# the seconds elapsed, which only the run folder keeps.
LOGGED_KEYS = ("epoch", "train_loss", "train_acc", "test_acc", "elapsed_s")


@dataclass
class TrainResult:
    """What a (possibly stopped) run produced.

    Attributes:
        model: the network, weights as they are at the stop (on ``device``).
        history: per completed epoch: ``epoch`` (1-based), ``train_loss`` (mean batch loss),
            ``train_acc`` (running accuracy over the epoch's batches, 0..1), ``test_acc`` (0..1),
            ``elapsed_s`` (training seconds since the run began, summed across resumes).
        stopped: "complete", "time_budget" or "interrupted".
        resume: the state ``train(..., resume=...)`` continues from; None when complete.
    """

    model: nn.Module
    history: dict
    stopped: str
    resume: dict | None = None
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


def _autocast(device: torch.device, recipe: Recipe):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.bf16)


def _layout(x: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if recipe.channels_last else x


@torch.no_grad()
def predict_logits(net: nn.Module, images_u8: torch.Tensor, recipe: Recipe, *,
                   final: bool = False) -> torch.Tensor:
    """float32 logits (n, classes) in eval mode, flip-summed when ``recipe.tta_flip``.

    ``final`` with ``recipe.tta_translate``: also the views shifted one pixel up-left and one
    down-right (reflect-padded), at half the weight of the unshifted view (airbench's TTA).
    """
    was_training = net.training
    net.eval()
    out = []
    device = images_u8.device

    def views(x: torch.Tensor) -> torch.Tensor:
        logits = net(x).float()
        return logits + net(x.flip(3)).float() if recipe.tta_flip else logits

    for start in range(0, len(images_u8), recipe.eval_batch_size):
        x = _layout(normalise(images_u8[start:start + recipe.eval_batch_size], recipe), recipe)
        with _autocast(device, recipe):
            logits = views(x)
            if final and recipe.tta_translate:
                padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
                h, w = x.shape[2:]
                shifted = views(padded[:, :, :h, :w]) + views(padded[:, :, 2:, 2:])
                logits = logits + 0.5 * shifted
        out.append(logits)
    net.train(was_training)
    return torch.cat(out)


def evaluate(net: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, recipe: Recipe, *,
             final: bool = False) -> float:
    """Top-1 accuracy (0..1) of ``net`` on the images (``final``: see ``predict_logits``)."""
    return (predict_logits(net, images_u8, recipe, final=final).argmax(1) == labels).float().mean().item()


def steps_between_reads(device: torch.device) -> int:
    """How often the loop reads the running loss and accuracy back (and reports progress).

    They are summed on the device; reading them makes the host wait for the device to finish its
    queued work, which on a GPU costs the overlap of one step's launch with the previous step's
    compute. So every step on the CPU (free there), every 10 steps (and at each epoch's end) else.
    """
    return 1 if device.type == "cpu" else 10


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 7_919 + epoch * 104_729 + 1) % (2**63)


def train(recipe: Recipe, data: Cifar10, *, seed: int = 0, device: str = "auto",
          subset: int | None = None, time_budget: float | None = None, resume: dict | None = None,
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
        on_epoch: called after each completed epoch with a resumable snapshot (to save it).

    Returns:
        TrainResult; Ctrl-C (KeyboardInterrupt) returns one with stopped = "interrupted".

    Raises:
        GraderError: on an unusable device or data.
    """
    dev = pick_device(device)
    if dev.type == "cuda":  # deterministic: the same seed repeats its history on the same GPU
        torch.backends.cudnn.benchmark = not recipe.deterministic
        torch.backends.cudnn.deterministic = recipe.deterministic
    tensors = as_tensors(data, subset, dev)
    train_x, train_y = tensors["train_x"], tensors["train_y"]
    n = len(train_y)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total = recipe.epochs * steps_per_epoch

    if resume is None:
        net = new_model(recipe, train_x, seed, dev)
        state = {"epoch": 0, "step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "elapsed_s": 0.0,
                 "rng": None, "history": {k: [] for k in LOGGED_KEYS}}
    else:
        if model is None:
            raise ValueError("resume needs the model to continue")
        net = model.to(dev)
        net = net.to(memory_format=torch.channels_last) if recipe.channels_last else net
        state = {k: v for k, v in resume.items() if k != "optimizer"}
        state["history"] = {k: list(state["history"].get(k, [])) for k in LOGGED_KEYS}
    optimizer = make_optimizer(net, recipe, steps_per_epoch)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
    progress = progress or Progress()
    forward = torch.compile(net) if recipe.compile else net
    report_every = steps_between_reads(dev)
    reduction = "sum" if recipe.loss_sum else "mean"
    pending = {"loss": torch.zeros((), dtype=torch.float64, device=dev),
               "correct": torch.zeros((), dtype=torch.int64, device=dev)}

    def flush() -> None:
        """Move the device-side sums into the state (floats, saved with a resume)."""
        state["loss_sum"] += pending["loss"].item()
        state["correct"] += int(pending["correct"].item())
        pending["loss"].zero_()
        pending["correct"].zero_()

    def snapshot(stopped: str) -> TrainResult:
        flush()
        done = state["epoch"] * steps_per_epoch + state["step"]
        res = None if stopped == "complete" else {**state, "optimizer": optimizer.state_dict()}
        return TrainResult(net, state["history"], stopped, res, done, total)

    started = time.monotonic()
    elapsed_before = state["elapsed_s"]
    net.train()
    progress.start(total, state["epoch"] * steps_per_epoch + state["step"], recipe.epochs)
    stopped = "complete"
    try:
        while state["epoch"] < recipe.epochs:
            epoch = state["epoch"]
            plan = epoch_plan(n, epoch, seed, recipe)
            plan_dev = {k: v.to(dev) for k, v in plan.items()}  # one copy per epoch, not per step
            if state["step"] == 0 or state["rng"] is None:
                torch.manual_seed(_epoch_seed(seed, epoch))  # dropout's generator
            else:
                torch.set_rng_state(state["rng"])
            while state["step"] < steps_per_epoch:
                if time_budget is not None and time.monotonic() - started >= time_budget:
                    stopped = "time_budget"
                    break
                step = state["step"]
                idx = plan_dev["order"][step * recipe.batch_size:(step + 1) * recipe.batch_size]
                x = augment(normalise(train_x[idx], recipe), idx, plan_dev, recipe)  # (b, 3, 32, 32)
                y = train_y[idx]
                set_lrs(optimizer, epoch * steps_per_epoch + step, total, recipe)
                with _autocast(dev, recipe):
                    logits = forward(_layout(x, recipe)).float()  # (b, classes)
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing, reduction=reduction)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # Count the step only once the weights have moved, so a resume never repeats it.
                batch_loss = loss.detach().double() if recipe.loss_sum else loss.detach().double() * len(y)
                pending["loss"] += batch_loss
                pending["correct"] += (logits.detach().argmax(1) == y).sum()
                state["seen"] += len(y)
                state["step"] = step + 1
                state["rng"] = torch.get_rng_state()
                state["elapsed_s"] = elapsed_before + time.monotonic() - started
                if state["step"] % report_every == 0 or state["step"] == steps_per_epoch:
                    flush()
                    if not math.isfinite(state["loss_sum"]):
                        raise GraderError(
                            f"training diverged: the loss became {state['loss_sum']} in epoch {epoch + 1} "
                            f"(step {state['step']} of {steps_per_epoch})",
                            "lower the learning rate; the run folder keeps the last finished epoch")
                    progress.step(epoch, state["loss_sum"] / state["seen"], state["correct"] / state["seen"],
                                  epoch * steps_per_epoch + state["step"])
            if stopped != "complete":
                break
            final = epoch + 1 == recipe.epochs
            test_acc = evaluate(net, tensors["test_x"], tensors["test_y"], recipe, final=final)
            state["elapsed_s"] = elapsed_before + time.monotonic() - started
            record = {"epoch": epoch + 1, "train_loss": state["loss_sum"] / state["seen"],
                      "train_acc": state["correct"] / state["seen"], "test_acc": test_acc,
                      "elapsed_s": state["elapsed_s"]}
            for key in LOGGED_KEYS:
                state["history"][key].append(record[key])
            state.update(epoch=epoch + 1, step=0, loss_sum=0.0, correct=0, seen=0, rng=None)
            progress.epoch_end(record)
            if on_epoch is not None and state["epoch"] < recipe.epochs:
                on_epoch(snapshot("running"))
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        progress.stop()
    return snapshot(stopped)
