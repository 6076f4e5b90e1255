"""Small, quick versions of the recipes and data: the loop's code paths, a fraction of the work."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from grader.train.loop import train
from grader.train.recipes import FastGpuRecipe, FastRecipe, HomeworkRecipe
from tests.conftest import make_image_tree

# bf16=False: a CPU without avx512_bf16 emulates bfloat16, 5x slower than float32 here;
# test_short_run_lowers_the_loss trains with each recipe's own bf16.
TINY_FAST = replace(FastRecipe(), arch_args={"widths": [8, 16, 16]}, whiten_samples=40, batch_size=10,
                    epochs=3, eval_batch_size=50, bf16=False)
TINY_HOMEWORK = replace(HomeworkRecipe(), batch_size=10, epochs=2, lr=0.05, eval_batch_size=50)
TINY_MUON = replace(FastGpuRecipe(), arch_args={**FastGpuRecipe().arch_args, "widths": [8, 16, 16]},
                    whiten_samples=40, batch_size=10, epochs=3, whiten_bias_epochs=1, eval_batch_size=50,
                    bf16=False)
RECIPES_UNDER_TEST = pytest.mark.parametrize("recipe", [TINY_HOMEWORK, TINY_FAST, TINY_MUON],
                                             ids=["homework", "fast", "muon"])

# A run folder as `grader train` wrote it when its loop kept the resume state as a plain dict:
# TINY_MUON for 2 epochs with bf16 off, seed 1, on make_tiny_tree's data, stopped by Ctrl-C
# after step 2 of epoch 2.
STOPPED_RUN = Path(__file__).parent / "stopped_run"


def make_tiny_tree(root: Path) -> Path:
    """An image tree of 40 training and 10 test images (4 batches of TINY_* per epoch)."""
    return make_image_tree(root, {"train": 4, "test": 1})


def train_on_cpu(recipe, data, **kw):
    """``train`` on the CPU, seed 0 unless given."""
    return train(recipe, data, seed=kw.pop("seed", 0), device="cpu", **kw)
