"""Optimizers and learning-rate schedules of the recipes.

    make_optimizer(net, recipe, steps_per_epoch) -> optimizer (torch's interface)
    set_lrs(optimizer, step, total, recipe)       every group's lr for this step

``recipe.optimizer == "sgd"``: one SGD (momentum, Nesterov) with weight decay on the weights of
convolutions and linear layers only. ``"muon"``: Muon for every trainable filter bank
(``grader.train.muon``) and SGD for the rest (biases, BatchNorm shifts, the classifier head), as
airbench's fastest runs do; there the weight decay is decoupled from the lr (below).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grader.errors import GraderError
from grader.train.muon import Muon
from grader.train.recipes import Recipe


class Optimizers:
    """Several torch optimizers stepped as one; the loop sees one optimizer."""

    def __init__(self, *parts: torch.optim.Optimizer):
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:
        return [group for part in self.parts for group in part.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def state_dict(self) -> dict:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state: dict) -> None:
        if len(state.get("parts", ())) != len(self.parts):
            raise GraderError("the resume state's optimizer does not match the recipe's",
                              "resume with the recipe the run was started with")
        for part, saved in zip(self.parts, state["parts"]):
            part.load_state_dict(saved)


def make_optimizer(net: nn.Module, recipe: Recipe, steps_per_epoch: int):
    """The recipe's optimizer for ``net``'s trainable parameters; every group records its
    ``initial_lr`` (the peak that ``set_lrs`` scales).

    Raises:
        GraderError: for an unknown ``recipe.optimizer``.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    nesterov = recipe.nesterov and recipe.momentum > 0
    if recipe.optimizer == "sgd":
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": recipe.weight_decay, "initial_lr": recipe.lr},
                  {"params": no_decay, "weight_decay": 0.0, "initial_lr": recipe.lr}]
        return torch.optim.SGD([g for g in groups if g["params"]], lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=nesterov)
    if recipe.optimizer != "muon":
        raise GraderError(f"unknown optimizer {recipe.optimizer!r} in the recipe", "use sgd or muon")
    filters = [p for p in params if p.ndim == 4]
    heads = [p for p in params if p.ndim in (2, 3)]
    biases = [p for p in params if p.ndim <= 1]
    whiten_bias = _whitening_bias(net, recipe)
    if whiten_bias is not None:
        biases = [p for p in biases if p is not whiten_bias]

    def group(ps: list, lr: float, **extra) -> dict:
        # Decoupled from each group's peak lr: torch adds (wd / lr) * p to the gradient and steps
        # by lr, so every group's decay term is recipe.weight_decay * p per step at its peak lr
        # (scaled by the schedule, and accumulated by the momentum like the gradient).
        decay = recipe.weight_decay / lr if lr else 0.0  # a group that never moves never decays
        return {"params": ps, "lr": lr, "initial_lr": lr, "weight_decay": decay, **extra}

    head_lr = recipe.head_lr or recipe.lr
    groups = [group(biases, recipe.lr), group(heads, head_lr)]
    if whiten_bias is not None:
        until = max(1, math.ceil(recipe.whiten_bias_epochs * steps_per_epoch))
        groups.append(group([whiten_bias], recipe.lr, until_step=until))
    sgd = torch.optim.SGD([g for g in groups if g["params"]], lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=nesterov)
    muon = Muon(filters, lr=recipe.muon_lr, momentum=recipe.muon_momentum, nesterov=recipe.nesterov)
    for g in muon.param_groups:
        g["initial_lr"] = recipe.muon_lr
    return Optimizers(sgd, muon)


def _whitening_bias(net: nn.Module, recipe: Recipe) -> torch.Tensor | None:
    """The whitening layer's bias when the recipe trains it for a limited time, else None."""
    if not (recipe.whiten_samples and recipe.whiten_bias_epochs):
        return None
    first = net[0] if isinstance(net, nn.Sequential) and len(net) else None
    return first.bias if isinstance(first, nn.Conv2d) and first.bias is not None else None


def lr_factor(step: int, total: int, recipe: Recipe) -> float:
    """The schedule as a fraction of the peak lr: linear warmup over ``warmup_fraction`` of the
    steps, then linear to ``final_lr_fraction`` at the last step."""
    warmup = recipe.warmup_fraction * total
    if step < warmup:
        return (step + 1) / warmup
    remaining = max(total - warmup, 1.0)
    frac = min((step - warmup) / remaining, 1.0)
    return 1.0 + (recipe.final_lr_fraction - 1.0) * frac


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    """The SGD lr of ``recipe`` at ``step`` of ``total``."""
    return recipe.lr * lr_factor(step, total, recipe)


def set_lrs(optimizer, step: int, total: int, recipe: Recipe) -> None:
    """Set every group's lr for ``step``: its peak times the schedule; a group with
    ``until_step`` (the whitening bias) instead decays linearly to 0 at that step and stays there."""
    factor = lr_factor(step, total, recipe)
    for g in optimizer.param_groups:
        peak = g.get("initial_lr", recipe.lr)  # resume states written before groups kept it
        until = g.get("until_step")
        g["lr"] = peak * max(0.0, 1.0 - step / until) if until else peak * factor
