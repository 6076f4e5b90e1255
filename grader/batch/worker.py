"""One submission, graded into a folder: the task every batch child runs, and the parent's
stand-in results for a child that did not finish.

    grade_into(job) -> timings          child side: load data, grade, write all of its files
    write_outputs(results, folder, settings, public)   results.json, report, gradescope/results.json
    failed_results(job, reason, checks, dataset) -> dict   a schema-1 error result

The rubric is read through the small adapters at the bottom (``rubric_*``), the only code here
that knows the Rubric's fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from grader import atomic
from grader.batch.gradescope import gradescope_results
from grader.batch.pool import Job, Limits

GRADESCOPE_NAME = "gradescope/results.json"


@dataclass(frozen=True)
class GradeSettings:
    """How every submission of a run is graded (the same for all of them).

    Attributes:
        data_path: CIFAR-10 source (None: $GRADER_DATA or the cache).
        rubric_path: rubric.toml, or None for the homework's default rubric.
        lang: report language, "en" or "zh".
        sandbox: run the submission's code under the sandbox.
        public_only: grade with the rubric's public checks only (``grader check``).
        partial: accept a data source smaller than CIFAR-10 (tests, demos).
        report: write report.html (and report.pdf when ``pdf``).
        pdf: write report.pdf too.
    """

    data_path: str | None = None
    rubric_path: str | None = None
    lang: str = "en"
    sandbox: bool = True
    public_only: bool = False
    partial: bool = False
    report: bool = True
    pdf: bool = True


def load_data(settings: GradeSettings):
    from grader.data import load_cifar10

    return load_cifar10(settings.data_path, expect_full=not settings.partial)


def load_settings_rubric(settings: GradeSettings):
    """The rubric these settings grade with (public checks only for a self-check)."""
    from grader.rubric import load_rubric

    rubric = load_rubric(Path(settings.rubric_path) if settings.rubric_path else None)
    return rubric.public() if settings.public_only else rubric


def grade_into(job: Job) -> dict:
    """Grade ``job.submission`` and write its files into ``job.staging``. Runs in the child.

    Returns:
        seconds spent: ``startup`` (imports, data, rubric), ``evaluate`` (grade_submission),
        ``render`` (results, report, Gradescope file); plus ``report_error`` when the report
        could not be drawn.
    """
    t0 = time.perf_counter()
    from grader.grade import grade_submission

    settings: GradeSettings = job.settings
    data = load_data(settings)
    rubric = load_settings_rubric(settings)
    t1 = time.perf_counter()
    results = grade_submission(job.submission, data=data, rubric=rubric, sandbox=settings.sandbox)
    results.setdefault("student", {})["id"] = job.student  # the gradebook's key, whatever the manifest says
    t2 = time.perf_counter()
    report_error = write_outputs(results, job.staging, settings, rubric_public(rubric))
    t3 = time.perf_counter()
    timings = {"startup": round(t1 - t0, 3), "evaluate": round(t2 - t1, 3), "render": round(t3 - t2, 3)}
    return {**timings, "report_error": report_error} if report_error else timings


# Imported once by the forkserver, so every child starts with the heavy modules loaded.
grade_into.preload = ("grader.batch.warm",)


def write_outputs(results: Mapping[str, Any], folder: Path, settings: GradeSettings,
                  public: Mapping[str, bool]) -> str | None:
    """Write results.json, gradescope/results.json and the report (per ``settings``) into ``folder``.

    Returns:
        None, or why the report could not be drawn: a grade never depends on its rendering, so
        the results stand and the reason goes to batch.json and the run's summary.
    """
    from grader.results import write_results

    write_results(dict(results), folder)
    atomic.write_json(folder / GRADESCOPE_NAME, gradescope_results(results, public=public))
    if not settings.report:
        return None
    try:
        from grader.report import write_report

        write_report(results, folder, lang=settings.lang, pdf=settings.pdf)
    except Exception as exc:  # noqa: BLE001 - see Returns
        return f"the report could not be drawn ({type(exc).__name__}: {exc})"
    return None


def failed_results(job: Job, reason: str, rubric, data) -> dict:
    """A schema-1 ``error`` result for a submission whose grading process did not finish.

    Args:
        rubric: the run's Rubric; every check is listed as failed with ``reason`` in its detail.
        data: the Cifar10 the run grades against (only its identity is recorded).
    """
    from grader.results import new_results, with_error, with_verdict
    from grader.rubric import check

    results = new_results(job.submission, data=data, sandbox=bool(getattr(job.settings, "sandbox", True)))
    results["student"] = {"id": job.student, "name": job.student}
    results["submission"]["sha256"] = job.sha256
    results = with_error(results, reason)
    return with_verdict(results, check(results, rubric), total_seconds=0.0)


# --- rubric adapters ------------------------------------------------------------------------------


def rubric_digest(rubric) -> str:
    """sha256 of the rubric's full content (checks, thresholds, points, limits)."""
    content = dataclasses.asdict(rubric) if dataclasses.is_dataclass(rubric) else repr(rubric)
    if isinstance(content, dict):
        content.pop("source", None)  # where the file lives does not change a grade
    blob = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def rubric_check_names(rubric) -> list[str]:
    """The checks' names, in the rubric's order: the gradebook's columns."""
    return [c.name for c in rubric.checks]


def rubric_public(rubric) -> dict[str, bool]:
    """Check name -> whether students see it before publication (Gradescope's visibility)."""
    return {c.name: bool(c.public) for c in rubric.checks}



def rubric_limits(rubric, margin: "LimitMargin") -> Limits:
    """The outer limits of one grading process tree, from the rubric's limits on inference."""
    limits = rubric.limits
    return Limits(timeout_s=float(limits.wall_seconds) + margin.extra_seconds,
                  memory_mib=int(limits.memory_mb) + margin.extra_mib)


@dataclass(frozen=True)
class LimitMargin:
    """What the grading process may use beyond the rubric's limits on the submission's own run.

    Attributes:
        extra_seconds: seconds for start-up, evaluation and rendering around the inference.
        extra_mib: MiB for the grader itself (data, matplotlib, weasyprint) beside the child.
    """

    extra_seconds: float = 120.0
    extra_mib: int = 2048
