"""grader.train.data: the pixels the network trains on, and their augmentation."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import torch

from grader.train.checkpoint import submission_toml
from grader.train.data import epoch_plan, normalise, translate
from grader.train.recipes import RECIPES, FastRecipe


def test_augmentation_plan_is_seeded_and_flips_alternate():
    r = FastRecipe()
    a, b = epoch_plan(50, 0, 7, r), epoch_plan(50, 0, 7, r)
    assert torch.equal(a["order"], b["order"]) and torch.equal(a["dx"], b["dx"])
    assert torch.equal(epoch_plan(50, 1, 7, r)["flip"], ~a["flip"])
    assert a["dx"].abs().max() <= r.translate


def test_translate_shifts_pixels():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    out = translate(x, torch.tensor([0, 1]), torch.tensor([0, -1]), pad=1)
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1, 0, 1:4, 1:], x[1, 0, 2:5, :4])  # row +1, column -1


@pytest.mark.parametrize("name", ["homework", "fast", "fast-long", "fast-gpu"])
def test_training_and_grading_see_the_same_pixels_bit_for_bit(name):
    from grader.runner.network import to_input

    recipe = RECIPES[name]()
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    trained_on = normalise(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), recipe)
    written = tomllib.loads(submission_toml("s", recipe.input_spec()))
    graded_on = to_input(images, written["input"])  # what the run folder's submission.toml gives the child
    assert torch.equal(trained_on, graded_on)
