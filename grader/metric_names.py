"""The names a rubric can check: the contract between a grade result and the rubric.

A metric is a dotted path into results.json (``accuracy``, ``per_class_accuracy.cat``,
``model.parameters``, ``history.train_loss``), optionally ending in an aggregate over a list or
table (``per_class_accuracy.min``, ``history.train_loss.max``). ``grader.results.metrics`` builds
the values under these names; ``grader.rubric`` refuses a name that no result can hold.
"""

from __future__ import annotations

from grader.data import CLASSES
from grader.submission.history import HISTORY_KEYS

# Every top-level key of results.json, in the order it is written.
RESULT_KEYS = ("schema_version", "status", "error", "error_detail", "grader_version", "created", "student",
               "submission", "dataset", "device", "sandbox", "accuracy", "accuracy_ci", "loss", "top2_accuracy", "ece",
               "reliability", "per_class_accuracy", "per_class_precision", "per_class_count", "confusion_matrix",
               "memorisation", "measured", "integrity", "robustness", "confused_pairs", "samples", "confident_wrong",
               "model",
               "provenance", "history", "score", "max_score", "checks", "flags", "timings")
MEASURED_KEYS = ("train_accuracy", "train_accuracy_ci", "train_loss", "train_loss_ci", "count")
MODEL_KEYS = ("parameters", "macs_per_image", "latency_ms_per_image", "layers", "blocks", "precision")
AGGREGATES = ("min", "max", "mean", "first", "last")
ROBUSTNESS_KEYS = ("mean_accuracy", "mean_accuracy_ci", "per_corruption", "per_corruption_ci", "per_severity",
                   "per_severity_ci", "per_corruption_severity", "n_per_cell")
# Tables whose second part is a fixed set of names (or an aggregate over them).
TABLES = {
    "per_class_accuracy": (*CLASSES, *AGGREGATES),
    "per_class_precision": (*CLASSES, *AGGREGATES),
    "per_class_count": (*CLASSES, *AGGREGATES),
    "model": MODEL_KEYS,
    "measured": MEASURED_KEYS,
    "history": (*HISTORY_KEYS, *AGGREGATES),
    "robustness": ROBUSTNESS_KEYS,
}


def metric_problem(path: str) -> tuple[str, str] | None:
    """Why no result can hold the metric ``path`` (a message and a hint), or None when one can."""
    parts = path.split(".")
    if parts[0] not in RESULT_KEYS:
        return (f'metric "{path}" is not in results.json',
                "use a dotted path into results.json such as accuracy, loss, per_class_accuracy.min, "
                "history.train_loss (docs/grading.md)")
    if len(parts) > 1 and parts[0] in TABLES and parts[1] not in TABLES[parts[0]]:
        return f'metric "{path}": {parts[0]} has no "{parts[1]}"', f"{parts[0]} holds {', '.join(TABLES[parts[0]])}"
    return None
