"""results.json: assembled from the pieces of one grade, serialised exactly per docs/results-schema.md.

    new_results(...) -> dict        the skeleton every result starts from (all keys, metrics null)
    with_submission / with_evaluation / with_error / with_verdict -> dict   (pure: return new dicts)
    write_results(results, out_dir) -> Path   (atomic)
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from grader import __version__
from grader.atomic import write_json
from grader.data import Cifar10
from grader.evaluate import EvalResult
from grader.rubric import Verdict
from grader.submission import Submission

SCHEMA_VERSION = 1
RESULTS_NAME = "results.json"
# Keys that hold measurements: null (or empty) in an error result.
METRIC_KEYS = ("accuracy", "accuracy_ci", "loss", "top2_accuracy", "ece", "per_class_accuracy",
               "per_class_precision", "per_class_count", "confusion_matrix", "memorisation")
MEMORISATION_FLAG = "memorisation-suspected"
UNOFFICIAL_DATA_FLAG = "unofficial-data"
# Flags about the grading run rather than the student's work: every submission graded on the
# same data carries them, so review lists and per-student notes leave them out.
RUN_FLAGS = (UNOFFICIAL_DATA_FLAG,)
LIST_KEYS = ("confused_pairs", "samples", "confident_wrong")
# Every top-level key of a result, in new_results's order: where a rubric's metric path starts.
TOP_LEVEL_KEYS = ("schema_version", "status", "error", "grader_version", "created", "student", "submission",
                  "dataset", "device", "sandbox", *METRIC_KEYS, *LIST_KEYS, "model", "history", "score",
                  "max_score", "checks", "flags", "timings")


def new_results(path: str | Path, *, data: Cifar10, sandbox: bool, created: str | None = None) -> dict:
    """A results dict with every schema key, status ``graded`` and no measurements yet."""
    path = Path(path)
    name = path.stem if path.is_file() else path.name
    results = {
        "schema_version": SCHEMA_VERSION,
        "status": "graded",
        "error": None,
        "grader_version": __version__,
        "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "student": {"id": name, "name": name},
        "submission": {"path": str(path), "sha256": None, "format": None, "files": [], "manifest": {},
                       "input": None, "notes": []},
        "dataset": data.identity(),
        "device": "cpu",
        "sandbox": {"enabled": bool(sandbox), "warning": None},
    }
    results.update({key: None for key in METRIC_KEYS})
    results.update({key: [] for key in LIST_KEYS})
    results.update({
        "model": empty_model(),
        "history": None,
        "score": 0.0,
        "max_score": 0.0,
        "checks": [],
        "flags": [],
        "timings": {"load": None, "inference": None, "total": None},
    })
    return results


def empty_model() -> dict:
    """The ``model`` object before (or without) a successful run."""
    return {"parameters": None, "macs_per_image": None, "latency_ms_per_image": None, "layers": [],
            "precision": None}


def with_submission(results: dict, submission: Submission) -> dict:
    """Record what was handed in (before it runs)."""
    out = dict(results, student=dict(submission.student), history=submission.history)
    out["submission"] = dict(results["submission"], **submission.describe())
    return out


def with_evaluation(results: dict, evaluation: EvalResult, info: dict, *, sandbox: dict) -> dict:
    """Record the metrics and the child's model description."""
    out = dict(results)
    metrics = evaluation.to_dict()
    metrics.pop("count")
    out.update(metrics)
    out["submission"] = dict(results["submission"], format=info.get("form", results["submission"]["format"]),
                             input=info.get("input"), notes=list(info.get("notes", [])))
    out["model"] = {
        "parameters": info.get("parameters"),
        "macs_per_image": info.get("macs_per_image"),
        "latency_ms_per_image": info.get("latency_ms_per_image"),
        "layers": list(info.get("layers", [])),
        "precision": info.get("precision"),
    }
    out["device"] = str(info.get("device", "cpu"))
    out["sandbox"] = dict(sandbox)
    timings = info.get("timings", {})
    out["timings"] = dict(results["timings"], load=timings.get("load"), inference=timings.get("inference"))
    return out


def with_memorisation(results: dict, memorisation: dict) -> dict:
    """Record the memorisation check (``with_verdict`` turns a suspicion into a TA flag)."""
    return dict(results, memorisation=dict(memorisation))


def with_error(results: dict, message: str, *, sandbox: dict | None = None) -> dict:
    """Mark a result ``error`` with ``message``; every measurement goes back to null/empty."""
    out = dict(results, status="error", error=message)
    out.update({key: None for key in METRIC_KEYS})
    out.update({key: [] for key in LIST_KEYS})
    out["model"] = empty_model()
    if sandbox is not None:
        out["sandbox"] = dict(sandbox)
    return out


def with_verdict(results: dict, verdict: Verdict, *, total_seconds: float) -> dict:
    """Record the rubric's verdict, the TA flags and the total time."""
    out = dict(results, score=verdict.score, max_score=verdict.max_score,
               checks=[c.to_dict() for c in verdict.checks])
    flags = list(results.get("flags", []))
    if verdict.borderline:
        flags.append("borderline")
    if not out["sandbox"].get("enabled"):
        flags.append("no-sandbox")
    if (out.get("memorisation") or {}).get("flagged"):
        flags.append(MEMORISATION_FLAG)
    out["flags"] = flags_of(dict(out, flags=flags))  # adds unofficial-data from the dataset
    out["timings"] = dict(results["timings"], total=total_seconds)
    return out


def write_results(results: dict, out_dir: str | Path) -> Path:
    """Write ``results`` to ``out_dir/results.json`` atomically; returns the path.

    Raises:
        ValueError: when ``results`` holds NaN or infinity (the schema forbids them).
    """
    return write_json(Path(out_dir) / RESULTS_NAME, _finite(results))


def _finite(obj):
    """``obj`` as JSON-ready lists and dicts; ValueError on NaN or infinity instead of invalid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError("results hold a NaN or infinite number")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def flags_of(results: dict) -> list[str]:
    """The results' flags, sorted. results.json files written before ``with_verdict`` derived
    ``unofficial-data`` (grader 0.x, session 3) lack it, so it is derived from the dataset here too."""
    flags = set(results.get("flags") or [])
    if (results.get("dataset") or {}).get("official") is False:
        flags.add(UNOFFICIAL_DATA_FLAG)
    return sorted(flags)


def check_condition(check: dict, shown=str) -> str:
    """A check's condition in plain text: as the rubric wrote it ("0.7 < x <= 1"), or, where
    ``op`` is an operator alone, the operator and the threshold ("< 0.5"), the threshold as
    ``shown`` writes it."""
    op = str(check.get("op") or "")
    if "x" in op:
        return op
    return f"{op} {shown(check.get('threshold', ''))}".strip()


def submission_flags(results: dict) -> list[str]:
    """The results' flags that concern the submission itself (not ``RUN_FLAGS``)."""
    return [f for f in results.get("flags") or [] if f not in RUN_FLAGS]
