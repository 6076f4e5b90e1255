"""A submission's training history: per-epoch lists from JSON or CSV.

    read_history(path) -> {"train_loss": [...], ...}
    normalise_history(rows, where=...) -> the same, from already parsed rows
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from grader.errors import GraderError

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_acc")


def read_history(path: Path) -> dict:
    """Per-epoch lists from JSON (dict of lists, or list of per-epoch dicts) or CSV with a header.

    Raises:
        GraderError: for a missing or malformed file, or non-numeric values.
    """
    if not path.is_file():
        raise GraderError(f"history file {path.name} is missing", "fix history = ... in submission.toml")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
        else:
            rows = json.loads(text)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise GraderError(f"{path.name} cannot be read: {exc}", "write JSON or CSV, see docs/grading.md") from None
    return normalise_history(rows, where=path.name)


def normalise_history(rows: object, *, where: str) -> dict:
    """``{"train_loss": [...], ...}`` from a dict of lists or a list of dicts; keeps only ``HISTORY_KEYS``."""
    if isinstance(rows, list):
        if not all(isinstance(r, dict) for r in rows):
            raise GraderError(f"{where}: a list must hold one object per epoch", "see docs/grading.md")
        keys = {k for r in rows for k in r}
        rows = {k: [r.get(k) for r in rows] for k in keys}
    if not isinstance(rows, dict):
        raise GraderError(f"{where}: expected per-epoch lists", 'e.g. {"train_loss": [1.2, 0.8], ...}')
    history: dict[str, list[float]] = {}
    for key in HISTORY_KEYS:
        values = rows.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            values = [values]
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            raise GraderError(f"{where}: {key} holds a value that is not a number",
                              "write numbers only, one per epoch") from None
        if not all(math.isfinite(v) for v in numbers):
            raise GraderError(f"{where}: {key} holds NaN or infinity", "log finite values only")
        history[key] = [int(v) for v in numbers] if key == "epoch" else numbers
    if not history:
        raise GraderError(f"{where} has none of {', '.join(HISTORY_KEYS)}",
                          "log train_loss, train_acc and test_acc once per epoch")
    return history
