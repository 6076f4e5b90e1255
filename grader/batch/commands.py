"""The batch, check and gradescope commands: one main flow each.

    run_batch(submissions_dir, out_dir, settings=..., executor=...) -> BatchSummary
    batch_command(...)        `grader batch`: run_batch, then print the summary
    check_command(...)        `grader check`: one submission, public checks, terminal summary
    gradescope_command(...)   `grader gradescope`: ROOT/submission -> ROOT/results/results.json
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from grader import __version__, atomic
from grader.batch import resume
from grader.batch.discover import Entry, discover_submissions
from grader.batch.gradebook import Record, read_record, write_gradebook
from grader.batch.executors import DaskExecutor, LocalExecutor, materialise, remove_tree
from grader.batch.pool import MARKER, Job, Limits, Outcome, Task
from grader.batch.worker import (GradeSettings, LimitMargin, failed_results, grade_into, load_data,
                                 load_settings_rubric, rubric_check_names, rubric_digest, rubric_limits,
                                 rubric_public, write_outputs)
from grader.errors import GraderError
from grader.grade import preflight

LOCK_NAME = ".batch.lock"


@dataclass
class BatchSummary:
    """What a run did.

    Attributes:
        records: every student's grade, sorted by student id.
        graded_now: students graded in this run.
        skipped: students whose finished folder was reused (resume).
        wall_s: seconds the run took.
        outputs: the gradebook and class report paths.
    """

    records: list[Record]
    graded_now: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    outputs: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.status != "graded"]


@dataclass(frozen=True)
class Plan:
    """Everything decided once, in the parent, before any child starts."""

    settings: GradeSettings
    rubric: object
    public: dict[str, bool]
    limits: Limits
    data: object
    identity: dict


def make_plan(settings: GradeSettings, *, limits: Limits | None = None) -> Plan:
    """Load the rubric and the data once (so a bad one fails before any child starts)."""
    rubric = load_settings_rubric(settings)
    data = load_data(settings)
    identity = {"rubric": rubric_digest(rubric), "data": data.fingerprint, "grader": __version__,
                "lang": settings.lang, "sandbox": settings.sandbox, "report": settings.report,
                "pdf": settings.pdf, "public_only": settings.public_only}
    return Plan(settings, rubric, rubric_public(rubric),
                limits or rubric_limits(rubric, LimitMargin()), data, identity)


def run_batch(submissions_dir: Path, out_dir: Path, *, settings: GradeSettings, executor=None,
              task: Task = grade_into, limits: Limits | None = None, retry_failed: bool = False,
              class_report: bool = True, progress=None) -> BatchSummary:
    """Grade every submission in ``submissions_dir`` into ``out_dir``; skip what is already done.

    Args:
        executor: a LocalExecutor (default: one worker per core) or DaskExecutor.
        task: what each child runs (``grade_into``; tests pass a stand-in).
        limits: override the rubric's limits (tests).
        retry_failed: grade again the submissions whose last outcome was a timeout, memory or crash.
        class_report: write class-report.html/.pdf.
        progress: a ``Progress``-like object (see ``progress_bar``), or None for silence.
    Raises:
        GraderError: for a bad folder, rubric or data source, an ``out_dir`` inside ``submissions_dir``
            or not writable, or another batch running on ``out_dir``.
    """
    start = time.monotonic()
    out_dir = Path(out_dir)
    refuse_out_inside(Path(submissions_dir), out_dir)
    entries = discover_submissions(submissions_dir)
    plan = make_plan(settings, limits=limits)
    executor = executor or LocalExecutor(os.cpu_count() or 1)
    if isinstance(executor, LocalExecutor):  # Dask workers check their own machines
        preflight(sandbox=settings.sandbox)  # the machine, before any student
    with _exclusive(out_dir):
        resume.clean_staging(out_dir)
        keys = {e.student: resume.resume_key(e.sha256, plan.identity) for e in entries}
        todo = [e for e in entries
                if not resume.finished(out_dir / e.slug, keys[e.student], retry_failed=retry_failed)]
        skipped = [e.student for e in entries if e not in todo]
        jobs = [Job(e.student, e.slug, e.path, e.sha256, resume.new_staging(out_dir, e.slug), settings,
                    keys[e.student]) for e in todo]
        if progress:
            progress.start(total=len(entries), done=len(skipped))
        for job, outcome in executor.run(task, jobs, plan.limits):
            record_outcome(job, outcome, out_dir, plan)
            if progress:
                progress.advance(ok=_graded(out_dir / job.slug))
        records = [read_record(e.student, e.slug, e.sha256, out_dir / e.slug) for e in entries]
        outputs = finish(records, out_dir, plan, class_report=class_report)
    if progress:
        progress.stop()
    return BatchSummary(records, [e.student for e in todo], skipped, time.monotonic() - start, outputs)


def record_outcome(job: Job, outcome: Outcome, out_dir: Path, plan: Plan) -> None:
    """Put a finished child's folder in place, or write an error folder with the reason."""
    staging = job.staging
    if outcome.files:
        materialise(outcome, staging)
    if not outcome.ok:
        remove_tree(staging)
        staging = resume.new_staging(out_dir, job.slug)
        results = failed_results(job, outcome.reason or "not graded", plan.rubric, plan.data)
        report_error = write_outputs(results, staging, plan.settings, plan.public)
        atomic.write_json(staging / MARKER, {
            "student": job.student, "sha256": job.sha256, "resume_key": job.resume_key,
            "status": outcome.status, "reason": outcome.reason, "report_error": report_error,
            "timings": {"wall": round(outcome.wall_s, 3)}, "peak_mib": round(outcome.peak_mib, 1),
            "infrastructure": outcome.infrastructure,
        })
    resume.commit(staging, out_dir / job.slug)


def finish(records: list[Record], out_dir: Path, plan: Plan, *, class_report: bool = True) -> list[Path]:
    """Write the gradebook and the class report from the records; returns the paths written."""
    outputs = [write_gradebook(records, rubric_check_names(plan.rubric), out_dir)]
    if class_report:
        from grader.batch.classreport import write_class_report

        outputs += write_class_report(records, out_dir, lang=plan.settings.lang, pdf=plan.settings.pdf)
    return outputs


def _graded(folder: Path) -> bool:
    marker = resume.read_marker(folder) or {}
    return marker.get("status") == "ok"


def refuse_out_inside(submissions_dir: Path, out_dir: Path) -> None:
    """Refuse an ``out_dir`` that is ``submissions_dir`` or inside it: each student's output folder
    would replace a submission of the same name, and the next run would grade the outputs.

    Raises:
        GraderError: saying to pass an --out outside the submissions.
    """
    submissions, out = submissions_dir.resolve(), out_dir.resolve()
    if out == submissions or submissions in out.parents:
        raise GraderError(f"--out {out_dir} is inside the submissions folder {submissions_dir}: the outputs "
                          "would overwrite students' folders and be graded as submissions next time",
                          f"pass an --out outside it, e.g. --out {submissions.name}-graded beside it")


@contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold a lock on ``out_dir`` so two batches never write the same folder (freed on any exit)."""
    atomic.ensure_dir(out_dir, hint="pass an --out folder you can write to")
    with open(out_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GraderError(f"another `grader batch` is writing {out_dir}",
                              "wait for it to finish, or pass a different --out") from None
        yield


# --- the commands -----------------------------------------------------------------------------------


def make_executor(executor: str, scheduler: str | None, jobs: int | None):
    """The executor the options name: Dask at ``scheduler``, else ``jobs`` local workers.

    Raises:
        GraderError: options that contradict each other.
    """
    if executor == "dask":
        return DaskExecutor(scheduler)
    if scheduler:
        raise GraderError("--scheduler only applies with --executor dask", "add --executor dask, or drop --scheduler")
    return LocalExecutor(jobs or os.cpu_count() or 1)


def batch_command(*, submissions_dir: str, out_dir: str, rubric: str | None = None, jobs: int | None = None,
                  data_path: str | None = None, lang: str = "en", executor: str = "local",
                  scheduler: str | None = None, no_sandbox: bool = False, partial: bool = False,
                  retry_failed: bool = False, no_pdf: bool = False) -> int:
    """`grader batch`. Returns 0 once the gradebook is written, whatever the students' grades."""
    from grader.batch.console import print_batch_summary, progress_bar

    settings = GradeSettings(data_path=data_path, rubric_path=rubric, lang=lang, sandbox=not no_sandbox,
                             partial=partial, pdf=not no_pdf)
    pool = make_executor(executor, scheduler, jobs)
    with progress_bar() as progress:
        summary = run_batch(Path(submissions_dir), Path(out_dir), settings=settings, executor=pool,
                            retry_failed=retry_failed, progress=progress)
    print_batch_summary(summary, Path(out_dir))
    return 0


def grade_one(submission: Path, out_dir: Path, settings: GradeSettings, *, student: str | None = None,
              task: Task = grade_into, limits: Limits | None = None) -> Record:
    """Grade one submission in a child process, exactly as a batch would, into ``out_dir``."""
    from grader.batch.discover import content_sha256, slugify, student_id

    submission = Path(submission)
    student = student or student_id(submission)
    plan = make_plan(settings, limits=limits)
    preflight(sandbox=settings.sandbox)
    entry = Entry(submission, student, slugify(student), content_sha256(submission))
    out_dir = Path(out_dir).resolve()
    if out_dir.is_dir() and any(out_dir.iterdir()) and resume.read_marker(out_dir) is None:
        raise GraderError(f"{out_dir} already holds other files, and grading replaces the whole folder",
                          "pass a new or empty --out folder")
    parent = atomic.ensure_dir(out_dir.parent, hint="pass an --out folder you can write to")
    job = Job(entry.student, out_dir.name, submission, entry.sha256, resume.new_staging(parent, out_dir.name),
              settings, resume.resume_key(entry.sha256, plan.identity))
    outcome = LocalExecutor(1).run(task, [job], plan.limits)
    for job, outcome in outcome:
        record_outcome(job, outcome, parent, plan)
    return read_record(entry.student, out_dir.name, entry.sha256, parent / out_dir.name)


def check_command(*, submission: str, out_dir: str = "grader-check", rubric: str | None = None,
                  data_path: str | None = None, lang: str = "en", partial: bool = False,
                  no_sandbox: bool = False) -> int:
    """`grader check`: grade with the public checks; exit 0 when all pass, 1 when one fails, 2 when
    the submission could not be graded (as `grader grade`)."""
    from grader.batch.console import print_check_summary
    from grader.grade import EXIT_FAILED, EXIT_PASSED, EXIT_UNGRADED

    settings = GradeSettings(data_path=data_path, rubric_path=rubric, lang=lang, sandbox=not no_sandbox,
                             public_only=True, partial=partial)
    record = grade_one(Path(submission), Path(out_dir), settings)
    print_check_summary(record, Path(out_dir))
    if record.status != "graded":
        return EXIT_UNGRADED
    return EXIT_PASSED if all(c.get("passed") for c in record.results.get("checks") or []) else EXIT_FAILED


def gradescope_command(*, root: str = "/autograder", rubric: str | None = None,
                       data_path: str | None = None, partial: bool = False) -> int:
    """`grader gradescope`: grade ROOT/submission, write ROOT/results/results.json (and the report
    beside it). Returns 0 when results.json was written, whatever the grade."""
    import click

    root = Path(root)
    submission = root / "submission"
    if not submission.is_dir():
        what = "is a file, not a folder" if submission.exists() else "does not exist"
        raise GraderError(f"{submission} {what}", "run inside Gradescope, or pass --root "
                                                  "to a folder holding submission/ (the upload's files)")
    settings = GradeSettings(data_path=data_path, rubric_path=rubric, partial=partial)
    work = root / "results" / "grader"
    record = grade_one(submission, work, settings, student=gradescope_student(root))
    atomic.write_bytes(root / "results" / "results.json", (work / "gradescope" / "results.json").read_bytes())
    click.echo(f"{record.student}: {record.status}, score {record.results.get('score', 0):g}"
               f" -> {root / 'results' / 'results.json'}")
    return 0


def gradescope_student(root: Path) -> str:
    """The student id from Gradescope's submission_metadata.json (first user's email), else
    the manifest or "submission"."""
    import json

    from grader.batch.discover import student_id

    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = meta.get("users") or []
        if users and (users[0].get("email") or users[0].get("name")):
            return str(users[0].get("email") or users[0].get("name"))
    except (OSError, ValueError, AttributeError):
        pass
    return student_id(root / "submission")
