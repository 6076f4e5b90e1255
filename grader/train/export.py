"""Turn a run folder into the forms students hand in (used for the examples in submissions/).

    export_whole_module(run, path)                 torch.save(net): the homework's own way
    export_state_dict_folder(run, folder, ...)     state_dict + model.py + history + submission.toml
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import torch

from grader import atomic
from grader.train.checkpoint import HISTORY_NAME, read_run, rebuild, submission_toml


def export_whole_module(run: str | Path, path: str | Path) -> Path:
    """Save the run's whole network (an nn.Sequential) with ``torch.save(net)``, as the notebook did."""
    net = rebuild(read_run(run)).eval()
    buffer = io.BytesIO()
    torch.save(net, buffer)
    return atomic.write_bytes(path, buffer.getvalue())


def export_state_dict_folder(run: str | Path, folder: str | Path, *, model_py: str | Path, student: str,
                             name: str = "", weights: str = "weights.pt") -> Path:
    """Write ``folder`` with the run's state_dict, a copy of ``model_py`` (defining build_model()),
    history.json and a submission.toml whose entry is ``model.py:build_model``."""
    ckpt = read_run(run)
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(ckpt["state_dict"], buffer)
    atomic.write_bytes(folder / weights, buffer.getvalue())
    atomic.write_text(folder / "model.py", Path(model_py).read_text())
    atomic.write_json(folder / HISTORY_NAME, ckpt["history"])
    atomic.write_text(folder / "submission.toml", submission_toml(
        student, ckpt["input"], weights=weights, name=name, entry="model.py:build_model"))
    shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    return folder
