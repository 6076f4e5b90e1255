"""A grade in PrairieLearn's external grader results format.

    prairielearn_results(result, images=..., lang="en") -> dict     pure
    result_images(result, lang="en") -> list[dict]        the confusion matrix and curves as data URIs
    fit_size(obj, limit) -> dict                          drops images, then trims text, to fit
    read_options(root) -> PrairieLearnOptions             grader options from ROOT/data/data.json

The format (PrairieLearn, "External grading", grading results): ``gradable`` (false: the hand-in
could not be graded, the student keeps the attempt), ``score`` in [0, 1], ``message``,
``output``, ``format_errors``, ``images`` (each ``label``, ``url``) and ``tests`` (each ``name``,
``description``, ``points``, ``max_points``, ``message``, ``output``). PrairieLearn refuses a
results file of 1 MB or more.

What the student reads (test names, messages, outputs, the figures' labels) is in ``lang``
(``grader prairielearn --lang``, or ``lang`` in the question's ``params.grader``), and names the
hand-in by its name, never by the grading container's folders.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.messages import LANGS, said
from grader.platforms.gradescope import check_output, check_title, summary_text
from grader.results import GradeResult, without_folders
from grader.rubric import CheckResult

SIZE_LIMIT = 1_000_000  # bytes of results.json PrairieLearn accepts, less than 1 MB
TEXT_LIMIT = 20_000  # characters kept of ``output`` when the whole does not fit
OPTION_KEYS = ("rubric", "model_code", "partial", "lang")


@dataclass(frozen=True)
class PrairieLearnOptions:
    """What a question's ``data.json`` may set for the grade (under ``params.grader``).

    Attributes:
        rubric: rubric.toml, relative to ROOT (e.g. ``serverFilesCourse/rubric.toml``).
        model_code: the class's model code, relative to ROOT.
        partial: accept a data source smaller than CIFAR-10.
        lang: the language of what the student reads ("en" or "zh"); None: the command line's.
    """

    rubric: Path | None = None
    model_code: Path | None = None
    partial: bool = False
    lang: str | None = None


def prairielearn_results(result: GradeResult, *, images: list[dict] | None = None, lang: str = "en") -> dict:
    """The PrairieLearn ``results.json`` object for one grade.

    Args:
        result: the grade (graded or error).
        images: ``{label, url}`` figures to show (``result_images``); None shows none.
        lang: the language of the names, messages and outputs.
    Returns:
        an ungradable object (``gradable: false``, ``format_errors``) for a hand-in that was not
        graded; otherwise the score as a fraction of the rubric's maximum and one test per check.
    """
    from grader.report.i18n import platform_strings

    t = platform_strings(lang)
    if not result.graded:
        return {"gradable": False, "score": 0.0, "format_errors": [result.student_error_text(lang) or t["pl_not_graded"]],
                "message": summary_text(result, lang), "output": "", "tests": [], "images": []}
    verdict = result.verdict
    tests = [{"name": check_title(check, lang), "description": _description(check, t, lang), "points": _num(check.score),
              "max_points": _num(check.max_score), "message": t["pl_passed"] if check.passed else t["pl_failed"],
              "output": check_output(check, result, lang)} for check in verdict.checks]
    maximum = _num(verdict.max_score)
    score = min(1.0, max(0.0, _num(verdict.score) / maximum)) if maximum > 0 else 0.0
    return {"gradable": True, "score": score, "message": summary_text(result, lang), "output": _notes(result, t, lang),
            "format_errors": [], "tests": tests, "images": list(images or [])}


def _description(check: CheckResult, t: dict, lang: str) -> str:
    """What a test measures, under its name: the metric's name in English, the condition it needs
    in another language (a results.json key is no word of it)."""
    from grader.report.context import check_row

    if lang == "en":
        return check.metric or check.name
    return t["pl_needs"].format(condition=check_row(check, t, lang)["threshold"])


def result_images(result: GradeResult, lang: str = "en") -> list[dict]:
    """The confusion matrix and, where a history was handed in, the training curves, labelled in ``lang``."""
    from grader.report import figures
    from grader.report.context import curve_labels
    from grader.report.i18n import class_name, platform_strings

    if result.evaluation is None:
        return []
    t = platform_strings(lang)
    style = figures.FigureStyle(dpi=90)  # small enough that both fit PrairieLearn's 1 MB many times over
    classes = [class_name(name, lang) for name in result.evaluation.per_class_accuracy]
    shown = [{"label": t["pl_confusion"],
              "url": confusion_image(result.evaluation.confusion_matrix, classes, style,
                                     axes=(t["predicted"], t["true_class"]))}]
    history = result.history or {}
    loss, train, test = history.get("train_loss"), history.get("train_acc"), history.get("test_acc")
    longest = max((len(v) for v in (loss, train, test) if v), default=0)
    if longest:
        accuracies = {name: values for name, values in ((t["train_acc"], train), (t["test_acc"], test)) if values}
        epochs = history.get("epoch") or list(range(1, longest + 1))
        shown.append({"label": t["pl_curves"], "url": figures.training_curves(
            epochs, loss=loss, accuracies=accuracies, best_epoch=None,
            labels=curve_labels(t), style=style)})
    return shown


def confusion_image(matrix: list[list[int]], classes: list[str], style,
                    axes: tuple[str, str] = ("predicted", "true")) -> str:
    """A confusion matrix as a cividis heatmap with its counts, as a data URI (``axes``: the
    labels of the predicted and the true class)."""
    import matplotlib
    from matplotlib.figure import Figure

    from grader.report.figures import styled, to_data_uri

    with styled(style):
        n = len(matrix)
        fig = Figure(figsize=(5.5, 5.0))
        fig.subplots_adjust(left=0.2, bottom=0.2, right=0.97, top=0.95)
        ax = fig.add_subplot()
        ax.imshow(matrix, cmap="cividis")
        high = max((max(row) for row in matrix if row), default=0) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                light = matplotlib.colormaps["cividis"](count / high)[:3]
                ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                        color="black" if sum(light) / 3 > 0.5 else "white")
        ax.set_xticks(range(n), classes[:n], rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), classes[:n])
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
    return to_data_uri(fig, style)


def fit_size(obj: dict, limit: int = SIZE_LIMIT) -> dict:
    """``obj`` whose JSON is under ``limit`` bytes: without images if need be, then with its
    ``output`` and test outputs trimmed to ``TEXT_LIMIT`` characters each."""
    if _size(obj) < limit:
        return obj
    obj = {**obj, "images": []}
    if _size(obj) < limit:
        return obj
    trimmed = {**obj, "output": _trim(obj.get("output", "")),
               "tests": [{**t, "output": _trim(t.get("output", ""))} for t in obj.get("tests", [])]}
    if _size(trimmed) >= limit:
        raise ValueError(f"PrairieLearn results stay over {limit} bytes after trimming")
    return trimmed


def read_options(root: Path) -> PrairieLearnOptions:
    """The ``params.grader`` table of ``ROOT/data/data.json``; defaults when the file or table is absent.

    Raises:
        GraderError: for a data.json that is not JSON, an unknown key, or a path that is not a file.
    """
    path = Path(root) / "data" / "data.json"
    if not path.is_file():
        return PrairieLearnOptions()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GraderError(f"{path} is not JSON ({exc})", "PrairieLearn writes it; check the question's setup") from None
    table = ((data.get("params") or {}).get("grader") or {}) if isinstance(data, dict) else {}
    if not isinstance(table, dict):
        raise GraderError(f"{path}: params.grader must be an object", "set it in the question's server.py")
    unknown = sorted(set(table) - set(OPTION_KEYS))
    if unknown:
        raise GraderError(f"{path}: params.grader has unknown keys {', '.join(unknown)}",
                          f"use only {', '.join(OPTION_KEYS)}")
    lang = table.get("lang")
    if lang is not None and lang not in LANGS:
        raise GraderError(f"{path}: params.grader.lang is {lang!r}", f"use one of: {', '.join(LANGS)}")
    return PrairieLearnOptions(rubric=_file(root, table.get("rubric"), path),
                               model_code=_file(root, table.get("model_code"), path),
                               partial=bool(table.get("partial", False)), lang=lang)


def _file(root: Path, value: Any, where: Path) -> Path | None:
    if value in (None, ""):
        return None
    found = Path(root) / str(value)
    if not found.is_file():
        raise GraderError(f"{where}: params.grader names {value}, but {found} is not a file",
                          "give a path relative to the grading root, e.g. serverFilesCourse/rubric.toml")
    return found


def _notes(result: GradeResult, t: dict, lang: str) -> str:
    """What reading the hand-in changed and why its history was not read, one per line, in ``lang``."""
    lines = [f"- {said(note, lang)}" for note in result.submission.notes]
    if result.submission.history_error:
        lines.append("- " + t["pl_history"].format(error=said(result.submission.history_error, lang)))
    return without_folders("\n".join(lines), result.submission.path) or ""


def _size(obj: dict) -> int:
    return len(json.dumps(obj, allow_nan=False).encode("utf-8"))


def _trim(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + "\n[trimmed]"


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
