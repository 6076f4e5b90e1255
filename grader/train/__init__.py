"""Training: recipes, the loop, the run folder `grader grade` takes as it is.

Recipes live in ``recipes.py``, the loop in ``loop.py`` (its data and augmentation in ``data.py``,
the network's construction in ``init.py``, what a stopped run resumes from in ``state.py``), the run
folder in ``checkpoint.py``. The `grader train` command around them is ``grader.commands.train``.
"""

from __future__ import annotations

from grader.train.loop import TrainResult, train
from grader.train.recipes import RECIPES, Recipe, get_recipe

__all__ = ["RECIPES", "Recipe", "TrainResult", "get_recipe", "train"]
