"""The training data as the loop uses it: uint8 tensors, normalisation and augmentation.

    as_tensors(data, subset, device) -> {"train_x", "train_y", "test_x", "test_y"}
    normalise(x_u8, recipe) -> float32 batch
    epoch_plan(n, epoch, seed, recipe) -> the epoch's order, flips and shifts
    augment(x, idx, plan, recipe) -> the batch flipped and shifted as planned

Speed: batches are sliced from uint8 tensors made once from the data cache (n, 3, 32, 32), so
an epoch does no per-image Python work; the conversion pixels / 255 is the same arithmetic as
torchvision's ToTensor, so the homework recipe sees the same numbers as the notebook.

Determinism: the shuffle order, flips and shifts of epoch e come from a generator seeded by
(seed, e) and are drawn for the whole epoch up front.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from grader.data import Cifar10
from grader.errors import GraderError
from grader.train.recipes import Recipe


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
