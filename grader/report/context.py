"""GradeResult -> the template context of one submission's report (pure).

    build_context(result, lang) -> dict

Numbers are formatted here, once, so templates only place strings; figures are drawn here too
(as data URIs) so the HTML needs nothing beside itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Mapping

from grader.evaluate import EvalResult
from grader.integrity.claims import TOLERANCES
from grader.messages import error_for, said
from grader.report import figures, findings
from grader.report.i18n import class_name, strings
from grader.report.robustness_figures import submission_section
from grader.report.layers import condense
from grader.results import SCHEMA_VERSION, GradeResult, ModelFacts, check_condition
from grader.rubric import ALIASES, MEASURED_NOTE, CheckResult, missing_reason

BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# Metrics whose values are fractions of 1 and read best as percentages.
FRACTION_METRICS = ("accuracy", "acc", "recall", "precision", "gap", "ece", "top2")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# The per-class chart sits beside its table: narrower than a full-width figure, same font size.
PER_CLASS_STYLE = dataclasses.replace(figures.STYLE, width_in=4.6)
# A logged accuracy this far above the measured one is more than rounding or sampling: when no flag
# was raised for it, the integrity box says which allowance covered it.
CLAIM_NOISE = 0.03


def build_context(result: GradeResult, lang: str = "en") -> dict[str, Any]:
    """The template context for ``result`` (graded or error)."""
    t = strings(lang)
    ctx: dict[str, Any] = {
        "t": t,
        "lang": lang,
        "is_error": not result.graded,
        "header": _header(result, t),
        "flags": [{"name": f, "text": t.get(f"flag_{f}", "")} for f in result.flags],
        "notes": [said(note, lang) for note in result.submission.notes],  # what reading the hand-in changed
        "verdict": _verdict(result, t, lang),
        "timings": dataclasses.asdict(result.timings),
        "inference_paths": _inference_paths(result.model.precision, t),
        "footer": t["footer"].format(version=result.grader_version, schema=SCHEMA_VERSION),
        "robustness": None,  # an optional section (templates/robustness.html.j2) fills it
    }
    if result.evaluation is None:
        ctx["error"] = _error(result, lang)
        return ctx
    evaluation = result.evaluation
    names = list(evaluation.per_class_accuracy)
    labels = [class_name(c, lang) for c in names]
    ctx.update(
        metrics=_metrics(result, t),
        calibration=_calibration(evaluation, t),
        training=_training(result.history, t),
        per_class=_per_class(evaluation, names, labels, t),
        confusion=_confusion(evaluation, labels, t, lang),
        samples=[_sample(s, lang) for s in evaluation.samples],
        confident_wrong=[_sample(s, lang) for s in evaluation.confident_wrong],
        model=_model(result.model, t),
        integrity=_integrity(result, t),
        robustness=submission_section(result, lang),
    )
    return ctx


# --- formatting ----------------------------------------------------------------------------


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


def metric_kind(metric: str) -> str:
    """How a rubric metric's values read: ``fraction`` (a percentage), ``loss``, ``ms``, ``count``
    or ``number``; one kind, one unit, in every column of the report."""
    name = metric.lower()
    if any(k in name for k in FRACTION_METRICS):
        return "fraction"
    if "loss" in name:
        return "loss"
    if "latency" in name or name.endswith("_ms"):
        return "ms"
    if any(k in name for k in ("parameters", "macs", "count")):
        return "count"
    return "number"


def metric_value(metric: str, value: float | int | None, *, bound: bool = False) -> str:
    """A rubric metric's value in its kind's unit: 71.95% (a bound: 70%), 0.733, 1.84 ms, 2,000,000."""
    kind = metric_kind(metric)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return number(value)
    if kind == "fraction" and -1 <= value <= 1:
        return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%" if bound else pct(value, 2)
    if kind == "loss":
        return f"{value:.4g}" if bound else f"{value:.3f}"
    if kind == "ms":
        return f"{value:.4g} ms" if bound else f"{value:.2f} ms"
    if kind == "count":
        return f"{int(round(value)):,}"
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


def _header(r: GradeResult, t: dict) -> dict:
    name, sid = r.student.name, r.student.id
    data = r.dataset
    form = r.submission.format or ""
    return {
        "student": name or sid or "?",
        "student_id": sid if sid and sid != name else "",
        "hand_in": hand_in_name(r.submission.path),
        "format": t.get(f"form_{form}", form),
        "sha256": r.submission.sha256 or "–",
        "created": _date(r.created),
        "grader_version": r.grader_version,
        "fingerprint": data.get("fingerprint", "–"),
        "official": bool(data.get("official")),
        "test_count": number(data.get("test_count")) if data.get("test_count") else "",
        "device": r.device or "–",
        "sandbox": r.sandbox.enabled,
        "sandbox_warning": r.sandbox.warning,
    }


def hand_in_name(path: str | None) -> str:
    """What a student handed in, by its name within the class folder (``s2400002``,
    ``s2400001.pth``), never the grading machine's path to it."""
    text = str(path or "").replace("\\", "/").rstrip("/")
    return text.rpartition("/")[2] or "–"


def _condition(check: CheckResult) -> str:
    """The rubric's condition in the unit of its metric's kind ("70% < x ≤ 100%", "x < 0.5")."""
    def shown(bound):
        if isinstance(bound, list):
            return " – ".join(metric_value(check.metric, b, bound=True) for b in bound)
        return metric_value(check.metric, bound, bound=True)
    if "x" not in check.op:  # an operator alone ("<"), with the bound in threshold
        return check_condition(check, shown).replace("<=", "≤").replace(">=", "≥")
    text = _NUMBER.sub(lambda m: shown(float(m.group(0))), check.op)
    return text.replace("<=", "≤").replace(">=", "≥")


def check_name(c: CheckResult | Any, lang: str) -> str:
    """A check's name in ``lang``: the rubric's ``name_zh`` in Chinese where it gives one (``c``:
    anything with ``name``, ``name_zh`` and ``metric``, such as a class report's item)."""
    return (c.name_zh if lang == "zh" and c.name_zh else c.name) or c.metric


def _check_notes(c: CheckResult, t: dict) -> list[str]:
    """What a check's row adds to its value, condition and result, in the report's language.

    Why a value is missing is said once, in the verdict's box (an error report's error box, or
    the list of what to fix), not again in the row."""
    if c.value is None:
        return []
    notes = [t["check_measured_instead"]] if MEASURED_NOTE in c.detail else []
    return notes + ([t["check_borderline"]] if c.borderline else [])


def _missing(c: CheckResult, r: GradeResult, t: dict, lang: str) -> str:
    name = ALIASES.get(c.metric, c.metric)
    if c.detail == missing_reason(c.metric, name):
        return t["check_no_history"] if name.startswith("history.") else t["check_not_available"]
    reason = findings.check_reason(c.detail, r, t, lang) or c.detail
    return t["check_missing_because"].format(reason=reason) if reason else t["check_not_available"]


def check_detail(c: CheckResult, r: GradeResult, lang: str) -> str:
    """A check's detail for a reader of ``lang``: in English the rubric's sentence as results.json
    holds it; in another language said again from the check's facts (its value against its
    condition, measured instead of claimed, borderline; or why it has no value, or why ``r`` was
    not graded), so that no English sentence reaches that reader."""
    if lang == "en":
        return c.detail
    t = strings(lang)
    if not r.graded:
        return t["check_not_graded"].format(error=r.student_error_text(lang) or t["check_not_available"])
    if c.value is None:
        return _missing(c, r, t, lang)
    verdict = t["check_holds" if c.passed else "check_fails"].format(value=metric_value(c.metric, c.value),
                                                                      condition=_condition(c))
    return t["check_note_sep"].join([verdict, *_check_notes(c, t)])


def check_row(c: CheckResult, t: dict, lang: str) -> dict:
    """A check as a row of the report's table: name, value and condition in their units, points,
    result and notes, in ``lang`` (``t``: its strings)."""
    return {
        "name": check_name(c, lang),
        "value": metric_value(c.metric, c.value) if c.value is not None else t["unavailable"],
        "threshold": _condition(c),
        "points": f"{number(c.score)} / {number(c.max_score)}",
        "passed": c.passed,
        "borderline": c.borderline,
        "notes": _check_notes(c, t),
    }


def _verdict(r: GradeResult, t: dict, lang: str) -> dict:
    checks = [check_row(c, t, lang) for c in r.verdict.checks]
    failed = sum(not c["passed"] for c in checks)
    summary = t["all_passed"] if not failed else t["some_failed"].format(n=failed, total=len(checks))
    if not r.graded:  # no check ran: "3 of 3 checks failed" would say otherwise; the error box says why
        summary = ""
    return {"score": number(float(r.verdict.score)), "max_score": number(float(r.verdict.max_score)),
            "passed": not failed and r.graded, "summary": summary, "checks": checks,
            "todo": _todo(r, checks, t, lang) if r.graded else []}


def _todo(r: GradeResult, checks: list[dict], t: dict, lang: str) -> list[str]:
    """What to fix: each failed check with its value and what it needs; checks without a value
    grouped by why (two history checks, one missing history)."""
    todo, missing = [], {}
    for c, shown in zip(r.verdict.checks, checks):
        if c.passed:
            continue
        if c.value is None:
            missing.setdefault(_missing(c, r, t, lang), []).append(shown["name"])
        else:
            todo.append(t["todo_check"].format(name=shown["name"], value=shown["value"], condition=shown["threshold"]))
    return todo + [f"{t['list_sep'].join(names)}{t['colon']}{why}" for why, names in missing.items()]


def _metrics(r: GradeResult, t: dict) -> list[dict]:
    e, model = r.evaluation, r.model
    ci = e.accuracy_ci
    latency = model.latency_ms_per_image
    return [
        {"label": t["accuracy"], "value": pct(e.accuracy, 2),
         "sub": f"{t['ci']} {pct(ci[0])} – {pct(ci[1])}" if ci else ""},
        {"label": t["loss"], "value": "–" if e.loss is None else f"{e.loss:.3f}", "sub": ""},
        {"label": t["top2"], "value": pct(e.top2_accuracy, 2), "sub": ""},
        {"label": t["ece"], "value": pct(e.ece, 2), "sub": t["ece_sub"] if e.reliability else ""},
        {"label": t["parameters"], "value": number(model.parameters), "sub": ""},
        {"label": t["macs"], "value": number(model.macs_per_image), "sub": ""},
        {"label": t["latency"], "value": "–" if latency is None else f"{latency:.2f} ms", "sub": ""},
    ]


def _calibration(e: EvalResult, t: dict) -> dict | None:
    """The reliability diagram beside the ECE; None for results written without its bins."""
    if not e.reliability:
        return None
    figure = figures.reliability_diagram(e.reliability, labels={
        "confidence": t["rel_confidence"], "accuracy": t["accuracy_axis"], "ideal": t["rel_ideal"],
        "gap": t["rel_gap"]})
    return {"figure": figure, "caption": t["rel_caption"]}


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
            key = "training_summary" if gap >= 0 else "training_summary_test_ahead"  # never "a gap of -3%"
            summary = t[key].format(best=pct(test_acc[i]), epoch=best, train=pct(train_acc[-1]),
                                    test=pct(test_acc[-1]), gap=pct(abs(gap)))
    if longest < 2:  # one point is no curve (its axes ticked fractions of an epoch): words only
        return {"figure": "", "summary": summary} if summary else None
    figure = figures.training_curves(
        epochs, loss=loss, accuracies=accuracies, best_epoch=best,
        labels=curve_labels(t, best))
    return {"figure": figure, "summary": summary}


def curve_labels(t: dict, best: int | None = None) -> dict[str, str]:
    """The training curves' axis, legend and marker words from the table ``t`` (the best epoch's
    marker only when there is one)."""
    labels = {"epoch": t["epoch"], "loss": t["train_loss"], "accuracy": t["accuracy_axis"], "gap": t["gap"]}
    if best is not None:
        labels["best"] = t["best_epoch"].format(epoch=best)
    return labels


def _per_class(e: EvalResult, names: list[str], labels: list[str], t: dict) -> dict:
    recall, precision = e.per_class_accuracy, e.per_class_precision
    support = [sum(row) for row in e.confusion_matrix]
    figure = figures.bar_chart(labels, {t["recall"]: [recall[c] for c in names],
                                        t["precision"]: [precision.get(c, 0.0) for c in names]},
                               height_in=2.9, style=PER_CLASS_STYLE)
    rows = [{"name": c, "label": lab, "recall": pct(recall[c]), "precision": pct(precision.get(c)),
             "support": number(support[i]) if i < len(support) else "–", "worst": False}
            for i, (c, lab) in enumerate(zip(names, labels))]
    if rows:
        worst = min(range(len(names)), key=lambda i: recall[names[i]])
        rows[worst]["worst"] = True
    return {"figure": figure, "rows": rows}


def _confusion(e: EvalResult, labels: list[str], t: dict, lang: str) -> dict:
    cells = figures.heatmap_cells(e.confusion_matrix)
    rows = [{"label": lab, "cells": row, "diagonal": i} for i, (lab, row) in enumerate(zip(labels, cells))]
    pairs = [{"true": class_name(p["true"], lang), "predicted": class_name(p["predicted"], lang),
              "count": number(p["count"])} for p in e.confused_pairs]
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


def _integrity(r: GradeResult, t: dict) -> dict | None:
    """Measured against claimed, and what a diagnosis found; None when nothing was measured."""
    facts = r.integrity
    probe = facts.memorisation if facts.memorisation and facts.memorisation.flagged else None
    if facts.training is None and not facts.diagnosis and probe is None:
        return None
    history = r.history or {}

    def last(key: str):
        values = history.get(key) or []
        return values[-1] if values and isinstance(values[-1], (int, float)) else None
    rows = []
    if facts.training is not None:
        # the units of the checks table: accuracies to 0.01%, losses to 3 decimals
        rows = [{"label": t["integrity_train_acc"], "claimed": metric_value("acc", last("train_acc")),
                 "measured": metric_value("acc", facts.training.accuracy)},
                {"label": t["integrity_train_loss"], "claimed": metric_value("loss", last("train_loss")),
                 "measured": metric_value("loss", facts.training.loss)},
                {"label": t["integrity_test_acc"], "claimed": metric_value("acc", last("test_acc")),
                 "measured": metric_value("acc", r.evaluation.accuracy)}]
    found = [findings.mismatch(m, t) for m in facts.mismatches]
    if facts.fit:  # worded from the two accuracies it compares; as recorded where one is missing
        found.append(findings.fit(r.evaluation.accuracy, facts.training.accuracy, t) if facts.training else facts.fit)
    if probe is not None:
        found.append(findings.memorisation(probe, t))
    diagnosis = [{"cause": findings.cause(d, t), "fix": "\n".join(d.fix),
                  "accuracy": t["integrity_with_fix"].format(acc=pct(d.accuracy), lo=pct(d.accuracy_ci[0]),
                                                             hi=pct(d.accuracy_ci[1]))} for d in facts.diagnosis]
    count = facts.training.count if facts.training else 0
    claims = any(row["claimed"] != "–" for row in rows)  # without a log, no column of dashes
    measured = {"train_acc": facts.training.accuracy if facts.training else None,
                "test_acc": r.evaluation.accuracy if r.evaluation else None}
    above = any(last(k) is not None and v is not None and last(k) > v + CLAIM_NOISE for k, v in measured.items())
    allowance = t["integrity_other_copy"].format(points=f"{TOLERANCES.other_copy * 100:g}") \
        if above and not facts.mismatches and not r.dataset.get("official") else ""
    return {"rows": rows, "claims": claims, "findings": found, "diagnosis": diagnosis, "allowance": allowance,
            "applied": findings.applied(facts.applied, t) if facts.applied else "",
            "note": t["integrity_on_train"].format(n=number(count)) if count else ""}


def _model(model: ModelFacts, t: dict) -> dict:
    rows = [{"name": row.names, "type": row.types,
             "output_shape": " × ".join(str(d) for d in row.output_shape or ()) or "–",
             "parameters": number(row.parameters)}
            for row in condense(model.layers, model.blocks)]
    note = t["layers_condensed"].format(layers=len(model.layers), rows=len(rows)) if len(rows) < len(model.layers) else ""
    return {"layers": rows, "total": number(model.parameters), "note": note}


def _error(result: GradeResult, lang: str) -> dict:
    """What went wrong and what to do, in ``lang``; an error without a catalogue entry in English,
    with a lead-in that says so (``grader.messages.error_for``)."""
    said_here = error_for(result.student_error_detail, result.student_error or "", lang)
    return {"message": said_here.message, "hint": said_here.hint, "lead": said_here.lead}
