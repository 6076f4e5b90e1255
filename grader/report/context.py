"""results.json dict -> the template context of one submission's report (pure).

    build_context(results, lang) -> dict

Numbers are formatted here, once, so templates only place strings; figures are drawn here too
(as data URIs) so the HTML needs nothing beside itself.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

from grader.errors import GraderError
from grader.report import figures
from grader.report.i18n import class_name, strings
from grader.results import SCHEMA_VERSION, check_condition, flags_of

BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# Metrics whose values are fractions of 1 and read best as percentages.
FRACTION_METRICS = ("accuracy", "acc", "recall", "precision", "gap", "ece", "top2")


def build_context(results: Mapping[str, Any], lang: str = "en") -> dict[str, Any]:
    """The template context for ``results`` (a results.json dict, docs/results-schema.md).

    Raises:
        GraderError: when ``results`` is not a schema-1 results dict, naming the key at fault.
    """
    t = strings(lang)
    _check_shape(results)
    is_error = results["status"] == "error"
    ctx: dict[str, Any] = {
        "t": t,
        "lang": lang,
        "is_error": is_error,
        "header": _header(results, t),
        "flags": _flags(results, t),
        "verdict": _verdict(results, t),
        "timings": results.get("timings") or {},
        "inference_paths": _inference_paths((results.get("model") or {}).get("precision"), t),
        "footer": t["footer"].format(version=results.get("grader_version", "?"),
                                     schema=results["schema_version"]),
    }
    if is_error:
        ctx["error"] = _error(results.get("error") or "")
        return ctx
    names = list((results.get("per_class_accuracy") or {}).keys())
    labels = [class_name(c, lang) for c in names]
    ctx.update(
        metrics=_metrics(results, t),
        training=_training(results.get("history"), t),
        per_class=_per_class(results, names, labels, t, lang),
        confusion=_confusion(results, labels, t, lang),
        samples=[_sample(s, lang) for s in results.get("samples") or []],
        confident_wrong=[_sample(s, lang) for s in results.get("confident_wrong") or []],
        model=_model(results.get("model")),
    )
    return ctx


# --- checks and formatting -----------------------------------------------------------------


def _check_shape(results: Mapping[str, Any]) -> None:
    if not isinstance(results, Mapping):
        raise GraderError(f"a results dict was expected, got {type(results).__name__}",
                          "pass the parsed contents of results.json")
    version = results.get("schema_version")
    if version != SCHEMA_VERSION:
        raise GraderError(f"results schema_version is {version!r}; this grader reads {SCHEMA_VERSION}",
                          "re-grade the submission with this grader version to get a matching results.json")
    if results.get("status") not in ("graded", "error"):
        raise GraderError(f"results status is {results.get('status')!r}, not 'graded' or 'error'",
                          "check that the file is a results.json written by grader")
    required = ["student", "submission", "checks", "score", "max_score"]
    if results["status"] == "graded":
        required += ["accuracy", "per_class_accuracy", "per_class_precision", "confusion_matrix"]
    missing = [k for k in required if results.get(k) is None]
    if missing:
        raise GraderError(f"results ({results['status']}) lack the keys: {', '.join(missing)}",
                          "see docs/results-schema.md for what each key holds")
    if results["status"] == "graded":
        n = len(results["per_class_accuracy"])
        matrix = results["confusion_matrix"]
        if len(matrix) != n or any(len(row) != n for row in matrix):
            raise GraderError(f"results confusion_matrix is not {n}x{n}, one row and column per class "
                              "of per_class_accuracy", "re-grade the submission to rewrite results.json")


def pct(value: float | None, digits: int = 1) -> str:
    """0.7195 -> '72.0%'; None -> '–'."""
    return "–" if value is None else f"{float(value) * 100:.{digits}f}%"


def number(value: float | int | None) -> str:
    """Integers with thousands separators, floats with 4 significant digits; None -> '–'."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.4g}"


def metric_value(metric: str, value: float | int | None) -> str:
    """Format a rubric metric's value: fractions as percentages, the rest as numbers."""
    if isinstance(value, float) and any(k in metric for k in FRACTION_METRICS) and -1 <= value <= 1:
        return pct(value)
    return number(value)


def _date(created: str | None) -> str:
    if not created:
        return "–"
    try:
        when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created  # shown as written: better than refusing to render
    if when.tzinfo:
        when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


# --- sections ------------------------------------------------------------------------------


def _header(r: Mapping[str, Any], t: dict) -> dict:
    student = r.get("student") or {}
    sub = r.get("submission") or {}
    data = r.get("dataset") or {}
    sandbox = r.get("sandbox") or {}
    name, sid = student.get("name") or "", student.get("id") or ""
    return {
        "student": name or sid or "?",
        "student_id": sid if sid and sid != name else "",
        "path": sub.get("path", "–"),
        "format": sub.get("format", "–"),
        "sha256": sub.get("sha256") or "–",
        "created": _date(r.get("created")),
        "grader_version": r.get("grader_version", "–"),
        "fingerprint": data.get("fingerprint", "–"),
        "official": bool(data.get("official")),
        "test_count": number(data.get("test_count")) if data.get("test_count") else "",
        "device": r.get("device") or "–",
        "sandbox": bool(sandbox.get("enabled")),
        "sandbox_warning": sandbox.get("warning"),
    }


def _flags(r: Mapping[str, Any], t: dict) -> list[dict]:
    return [{"name": f, "text": t.get(f"flag_{f}", "")} for f in flags_of(r)]


def _condition(metric: str, check: Mapping[str, Any]) -> str:
    """The rubric's condition as written ("0.7 < x ≤ 1"; the check's name says what x is)."""
    def shown(bound):
        return bound if isinstance(bound, list) else metric_value(metric, bound)
    text = check_condition(check, shown)
    if "x" not in str(check.get("op") or ""):  # an operator alone ("<"), with the bound in threshold
        return text
    return text.replace("<=", "≤").replace(">=", "≥")


def _verdict(r: Mapping[str, Any], t: dict) -> dict:
    checks = []
    for c in r["checks"]:
        metric = str(c.get("metric") or "")
        checks.append({
            "name": c.get("name") or metric,
            "value": metric_value(metric, c.get("value")) if c.get("value") is not None else t["unavailable"],
            "threshold": _condition(metric, c),
            "points": f"{number(c.get('score', 0.0))} / {number(c.get('max_score', 0.0))}",
            "passed": bool(c.get("passed")),
            "borderline": bool(c.get("borderline")),
            "detail": c.get("detail") or "",
        })
    failed = sum(not c["passed"] for c in checks)
    summary = t["all_passed"] if not failed else t["some_failed"].format(n=failed, total=len(checks))
    return {"score": number(float(r["score"])), "max_score": number(float(r["max_score"])),
            "passed": not failed, "summary": summary, "checks": checks}


def _metrics(r: Mapping[str, Any], t: dict) -> list[dict]:
    model = r.get("model") or {}
    ci = r.get("accuracy_ci")
    latency = model.get("latency_ms_per_image")
    return [
        {"label": t["accuracy"], "value": pct(r["accuracy"], 2),
         "sub": f"{t['ci']} {pct(ci[0])} – {pct(ci[1])}" if ci else ""},
        {"label": t["loss"], "value": number(r.get("loss")), "sub": ""},
        {"label": t["top2"], "value": pct(r.get("top2_accuracy")), "sub": ""},
        {"label": t["ece"], "value": pct(r.get("ece")), "sub": ""},
        {"label": t["parameters"], "value": number(model.get("parameters")), "sub": ""},
        {"label": t["macs"], "value": number(model.get("macs_per_image")), "sub": ""},
        {"label": t["latency"], "value": "–" if latency is None else f"{latency:.2f} ms", "sub": ""},
    ]


def _inference_paths(precision: Mapping[str, Any] | None, t: dict) -> str:
    """How many images each arithmetic computed (docs/grading.md, "Precision and speed"), when
    bf16 computed any; empty otherwise (float32 throughout needs no note)."""
    paths = (precision or {}).get("paths") or {}
    bf16 = paths.get("bfloat16", 0)
    if not bf16:
        return ""
    fp32 = sum(v for k, v in paths.items() if k != "bfloat16")
    return t["inference_paths"].format(bf16=number(bf16), fp32=number(fp32))


def _training(history: Mapping[str, Any] | None, t: dict) -> dict | None:
    if not history:
        return None
    train_acc, test_acc = history.get("train_acc"), history.get("test_acc")
    loss = history.get("train_loss")
    longest = max((len(v) for v in (train_acc, test_acc, loss) if v), default=0)
    if not longest:
        return None
    epochs = history.get("epoch") or list(range(1, longest + 1))
    accuracies = {}
    if train_acc:
        accuracies[t["train_acc"]] = train_acc
    if test_acc:
        accuracies[t["test_acc"]] = test_acc
    best = None
    summary = ""
    if test_acc:
        i = max(range(len(test_acc)), key=lambda k: test_acc[k])  # first epoch of the best value
        best = epochs[i]
        summary = t["training_best"].format(best=pct(test_acc[i]), epoch=best)
        if train_acc:
            gap = train_acc[-1] - test_acc[-1]
            summary = t["training_summary"].format(best=pct(test_acc[i]), epoch=best,
                                                   train=pct(train_acc[-1]), test=pct(test_acc[-1]),
                                                   gap=pct(gap))
    figure = figures.training_curves(
        epochs, loss=loss, accuracies=accuracies, best_epoch=best,
        labels={"epoch": t["epoch"], "loss": t["train_loss"], "accuracy": t["accuracy_axis"],
                "gap": t["gap"], "best": t["best_epoch"].format(epoch=best)})
    return {"figure": figure, "summary": summary}


def _per_class(r: Mapping[str, Any], names: list[str], labels: list[str], t: dict, lang: str) -> dict:
    recall, precision = r["per_class_accuracy"], r["per_class_precision"]
    support = [sum(row) for row in r["confusion_matrix"]]
    figure = figures.bar_chart(labels, {t["recall"]: [recall[c] for c in names],
                                        t["precision"]: [precision.get(c, 0.0) for c in names]})
    rows = [{"name": c, "label": lab, "recall": pct(recall[c]), "precision": pct(precision.get(c)),
             "support": number(support[i]) if i < len(support) else "–", "worst": False}
            for i, (c, lab) in enumerate(zip(names, labels))]
    if rows:
        worst = min(range(len(names)), key=lambda i: recall[names[i]])
        rows[worst]["worst"] = True
    return {"figure": figure, "rows": rows, "show_english": lang != "en"}


def _confusion(r: Mapping[str, Any], labels: list[str], t: dict, lang: str) -> dict:
    cells = figures.heatmap_cells(r["confusion_matrix"])
    rows = [{"label": lab, "cells": row, "diagonal": i} for i, (lab, row) in enumerate(zip(labels, cells))]
    pairs = [{"true": class_name(p["true"], lang), "predicted": class_name(p["predicted"], lang),
              "count": number(p["count"])} for p in r.get("confused_pairs") or []]
    return {"labels": labels, "rows": rows, "pairs": pairs}


def _sample(s: Mapping[str, Any], lang: str) -> dict:
    png = s.get("png") or ""
    valid = bool(BASE64.fullmatch(png))  # else no <img>: a broken one is a failed load in a browser
    return {"uri": "data:image/png;base64," + png if valid else "",
            "index": s.get("index"),
            "true": class_name(s.get("true", "?"), lang),
            "predicted": class_name(s.get("predicted", "?"), lang),
            "confidence": pct(s.get("confidence"), 0),
            "correct": bool(s.get("correct"))}


def _model(model: Mapping[str, Any] | None) -> dict:
    model = model or {}
    layers = [{"name": layer.get("name", ""), "type": layer.get("type", ""),
               "output_shape": " × ".join(str(d) for d in layer.get("output_shape") or []) or "–",
               "parameters": number(layer.get("parameters"))}
              for layer in model.get("layers") or []]
    return {"layers": layers, "total": number(model.get("parameters"))}


def _error(message: str) -> dict:
    """Split a GraderError text ('what\\n  hint: do this') into what went wrong and what to do."""
    what, sep, hint = message.partition("hint:")
    return {"message": what.strip(), "hint": hint.strip() if sep else ""}
