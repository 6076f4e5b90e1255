"""The class report: how the whole class did, for the teaching staff.

    class_context(records, lang) -> dict       pure: every number and figure the page shows
    render_class_html(records, lang) -> str    pure
    write_class_report(records, out_dir, lang, pdf) -> [paths]

Sections: counts, score distribution, pass rate of every check, per-class accuracy across the
class (hardest class first), leaderboard, submissions not graded (with reasons) and submissions
to look at (borderline checks and other flags). Rendered from the Records alone.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from grader import __version__
from grader.batch.gradebook import Record
from grader.report.context import pct
from grader.report.i18n import class_name, class_report_strings
from grader.report.render import write_pages
from grader.results import UNOFFICIAL_DATA_FLAG

HTML_NAME, PDF_NAME = "class-report.html", "class-report.pdf"
TEMPLATE = "class_report.html.j2"


@dataclass(frozen=True)
class ClassReportStyle:
    """Tunables of the class report.

    Attributes:
        leaderboard_size: rows in the leaderboard.
        accuracy_bin: width of one accuracy histogram bar, as a fraction (0.05 = 5 points).
    """

    leaderboard_size: int = 10
    accuracy_bin: float = 0.05


STYLE = ClassReportStyle()

def class_context(records: Sequence[Record], lang: str = "en", *, figures: bool = True,
                  style: ClassReportStyle = STYLE) -> dict:
    """Everything the class report shows, computed from ``records``. Pure.

    Args:
        figures: draw the charts (False leaves them None: tests, quick summaries).
    """
    t = class_report_strings(lang)
    records = sorted(records, key=lambda r: r.student)
    graded = [r for r in records if r.status == "graded"]
    scores = [_score(r) for r in records]
    accuracies = [a for a in map(_accuracy, graded) if a is not None]
    max_score = max((r.result.verdict.max_score for r in records if r.result), default=0.0)

    checks = check_pass_rates(records)
    per_class = per_class_summary(graded)
    ctx = {
        "t": t,
        "lang": lang,
        "version": __version__,
        "counts": {"total": len(records), "graded": len(graded), "not_graded": len(records) - len(graded)},
        "mean_score": _fmt(statistics.fmean(scores)) if scores else "–",
        "max_score": _fmt(max_score),
        "median_accuracy": pct(statistics.median(accuracies)) if accuracies else "–",
        "score_rows": score_distribution(scores),
        "checks": [{**c, "rate_text": pct(c["rate"])} for c in checks],
        "per_class": [{**row, "label": class_name(row["name"], lang),
                       **{k: pct(row[k]) for k in ("mean", "median", "min", "max")}} for row in per_class],
        "leaderboard": leaderboard(graded, style.leaderboard_size),
        "failures": [{"student": r.student, "status": r.status, "error": r.error or ""}
                     for r in records if r.status != "graded"],
        "review": review_list(graded),
        # said once for the class, not once per student in the review list
        "unofficial_data": any(UNOFFICIAL_DATA_FLAG in r.result.flags for r in graded if r.result),
        "figures": {"scores": None, "accuracy": None, "checks": None, "per_class": None},
    }
    if figures and records:
        ctx["figures"] = draw_figures(records, accuracies, checks, per_class, t, lang, style)
    return ctx


def score_distribution(scores: Sequence[float]) -> list[dict]:
    """One row per distinct score, ascending: ``{score, count, share}``."""
    counts: dict[float, int] = {}
    for s in scores:
        counts[round(s, 2)] = counts.get(round(s, 2), 0) + 1
    n = len(scores) or 1
    return [{"score": _fmt(s), "count": c, "share": c / n} for s, c in sorted(counts.items())]


def check_pass_rates(records: Sequence[Record]) -> list[dict]:
    """Per check, in rubric order: ``{name, passed, total, rate}`` over every submission (a submission
    not graded fails each check)."""
    order: list[str] = []
    passed: dict[str, int] = {}
    total: dict[str, int] = {}
    for r in records:
        for c in r.result.verdict.checks if r.result else ():
            if c.name not in total:
                order.append(c.name)
                total[c.name] = passed[c.name] = 0
            total[c.name] += 1
            passed[c.name] += c.passed
    return [{"name": n, "passed": passed[n], "total": total[n], "rate": passed[n] / total[n]} for n in order]


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
    """The ``size`` most accurate graded submissions (ties: higher score, then student id)."""
    ranked = sorted((r for r in graded if _accuracy(r) is not None),
                    key=lambda r: (-_accuracy(r), -_score(r), r.student))
    rows = []
    for rank, r in enumerate(ranked[:size], start=1):
        params = r.result.model.parameters
        rows.append({"rank": rank, "student": r.student, "accuracy": pct(_accuracy(r), 2),
                     "score": f"{_fmt(_score(r))} / {_fmt(r.result.verdict.max_score)}",
                     "parameters": f"{params:,}" if isinstance(params, int) else "–"})
    return rows


def review_list(graded: Sequence[Record]) -> list[dict]:
    """Graded submissions with a borderline check or any flag, sorted by student id."""
    rows = []
    for r in graded:
        if r.result is None:
            continue
        borderline = [c.name for c in r.result.verdict.checks if c.borderline]
        flags = r.result.submission_flags
        if borderline or flags:
            rows.append({"student": r.student, "accuracy": pct(_accuracy(r), 2),
                         "borderline": borderline, "flags": flags})
    return rows


def draw_figures(records, accuracies, checks, per_class, t, lang, style: ClassReportStyle) -> dict:
    from grader.report.figures import bar_chart

    rows = score_distribution([_score(r) for r in records])
    figures = {
        "scores": bar_chart([row["score"] for row in rows], {t["class_share"]: [row["share"] for row in rows]},
                            ylabel=t["class_share"], height_in=2.6),
        "accuracy": None, "checks": None, "per_class": None,
    }
    if accuracies:
        bands = accuracy_bands(accuracies, style.accuracy_bin)
        figures["accuracy"] = bar_chart([b["label"] for b in bands], {t["class_share"]: [b["share"] for b in bands]},
                                        ylabel=t["class_share"], height_in=2.6)
    if checks:
        figures["checks"] = bar_chart([c["name"] for c in checks], {t["class_pass_rate"]: [c["rate"] for c in checks]},
                                      ylabel=t["class_pass_rate"], height_in=2.8)
    if per_class:
        figures["per_class"] = bar_chart(
            [class_name(row["name"], lang) for row in per_class],
            {t["class_mean"]: [row["mean"] for row in per_class], t["class_min"]: [row["min"] for row in per_class]},
            ylabel=t["recall"], height_in=3.0)
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


def render_class_html(records: Sequence[Record], lang: str = "en", *, figures: bool = True) -> str:
    """The class report as one self-contained HTML page."""
    from grader.report.render import environment

    context = class_context(records, lang, figures=figures)
    return environment().get_template(TEMPLATE).render(**context)


def write_class_report(records: Sequence[Record], out_dir: Path, *, lang: str = "en",
                       pdf: bool = True) -> list[Path]:
    """Write ``class-report.html`` (and ``.pdf``) into ``out_dir`` atomically; returns the paths."""
    return write_pages(render_class_html(records, lang), out_dir, names=(HTML_NAME, PDF_NAME), pdf=pdf)


def _score(r: Record) -> float:
    return r.result.verdict.score if r.result else 0.0


def _accuracy(r: Record) -> float | None:
    return r.result.evaluation.accuracy if r.result and r.result.evaluation else None


def _fmt(value: float) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")
