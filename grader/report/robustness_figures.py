"""The "Robustness" section of both reports (templates/robustness.html.j2). Pure.

    submission_section(result, lang) -> dict | None    heatmap, summary, one example per corruption
    class_section(results, lang) -> dict | None        robustness against clean accuracy, per student
    severity_heatmap(rows, values, ...) -> data URI
    robustness_scatter(clean, corrupted, ...) -> data URI

Figures follow grader.report.figures: fixed margins, cividis for the heatmap, Okabe-Ito for points,
deterministic output.
"""

from __future__ import annotations

import re
import statistics
from typing import Any, Sequence

from grader.report import figures
from grader.report.i18n import class_name, robustness_strings
from grader.results import GradeResult
from grader.robustness.measure import Robustness

EXTRA_MARK = "*"
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")  # an example's PNG, else no <img> (grader.report.context imports us)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f}%"


def _corruption_label(name: str, t: dict) -> str:
    return t.get(f"rob_c_{name}", name)


def _left_out(robustness: Robustness, t: dict) -> str:
    names = [t.get(f"rob_why_{name}", f"{name} ({why})") for name, why in robustness.left_out.items()]
    return t["rob_left_out"].format(names=", ".join(names)) if names else ""


def submission_section(result: GradeResult, lang: str = "en") -> dict[str, Any] | None:
    """The section's context for one grade, or None when robustness was not measured."""
    from grader.robustness.corruptions import CORRUPTIONS

    r = result.robustness
    if r is None:
        return None
    t = robustness_strings(lang)
    names = list(r.per_corruption_severity)
    labels = [_corruption_label(n, t) + ("" if n not in CORRUPTIONS or CORRUPTIONS[n].standard else EXTRA_MARK)
              for n in names]
    standard = sum(1 for n in names if n in CORRUPTIONS and CORRUPTIONS[n].standard)
    clean = result.evaluation.accuracy if result.evaluation else None
    lo, hi = r.mean_accuracy_ci
    return {
        "t": t,
        "summary": t["rob_summary"].format(count=standard, mean=pct(r.mean_accuracy), lo=pct(lo), hi=pct(hi),
                                           clean=pct(clean), n=r.n_per_cell),
        "figure": severity_heatmap(labels, [r.per_corruption_severity[n] for n in names], xlabel=t["rob_severity"]),
        "caption": t["rob_caption"],
        "examples": [_example(e, t, lang) for e in r.examples],
        "examples_note": t["rob_examples"].format(severity=max((e.get("severity", 0) for e in r.examples),
                                                               default=0)),
        "left_out": _left_out(r, t),
    }


def _example(e: dict, t: dict, lang: str) -> dict:
    png = str(e.get("png") or "")
    name = str(e.get("corruption", "?"))
    predicted = e.get("predicted")
    return {"uri": "data:image/png;base64," + png if BASE64.fullmatch(png) else "",
            "label": t["rob_clean"] if name == "clean" else _corruption_label(name, t),
            "true": class_name(str(e.get("true", "?")), lang),
            "predicted": class_name(str(predicted), lang) if predicted else "",
            "correct": predicted == e.get("true")}


def class_section(results: Sequence[GradeResult | None], lang: str = "en") -> dict[str, Any] | None:
    """The section's context for a class: each graded result that measured robustness, its mean
    corruption accuracy against its clean accuracy; None when none measured it."""
    pairs = [(r.evaluation.accuracy, r.robustness.mean_accuracy) for r in results
             if r is not None and r.graded and r.evaluation is not None and r.robustness is not None]
    if not pairs:
        return None
    t = robustness_strings(lang)
    graded = sum(1 for r in results if r is not None and r.graded)
    clean, corrupted = zip(*pairs)
    return {
        "t": t,
        "summary": t["rob_class_summary"].format(count=len(pairs), graded=graded,
                                                 median=pct(statistics.median(corrupted)),
                                                 clean=pct(statistics.median(clean))),
        "figure": robustness_scatter(clean, corrupted, xlabel=t["rob_clean_axis"], ylabel=t["rob_corrupt_axis"]),
        "caption": t["rob_class_caption"],
        "examples": [],
        "left_out": "",
    }


def severity_heatmap(rows: Sequence[str], values: Sequence[Sequence[float]], *, xlabel: str,
                     style: figures.FigureStyle | None = None) -> str:
    """Accuracy per row (corruption) and severity 1..5 as a cividis heatmap, each cell labelled.

    Returns:
        a data URI.
    """
    style = style or figures.STYLE
    import matplotlib
    import numpy as np

    grid = np.asarray(values, dtype=float)  # corruptions, severities
    with matplotlib.rc_context(figures._rc(style)):
        height = 0.6 + 0.22 * len(rows)
        fig = figures._new_figure(height, style, (1.35, 0.45, 0.2, 0.1))
        ax = fig.add_subplot()
        ax.imshow(grid, cmap="cividis", vmin=0.0, vmax=1.0, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value * 100:.0f}", ha="center", va="center", fontsize=7,
                    color="#000000" if value > 0.55 else "#ffffff")
        ax.set_xticks(range(grid.shape[1]), [str(s) for s in range(1, grid.shape[1] + 1)])
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel(xlabel)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        return figures.to_data_uri(fig, style)


def robustness_scatter(clean: Sequence[float], corrupted: Sequence[float], *, xlabel: str, ylabel: str,
                       style: figures.FigureStyle | None = None) -> str:
    """One point per student, clean accuracy (x) against mean corruption accuracy (y), with the
    line of no loss.

    Returns:
        a data URI.
    """
    style = style or figures.STYLE
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    with matplotlib.rc_context(figures._rc(style)):
        fig = figures._new_figure(3.2, style, (0.7, 0.5, 0.2, 0.15))
        ax = fig.add_subplot()
        low = max(0.0, min(*clean, *corrupted) - 0.05)
        high = min(1.0, max(*clean, *corrupted) + 0.05)
        ax.plot([low, high], [low, high], color="#777777", linestyle=":", linewidth=1)
        ax.scatter(clean, corrupted, s=18, color=figures.OKABE_ITO[0], marker=figures.MARKERS[0],
                   edgecolor="white", linewidth=0.5, zorder=3)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal", adjustable="box")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.set_axisbelow(True)
        return figures.to_data_uri(fig, style)
