"""One submission, graded into a folder: the task every batch child runs, and the parent's
stand-in results for a child that did not finish.

    grade_into(job) -> timings          child side: load data, grade, write all of its files
    write_outputs(result, folder, settings, public)   results.json, report, gradescope/results.json
    failed_results(job, reason, rubric, data) -> GradeResult   an error grade

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
from typing import Mapping

from grader.batch.pool import Job

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
        model_code: the class-wide model code (``--model-code``), over the rubric's.
    """

    data_path: str | None = None
    rubric_path: str | None = None
    lang: str = "en"
    sandbox: bool = True
    public_only: bool = False
    partial: bool = False
    report: bool = True
    pdf: bool = True
    model_code: str | None = None


def load_data(settings: GradeSettings):
    from grader.data import load_cifar10

    return load_cifar10(settings.data_path, expect_full=not settings.partial)


def load_settings_rubric(settings: GradeSettings):
    """The rubric these settings grade with (public checks only for a self-check)."""
    from grader.rubric import load_rubric

    rubric = load_rubric(Path(settings.rubric_path) if settings.rubric_path else None)
    rubric = rubric.with_model_code(settings.model_code)
    return rubric.public() if settings.public_only else rubric


def grade_into(job: Job) -> dict:
    """Grade ``job.submission`` and write its files into ``job.staging``. Runs in the child.

    Returns:
        seconds spent: ``startup`` (imports, data, rubric), ``evaluate`` (the grade), ``render``
        (results, report, Gradescope file); plus ``report_error`` when the report could not be drawn.
    """
    t0 = time.perf_counter()
    from grader.pipeline import grade_one
    from grader.similarity.kept import Kept, write_kept

    settings: GradeSettings = job.settings
    data = load_data(settings)
    rubric = load_settings_rubric(settings)
    t1 = time.perf_counter()
    # the gradebook's key, whatever the manifest says
    kept = Kept()  # the weight fingerprint and logits, for the class's similarity step
    result = grade_one(job.submission, data=data, rubric=rubric, sandbox=settings.sandbox, student=job.student,
                       kept=kept)
    t2 = time.perf_counter()
    report_error = write_outputs(result, job.staging, settings, rubric.visibility())
    write_kept(job.staging, kept, result)
    t3 = time.perf_counter()
    timings = {"startup": round(t1 - t0, 3), "evaluate": round(t2 - t1, 3), "render": round(t3 - t2, 3)}
    return {**timings, "report_error": report_error} if report_error else timings


# Imported once by the forkserver, so every child starts with the heavy modules loaded.
grade_into.preload = ("grader.batch.warm",)


def write_outputs(result, folder: Path, settings: GradeSettings, public: Mapping[str, bool]) -> str | None:
    """Write a student's folder: results.json, gradescope/results.json and the report (per
    ``settings``). Returns why the report could not be drawn, or None."""
    from grader import pipeline

    parts = pipeline.OutputParts(report=settings.report, pdf=settings.pdf, lang=settings.lang, gradescope=True,
                                 public=public)
    return pipeline.write_outputs(result, folder, parts).report_error


def failed_results(job: Job, reason: str, rubric, data):
    """An ERROR grade for a submission whose grading process did not finish.

    Args:
        reason: why, for the gradebook and the report (a catalogue Message is said in the report's
            language, and kept in results.json's ``error_detail``).
        rubric: the run's Rubric; every check is listed as failed with ``reason`` in its detail.
        data: the Cifar10 the run grades against (only its identity is recorded).
    """
    from grader.messages import Message
    from grader.results import Student, as_error, new_result, with_verdict
    from grader.rubric import check

    result = new_result(job.submission, dataset=data.identity(), sandbox=bool(getattr(job.settings, "sandbox", True)))
    result = as_error(result.replace(student=Student(job.student, job.student),
                                     submission=dataclasses.replace(result.submission, sha256=job.sha256)), reason,
                      detail=reason if isinstance(reason, Message) else None)
    return with_verdict(result, check({}, rubric, not_graded=reason), total_seconds=0.0)


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
