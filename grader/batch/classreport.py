"""The class report: how the whole class did, for the teaching staff.

    class_context(records, lang) -> dict       pure: every number and figure the page shows
    render_class_html(records, lang) -> str    pure
    write_class_report(records, out_dir, lang, pdf) -> [paths]

Sections: counts; what needs a look (submissions not graded, with reasons; graded ones with a
borderline check, an integrity flag or an input diagnosis); score and accuracy distributions;
item analysis of every check (grader.batch.itemanalysis); the class-summed confusion matrix and
per-class accuracy (hardest class first); a leaderboard with shared ranks for ties. Every figure
is over one population, the graded submissions, and says so. Rendered from the Records alone;
``sections`` adds optional parts other modules compute (``similarity``, ``robustness``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from grader import __version__
from grader.batch.gradebook import Record, display_name, record_reason
from grader.batch.itemanalysis import ITEM_STYLE, CheckItem, ItemStyle, check_items, shared_ranks, summed_confusion
from grader.report import findings
from grader.report.context import check_name, pct
from grader.report.i18n import class_name, class_report_strings
from grader.report.render import write_pages
from grader.results import BORDERLINE_FLAG, UNOFFICIAL_DATA_FLAG

HTML_NAME, PDF_NAME = "class-report.html", "class-report.pdf"
TEMPLATE = "class_report.html.j2"
OPTIONAL_SECTIONS = ("similarity", "robustness")  # filled by other modules, shown when given


@dataclass(frozen=True)
class ClassReportStyle:
    """Tunables of the class report.

    Attributes:
        leaderboard_size: ranks shown in the leaderboard (more rows when the last rank is shared).
        accuracy_bin: width of one accuracy histogram bar, as a fraction (0.05 = 5 points).
        items: the item analysis's tunables.
    """

    leaderboard_size: int = 10
    accuracy_bin: float = 0.05
    items: ItemStyle = ITEM_STYLE


STYLE = ClassReportStyle()


def class_context(records: Sequence[Record], lang: str = "en", *, figures: bool = True,
                  style: ClassReportStyle = STYLE, sections: Mapping[str, Any] | None = None) -> dict:
    """Everything the class report shows, computed from ``records``. Pure.

    Args:
        figures: draw the charts (False leaves them None: tests, quick summaries).
        sections: optional parts by name (``OPTIONAL_SECTIONS``), each shown by its own template.
    """
    t = class_report_strings(lang)
    records = sorted(records, key=lambda r: r.student)
    graded = [r for r in records if _is_graded(r)]
    scores = [_score(r) for r in graded]
    accuracies = [a for a in map(_accuracy, graded) if a is not None]
    max_score = max((r.result.verdict.max_score for r in records if r.result), default=0.0)
    items = check_items([r.result for r in graded], style.items)
    per_class = per_class_summary(graded)
    ctx = {
        "t": t,
        "lang": lang,
        "version": __version__,
        "counts": {"total": len(records), "graded": len(graded), "not_graded": len(records) - len(graded)},
        "population": t["class_population"].format(graded=len(graded), total=len(records)),
        "mean_score": _fmt(statistics.fmean(scores)) if scores else "–",
        "max_score": _fmt(max_score),
        "median_accuracy": pct(statistics.median(accuracies)) if accuracies else "–",
        "score_rows": score_distribution(scores),
        "checks": [item_row(item, t, lang) for item in items],
        "low_discrimination": style.items.low_discrimination,
        "confusion": confusion_table([r.result for r in graded], lang),
        "per_class": [{**row, "label": class_name(row["name"], lang),
                       **{k: pct(row[k]) for k in ("mean", "median", "min", "max")}} for row in per_class],
        "leaderboard": leaderboard(graded, style.leaderboard_size),
        "failures": [failure_row(r, t, lang) for r in records if not _is_graded(r)],
        "review": review_list(graded, t, lang, similar=similar_notes((sections or {}).get("similarity"), t)),
        # said once for the class, not once per student in the review list
        "unofficial_data": any(UNOFFICIAL_DATA_FLAG in r.result.flags for r in graded),
        **{name: (sections or {}).get(name) for name in OPTIONAL_SECTIONS},
        "figures": {"scores": None, "accuracy": None, "per_class": None},
    }
    if figures and graded:
        ctx["figures"] = draw_figures(scores, accuracies, per_class, t, lang, style)
    return ctx


def score_distribution(scores: Sequence[float]) -> list[dict]:
    """One row per distinct score, ascending: ``{score, count, share}`` (share of ``scores``)."""
    counts: dict[float, int] = {}
    for s in scores:
        counts[round(s, 2)] = counts.get(round(s, 2), 0) + 1
    n = len(scores) or 1
    return [{"score": _fmt(s), "count": c, "share": c / n} for s, c in sorted(counts.items())]


def item_row(item: CheckItem, t: dict, lang: str = "en") -> dict:
    """One check's line of the item-analysis table, formatted, the check named in ``lang``."""
    why = t["class_na_" + item.no_discrimination.replace("-", "_")] if item.no_discrimination else ""
    discrimination = t["unavailable"] if item.discrimination is None else f"{item.discrimination:.2f}"
    step = t["class_step_relative"] if item.relative else t["class_step_points"]
    shown = [round(abs(s.step) * 100, 6) for s in item.shifts if s.step > 0]
    if shown and all(v == shown[0] * k for k, v in enumerate(shown, start=1)):
        shown = shown[:1]  # even steps (1, 2 pp): the table's -2..+2 count them, so one says it all
    return {"name": check_name(item, lang), "passed": item.passed, "total": item.total, "rate_text": pct(item.rate),
            "discrimination": discrimination, "no_discrimination": why, "low": item.low, "borderline": item.borderline,
            "shifts": [s.passed for s in item.shifts],
            "step": step.format(n=" / ".join(f"{v:g}" for v in shown)) if shown else "–"}


def confusion_table(results, lang: str) -> dict | None:
    """The class-summed confusion matrix as a heatmap table of row percentages (rows true class)."""
    from grader.report.figures import heatmap_cells

    summed = summed_confusion(results)
    if summed is None:
        return None
    labels = [class_name(name, lang) for name in summed.classes]
    cells = heatmap_cells([[round(v * 100, 1) for v in row] for row in summed.row_shares()])
    return {"labels": labels, "rows": [{"label": lab, "cells": row} for lab, row in zip(labels, cells)],
            "included": summed.included, "skipped": summed.skipped}


def per_class_summary(graded: Sequence[Record]) -> list[dict]:
    """Per CIFAR-10 class: mean, median, min, max recall over the graded submissions; hardest first."""
    values: dict[str, list[float]] = {}
    for r in graded:
        evaluation = r.result.evaluation if r.result else None
        for name, acc in (evaluation.per_class_accuracy if evaluation else {}).items():
            if acc is not None:
                values.setdefault(name, []).append(float(acc))
    rows = [{"name": name, "mean": statistics.fmean(v), "median": statistics.median(v), "min": min(v),
             "max": max(v), "n": len(v)} for name, v in values.items()]
    return sorted(rows, key=lambda row: (row["mean"], row["name"]))


def leaderboard(graded: Sequence[Record], size: int) -> list[dict]:
    """The graded submissions ranked by accuracy as shown (two decimals of a percent), ranks
    ``1..size``: equal accuracies share a rank (1, 2, 2, 4), so a shared last rank adds rows.
    Within a rank: higher score first, then student id."""
    ranked = sorted((r for r in graded if _accuracy(r) is not None),
                    key=lambda r: (-round(_accuracy(r), 4), -_score(r), r.student))
    rows = []
    for rank, r in zip(shared_ranks([round(_accuracy(r), 4) for r in ranked]), ranked):
        if rank > size:
            break
        params = r.result.model.parameters
        rows.append({"rank": rank, "student": r.student, "name": _name(r), "accuracy": pct(_accuracy(r), 2),
                     "score": f"{_fmt(_score(r))} / {_fmt(r.result.verdict.max_score)}",
                     "parameters": f"{params:,}" if isinstance(params, int) else "–"})
    return rows


def failure_row(r: Record, t: dict, lang: str = "en") -> dict:
    """A submission not graded: its status in words and its reason in ``lang``: the grade's own
    error said from the message catalogue, any other reason (a timeout, a crash) as the batch
    wrote it, after the catalogue's lead-in saying it is the grader's English; a note before it
    (an id claimed twice) said too."""
    return {"student": r.student, "name": _name(r), "status": t.get(f"class_status_{r.status}", r.status),
            "error": record_reason(r, lang)}


def review_list(graded: Sequence[Record], t: dict, lang: str = "en", *,
                similar: Mapping[str, list[str]] | None = None) -> list[dict]:
    """Graded submissions that need a look, by student id: a borderline check (named in ``lang``),
    a flag about the submission (described in words), an input diagnosis (its cause and fix), or a
    similar hand-in (``similar``: student -> sentences, ``similar_notes``)."""
    rows = []
    for r in graded:
        borderline = [check_name(c, lang) for c in r.result.verdict.checks if c.borderline]
        diagnoses = [{"cause": findings.cause(d, t), "fix": list(d.fix)} for d in r.result.integrity.diagnosis]
        diagnosed = {d.flag for d in r.result.integrity.diagnosis}
        flags = [{"code": f, "text": t.get(f"flag_{f}", f)} for f in r.result.submission_flags
                 if f != BORDERLINE_FLAG and f not in diagnosed]
        alike = list((similar or {}).get(r.student, ()))
        if borderline or flags or diagnoses or alike:
            rows.append({"student": r.student, "name": _name(r), "accuracy": pct(_accuracy(r), 2),
                         "borderline": borderline, "flags": flags, "diagnoses": diagnoses, "similar": alike})
    return rows


def _name(r: Record) -> str:
    """The display name beside the student id: empty where it would only repeat the id."""
    name = display_name(r)
    return "" if name == r.student else name


def similar_notes(section: Mapping[str, Any] | None, t: dict) -> dict[str, list[str]]:
    """student -> one sentence per flagged pair it is in, from the "Similar pairs" section's rows
    (a student of a compared earlier folder is named with where it comes from)."""
    notes: dict[str, list[str]] = {}
    for row in (section or {}).get("rows", ()):
        for me, other, origin in ((row["a"], row["b"], row["b_from"]), (row["b"], row["a"], row["a_from"])):
            named = f"{other} ({origin})" if origin else other
            notes.setdefault(me, []).append(t["class_similar_to"].format(other=named, kind=row["kind"]))
    return notes


def draw_figures(scores, accuracies, per_class, t, lang, style: ClassReportStyle) -> dict:
    """The charts: score and accuracy distributions (share of the graded), per-class recall."""
    from grader.report.figures import bar_chart

    rows = score_distribution(scores)
    share = t["class_share"]
    figures = {
        "scores": bar_chart([row["score"] for row in rows], {share: [row["share"] for row in rows]},
                            ylabel=share, height_in=2.3),
        "accuracy": None, "per_class": None,
    }
    if accuracies:
        bands = accuracy_bands(accuracies, style.accuracy_bin)
        figures["accuracy"] = bar_chart([b["label"] for b in bands], {share: [b["share"] for b in bands]},
                                        ylabel=share, height_in=2.3)
    if per_class:
        figures["per_class"] = bar_chart(
            [class_name(row["name"], lang) for row in per_class],
            {t["class_mean"]: [row["mean"] for row in per_class], t["class_min"]: [row["min"] for row in per_class]},
            ylabel=t["recall"], height_in=2.6)
    return figures


def accuracy_bands(accuracies: Sequence[float], width: float) -> list[dict]:
    """Histogram of accuracies in bands of ``width`` from the lowest to the highest occupied band."""
    n_bins = int(round(1 / width))
    counts = [0] * n_bins
    for a in accuracies:
        counts[min(int(a / width), n_bins - 1)] += 1
    occupied = [i for i, c in enumerate(counts) if c]
    lo, hi = occupied[0], occupied[-1]
    return [{"label": f"{i * width * 100:.0f}–{(i + 1) * width * 100:.0f}%", "count": counts[i],
             "share": counts[i] / len(accuracies)} for i in range(lo, hi + 1)]


def render_class_html(records: Sequence[Record], lang: str = "en", *, figures: bool = True,
                      sections: Mapping[str, Any] | None = None) -> str:
    """The class report as one self-contained HTML page."""
    from grader.report.render import environment

    context = class_context(records, lang, figures=figures, sections=sections)
    return environment().get_template(TEMPLATE).render(**context)


def write_class_report(records: Sequence[Record], out_dir: Path, *, lang: str = "en", pdf: bool = True,
                       sections: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``class-report.html`` (and ``.pdf``) into ``out_dir`` atomically; returns the paths."""
    return write_pages(render_class_html(records, lang, sections=sections), out_dir,
                       names=(HTML_NAME, PDF_NAME), pdf=pdf)


def _is_graded(r: Record) -> bool:
    return r.status == "graded" and r.result is not None


def _score(r: Record) -> float:
    return r.result.verdict.score if r.result else 0.0


def _accuracy(r: Record) -> float | None:
    return r.result.evaluation.accuracy if r.result and r.result.evaluation else None


def _fmt(value: float) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")
