"""Bench: what an archive adds to inspecting a hand-in, against the same folder unpacked, measured
in the same run.

    .venv/bin/python bench/bench_intake.py [--repeat 15]

The hand-in is what a student zips for the homework: ``HW2/`` holding the homework network's
state_dict (about 5 MB), ``model.py``, ``history.json`` and the notebook with its outputs (a
plot, about 0.5 MB of PNG). It is inspected (``inspect_submission``, then ``close`` to remove the
scratch folder) as the folder, as a Finder-style zip (deflated, ``__MACOSX/``) and as a tar.gz;
runs alternate so that the machine's load falls on all three alike. Prints best and median wall
and best CPU seconds, the time each archive adds over the folder, and the added wall time (which
counts writing and removing the unpacked files) against the 0.3 s target. Reading the notebook's definitions (``model_code.notebook_source``) is timed on its own,
as it is done once per hand-in that needs the notebook's classes.

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures: the archive writers

TARGET_S = 0.3
MODEL_PY = "import torch.nn as nn\n\n\ndef build_model():\n    return nn.Sequential()  # the homework network\n"
CELLS = [
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n%matplotlib inline",
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.conv1 = nn.Conv2d(3, 64, 3, padding=1)\n        self.fc = nn.Linear(64 * 16 * 16, 10)\n\n"
    "    def forward(self, x):\n        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.conv1(x)), 2), 1))",
    "net = Net()\nfor epoch in range(20):\n    train_one_epoch(net)\ntorch.save(net.state_dict(), 'weights.pt')",
]


def write_hand_in(root: Path) -> Path:
    """The homework hand-in as a folder ``root/HW2``; returns it."""
    import numpy as np
    import torch

    from grader.models import build

    folder = root / "HW2"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(build("homework_net").state_dict(), folder / "weights.pt")
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "history.json").write_text(json.dumps({"train_loss": [1.5, 0.9, 0.6], "test_acc": [0.5, 0.6, 0.66]}))
    plot = base64.b64encode(np.random.default_rng(0).integers(0, 256, 500_000, dtype=np.uint8).tobytes()).decode()
    cells = [{"cell_type": "code", "source": source, "metadata": {}, "execution_count": i, "outputs": []}
             for i, source in enumerate(CELLS)]
    cells[-1]["outputs"] = [{"output_type": "display_data", "data": {"image/png": plot}, "metadata": {}}]
    (folder / "HW2.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return folder


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of ``fn``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - start_cpu


def inspect_once(path: Path) -> None:
    from grader.submission import inspect_submission

    with inspect_submission(path):  # leaving the block removes an archive's scratch folder
        pass


def summary(runs: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU)."""
    return min(w for w, _ in runs), statistics.median(w for w, _ in runs), min(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    from tests.fixtures.make_archives import tar_folder, zip_like_finder

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        folder = write_hand_in(Path(tmp) / "work")
        hand_ins = {"folder": folder, "zip": zip_like_finder(folder, Path(tmp) / "alice.zip"),
                    "tar.gz": tar_folder(folder, Path(tmp) / "bob.tar.gz")}
        for path in hand_ins.values():
            inspect_once(path)  # warm-up: imports, the page cache
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in hand_ins}
        for _ in range(args.repeat):
            for name, path in hand_ins.items():
                runs[name].append(timed(lambda: inspect_once(path)))
        notebook = notebook_runs(folder / "HW2.ipynb", args.repeat)
        sizes = {name: sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir()
                 else path.stat().st_size for name, path in hand_ins.items()}

    print(f"{args.repeat} runs each, alternating; load average {os.getloadavg()[0]:.1f}")
    rows = {name: summary(r) for name, r in runs.items()}
    base_best, _, base_cpu = rows["folder"]
    for name, (best, median, cpu) in rows.items():
        added = "" if name == "folder" else (f"  adds {best - base_best:+.3f} s wall, {cpu - base_cpu:+.3f} s CPU "
                                             f"({best / base_best:.1f}x the folder)")
        print(f"  {name:<8} {sizes[name] / 2**20:5.1f} MiB  wall best {best:.3f} s  median {median:.3f} s  "
              f"CPU best {cpu:.3f} s{added}")
    worst = max(rows[n][0] - base_best for n in rows if n != "folder")  # wall: it counts the disk too
    print(f"archive's added wall time / target {TARGET_S} s: {worst / TARGET_S:.2f} "
          f"({'met' if worst <= TARGET_S else 'MISSED'})")
    if notebook is None:
        print("notebook: not measured (grader.submission.model_code has no notebook_source in this checkout)")
    else:
        best, median, cpu = summary(notebook)
        print(f"notebook_source (HW2.ipynb): wall best {best:.3f} s  median {median:.3f} s  CPU best {cpu:.3f} s; "
              f"wall / target {TARGET_S} s: {best / TARGET_S:.2f}")


def notebook_runs(path: Path, repeat: int) -> list[tuple[float, float]] | None:
    """Timings of reading the notebook's definitions, or None where this checkout cannot."""
    try:
        from grader.submission.model_code import notebook_source
    except ImportError:
        return None
    notebook_source(path)
    return [timed(lambda: notebook_source(path)) for _ in range(repeat)]


if __name__ == "__main__":
    main()
