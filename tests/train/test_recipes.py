"""grader.train.recipes: every tunable in one frozen dataclass per recipe, rebuilt from checkpoints."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grader.errors import GraderError
from grader.train.optim import lr_at
from grader.train.recipes import RECIPES, RETIRED_FIELDS, HomeworkRecipe, get_recipe, recipe_from_dict


def test_homework_recipe_is_the_reference():
    r = HomeworkRecipe()
    assert (r.arch, r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay) == ("homework_net", 20, 100, 0.03, 0, 0)
    assert not (r.flip or r.translate or r.whiten_samples or r.label_smoothing or r.bf16)
    assert r.input_spec() == {"scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    assert all(lr_at(s, 10_000, r) == 0.03 for s in (0, 5_000, 9_999))  # constant


def test_cli_offers_every_recipe_and_fast_long_is_the_shorter_fast_gpu():
    from grader.cli import train as train_cmd

    (recipe_option,) = [p for p in train_cmd.params if p.name == "recipe"]
    assert list(recipe_option.type.choices) == list(RECIPES)
    long, gpu = get_recipe("fast-long"), get_recipe("fast-gpu")
    assert long.epochs == 7 and gpu.epochs == 8 and long.deterministic and not gpu.deterministic
    same = replace(long, name="fast-gpu", epochs=8, deterministic=False, eval_batch_size=gpu.eval_batch_size)
    assert same.to_dict() == gpu.to_dict()


def test_a_checkpoint_from_before_new_fields_keeps_its_own_recipe():
    """fast-long as an early checkpoint recorded it (SGD, 16 epochs): the fields added since stay off."""
    old = {"name": "fast-long", "arch": "fast_net", "arch_args": {"widths": [64, 128, 256]}, "epochs": 16,
           "batch_size": 256, "lr": 0.2, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
           "label_smoothing": 0.2, "warmup_fraction": 0.2, "final_lr_fraction": 0.0, "flip": True,
           "translate": 2, "tta_flip": True, "input_scale": 1.0, "input_mean": [0.4914, 0.4822, 0.4465],
           "input_std": [0.247, 0.2435, 0.2616], "whiten_samples": 5000, "whiten_eps": 5e-4,
           "channels_last": True, "bf16": True, "eval_batch_size": 1000}
    recipe = recipe_from_dict(old)
    assert (recipe.optimizer, recipe.loss_sum, recipe.whiten_bias_epochs) == ("sgd", False, 0.0)
    assert (recipe.epochs, recipe.lr, recipe.arch_args) == (16, 0.2, {"widths": [64, 128, 256]})
    kept = {k: v for k, v in old.items() if k not in RETIRED_FIELDS}  # tta_flip: it changed only the log
    assert "tta_flip" not in recipe.to_dict()
    assert recipe.to_dict() == {**kept, **{k: v for k, v in recipe.to_dict().items() if k not in old}}


def test_unknown_recipe_is_a_grader_error():
    with pytest.raises(GraderError, match="unknown recipe"):
        get_recipe("slow")
