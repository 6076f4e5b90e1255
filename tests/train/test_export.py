"""grader.train.export: a run folder as the homework's two submission forms."""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import replace
from pathlib import Path

import torch

from grader.train.checkpoint import make_checkpoint, write_run
from grader.train.export import export_state_dict_folder, export_whole_module
from grader.train.recipes import FastRecipe
from tests.train.tiny import TINY_FAST, train_on_cpu


def test_export_forms_rebuild_the_same_network(data, tmp_path):
    recipe = replace(TINY_FAST, arch_args=FastRecipe().arch_args, epochs=1)  # the submission's widths
    run_dir = write_run(tmp_path / "run", make_checkpoint(train_on_cpu(recipe, data, subset=10), recipe, data, seed=0))
    model_py = Path(__file__).resolve().parents[2] / "submissions" / "s2400002" / "model.py"
    folder = export_state_dict_folder(run_dir, tmp_path / "sub", model_py=model_py, student="s1", name="A B")
    spec = importlib.util.spec_from_file_location("student_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    student_net = module.build_model()
    student_net.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))  # strict: same keys
    toml = tomllib.loads((folder / "submission.toml").read_text())
    assert toml["entry"] == "model.py:build_model" and toml["weights"] == "weights.pt" and toml["name"] == "A B"
    whole = torch.load(export_whole_module(run_dir, tmp_path / "s1.pth"), weights_only=False)
    x = torch.rand(3, 3, 32, 32)
    student_net.eval()
    assert torch.allclose(student_net(x), whole(x), atol=1e-5)
