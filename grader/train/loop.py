"""The one training loop every recipe runs: data as tensors, augmentation, the recipe's optimizer
(``grader.train.optim``), evaluation.

    train(recipe, data, seed=..., device=...) -> TrainResult

Pure of file I/O: the caller (``grader.train.train_command``) writes the run folder from the
result and from the snapshots handed to ``on_epoch``.

Speed: batches are sliced from uint8 tensors made once from the data cache (n, 3, 32, 32), so
an epoch does no per-image Python work; the conversion pixels / 255 is the same arithmetic as
torchvision's ToTensor, so the homework recipe sees the same numbers as the notebook. On a GPU
the data, each epoch's random plan and the running sums stay on the device, which is read back
only every few steps (``steps_between_reads``).

Determinism: the shuffle order, flips and shifts of epoch e come from a generator seeded by
(seed, e) and are drawn for the whole epoch up front; dropout draws from torch's global
generator, seeded at each epoch start and saved in the resume state. So a run interrupted at
any step and resumed repeats the uninterrupted history on the same machine.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grader.data import Cifar10
from grader.errors import GraderError
from grader.models import build
from grader.train.optim import make_optimizer, set_lrs
from grader.train.recipes import Recipe

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_acc", "elapsed_s")


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
    extra: dict = field(default_factory=dict)


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


def as_tensors(data: Cifar10, subset: int | None, device: torch.device) -> dict[str, torch.Tensor]:
    """uint8 (n, 3, 32, 32) images and int64 labels for both splits, on ``device``.

    ``subset`` keeps N training images (tests and quick looks), chosen by a fixed permutation
    (independent of the seed) because a converted image tree is stored class by class.
    """
    keep = np.arange(len(data.train_labels))
    if subset is not None and subset < len(keep):
        keep = np.sort(np.random.default_rng(0).permutation(len(keep))[:subset])
    if len(keep) == 0 or len(data.test_labels) == 0:
        raise GraderError(f"the data at {data.source} has no training or no test images",
                          "point --data at a CIFAR-10 source with both splits")

    def images(a: np.ndarray) -> torch.Tensor:  # NHWC uint8 -> NCHW uint8, contiguous
        return torch.from_numpy(np.array(a)).permute(0, 3, 1, 2).contiguous().to(device)

    return {
        "train_x": images(data.train_images[keep]),
        "train_y": torch.from_numpy(np.array(data.train_labels[keep], dtype=np.int64)).to(device),
        "test_x": images(data.test_images),
        "test_y": torch.from_numpy(np.array(data.test_labels, dtype=np.int64)).to(device),
    }


def normalise(x_u8: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """uint8 (n, 3, h, w) -> float32: pixels / 255 * scale, then (x - mean) / std."""
    x = x_u8.float().div_(255)  # exactly ToTensor's arithmetic
    if recipe.input_scale != 1.0:
        x.mul_(recipe.input_scale)
    if recipe.input_mean != (0.0, 0.0, 0.0) or recipe.input_std != (1.0, 1.0, 1.0):
        mean, std = _channel_stats(tuple(recipe.input_mean), tuple(recipe.input_std), x.device)
        x = (x - mean) / std
    return x


@functools.lru_cache(maxsize=8)
def _channel_stats(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, 1, 1) mean and std tensors, made once per device: a fresh host-to-GPU copy every
    batch would make each training step wait for the GPU."""
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1),
            torch.tensor(std, device=device).view(1, 3, 1, 1))


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each image (n, c, h, w) by (dy, dx) pixels in -pad..pad, filling by reflection."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (n, c, h+2p, w+2p)
    rows = (pad + dy).view(n, 1, 1, 1) + torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = (pad + dx).view(n, 1, 1, 1) + torch.arange(w, device=x.device).view(1, 1, 1, w)
    out = padded.gather(2, rows.expand(n, c, h, w + 2 * pad))  # (n, c, h, w+2p)
    return out.gather(3, cols.expand(n, c, h, w))  # (n, c, h, w)


def epoch_plan(n: int, epoch: int, seed: int, recipe: Recipe) -> dict[str, torch.Tensor]:
    """The whole epoch's random choices, from a generator seeded by (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    plan = {"order": torch.randperm(n, generator=gen)}
    if recipe.translate:
        plan["dy"] = torch.randint(-recipe.translate, recipe.translate + 1, (n,), generator=gen)
        plan["dx"] = torch.randint(-recipe.translate, recipe.translate + 1, (n,), generator=gen)
    if recipe.flip:
        # Alternating flip: a fixed random half in even epochs, the other half in odd ones.
        base = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5
        plan["flip"] = base ^ bool(epoch % 2)
    return plan


def augment(x: torch.Tensor, idx: torch.Tensor, plan: dict, recipe: Recipe) -> torch.Tensor:
    """Apply the plan's flips and shifts for the images ``idx`` to their batch ``x``."""
    if recipe.flip:
        flip = plan["flip"][idx].to(x.device).view(-1, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
    if recipe.translate:
        x = translate(x, plan["dy"][idx].to(x.device), plan["dx"][idx].to(x.device), recipe.translate)
    return x


def set_whitening(net: nn.Module, x: torch.Tensor, eps: float) -> None:
    """Set the first conv (k x k, 2m outputs) to the ZCA-like basis of the data's k x k patches.

    Its weights become +/- the patch-covariance eigenvectors divided by sqrt(eigenvalue + eps),
    and are frozen (airbench's whitening init): the network starts on decorrelated inputs.
    Its bias stays trainable.
    """
    conv = net[0]
    if not isinstance(conv, nn.Conv2d):
        raise GraderError(f"the architecture has no whitening conv as layer 0 (found {type(conv).__name__})",
                          "set whiten_samples = 0 for this recipe")
    c, (k, _) = conv.in_channels, conv.kernel_size
    patches = F.unfold(x.float(), k).transpose(1, 2).reshape(-1, c * k * k)  # (n*l, c*k*k)
    patches = patches - patches.mean(0)
    cov = patches.T @ patches / len(patches)  # on x's device; the small eigenproblem on the CPU
    eigvals, eigvecs = torch.linalg.eigh(cov.double().cpu())  # ascending
    basis = (eigvecs.T / torch.sqrt(eigvals + eps)[:, None]).flip(0).float()  # (c*k*k, c*k*k)
    m = conv.out_channels // 2
    weight = torch.cat([basis[:m], -basis[:m]]).view(2 * m, c, k, k)
    with torch.no_grad():
        conv.weight.copy_(weight.to(conv.weight.device))
        if conv.bias is not None:
            conv.bias.zero_()
    conv.weight.requires_grad_(False)


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


def new_model(recipe: Recipe, train_x: torch.Tensor, seed: int, device: torch.device) -> nn.Module:
    """The recipe's network, initialised from ``seed`` (and whitened from the data if asked).

    The whitening sample is a fixed random draw of training images (the same for every seed):
    an image tree is stored class by class, so its first images would all be airplanes.
    """
    torch.manual_seed(seed)
    net = build(recipe.arch, **recipe.arch_args)
    if recipe.whiten_samples:
        n = len(train_x)
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:recipe.whiten_samples]
        set_whitening(net, normalise(train_x[pick.to(train_x.device)], recipe), recipe.whiten_eps)
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if recipe.channels_last else net


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
                 "rng": None, "history": {k: [] for k in HISTORY_KEYS}}
    else:
        if model is None:
            raise ValueError("resume needs the model to continue")
        net = model.to(dev)
        net = net.to(memory_format=torch.channels_last) if recipe.channels_last else net
        state = {k: v for k, v in resume.items() if k != "optimizer"}
        state["history"] = {k: list(state["history"].get(k, [])) for k in HISTORY_KEYS}
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
            for key in HISTORY_KEYS:
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
