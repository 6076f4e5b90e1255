"""grader.train.optim: the lr schedule, and which optimizer each parameter goes to."""

from __future__ import annotations

import pytest
import torch

from grader.train.init import new_model
from grader.train.muon import Muon
from grader.train.optim import lr_at, make_optimizer, set_lrs
from grader.train.recipes import FastRecipe
from tests.train.tiny import TINY_MUON


def test_fast_schedule_warms_up_then_decays_to_zero():
    r = FastRecipe()
    assert lr_at(0, 100, r) < lr_at(19, 100, r) == pytest.approx(r.lr)
    assert lr_at(99, 100, r) < 0.02 * r.lr


def test_muon_recipe_gives_filters_to_muon_and_the_rest_to_sgd():
    recipe = TINY_MUON
    net = new_model(recipe, torch.zeros(60, 3, 32, 32, dtype=torch.uint8), seed=0, device=torch.device("cpu"))
    optimizer = make_optimizer(net, recipe, steps_per_epoch=20)
    sgd, muon = optimizer.parts
    assert isinstance(muon, Muon)
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    in_sgd = {id(p) for g in sgd.param_groups for p in g["params"]}
    assert in_muon | in_sgd == trainable and not in_muon & in_sgd
    assert in_muon == {id(p) for p in net.parameters() if p.requires_grad and p.ndim == 4}
    assert not net[0].weight.requires_grad  # the whitening filters are set from the data
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not any(m.weight.requires_grad for m in bn)  # bn_scale False: shifts only
    head = next(g for g in sgd.param_groups if any(p is net[-2].weight for p in g["params"]))
    assert head["lr"] == recipe.head_lr and head["weight_decay"] == pytest.approx(recipe.weight_decay / recipe.head_lr)
    whiten = next(g for g in sgd.param_groups if "until_step" in g)
    assert whiten["params"] == [net[0].bias] and whiten["until_step"] == 20  # 1 epoch of 20 steps
    total = 60
    set_lrs(optimizer, 10, total, recipe)
    assert whiten["lr"] == pytest.approx(recipe.lr / 2) and muon.param_groups[0]["lr"] == pytest.approx(
        recipe.muon_lr * (1 - 10 / total))
    set_lrs(optimizer, 30, total, recipe)
    assert whiten["lr"] == 0.0 and head["lr"] == pytest.approx(recipe.head_lr / 2)
