"""A class folder in, every student's graded folder and the class's outputs out.

    run_batch(submissions_dir, out_dir, settings=..., executor=...) -> BatchSummary
    make_executor(executor, scheduler, jobs)   the executor the command line names

Each student is graded by a worker process (``grader.batch.worker.grade_into``: the one grading
pipeline) under limits on its whole process tree; a resumed run skips finished students. A
submission that discovery could not read safely (``Entry.problem``) gets its error row without a
worker, and the TA's notes on the others (an id claimed twice) join their rows' error column.
"""

from __future__ import annotations

import dataclasses
import fcntl
import itertools
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from grader import __version__, atomic
from grader.batch import resume
from grader.batch.discover import Entry, discover_submissions
from grader.batch.gradebook import Record, outcome_of, read_record, write_gradebook
from grader.batch.executors import DaskExecutor, LocalExecutor, materialise, remove_tree
from grader.batch.pool import MARKER, Job, Outcome, Task, TreeCaps, tree_caps
from grader.batch.worker import (GradeSettings, failed_results, grade_into, load_data,
                                 load_settings_rubric, rubric_check_names, rubric_digest,
                                 write_outputs)
from grader.errors import GraderError
from grader.messages import say
from grader.pipeline import preflight

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
        notes: (student, what the TA should check) for rows graded under a changed id.
    """

    records: list[Record]
    graded_now: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.status != "graded"]


@dataclass(frozen=True)
class Plan:
    """Everything decided once, in the parent, before any child starts."""

    settings: GradeSettings
    rubric: object
    public: dict[str, bool]
    limits: TreeCaps
    data: object
    identity: dict


def make_plan(settings: GradeSettings, *, limits: TreeCaps | None = None) -> Plan:
    """Load the rubric and the data once (so a bad one fails before any child starts); when the
    rubric checks robustness, generate its corrupted set once here, not in every worker at once,
    and widen each grade's caps for the images it adds."""
    from grader.robustness.request import corrupted_set, robustness_size, with_room

    rubric = load_settings_rubric(settings)
    data = load_data(settings)
    robustness = robustness_size(None, rubric)
    if robustness:
        corrupted_set(data, robustness)
    identity = {"rubric": rubric_digest(rubric), "data": data.fingerprint, "grader": __version__,
                "lang": settings.lang, "sandbox": settings.sandbox, "report": settings.report,
                "pdf": settings.pdf, "public_only": settings.public_only}
    return Plan(settings, rubric, rubric.visibility(),
                limits or tree_caps(with_room(rubric, robustness, len(data.test_labels)).limits), data, identity)


def run_batch(submissions_dir: Path, out_dir: Path, *, settings: GradeSettings, executor=None,
              task: Task = grade_into, limits: TreeCaps | None = None, retry_failed: bool = False,
              class_report: bool = True, progress=None, compare_with: tuple[Path, ...] = (),
              bom: bool = True) -> BatchSummary:
    """Grade every submission in ``submissions_dir`` into ``out_dir``; skip what is already done.

    Args:
        executor: a LocalExecutor (default: one worker per core) or DaskExecutor.
        task: what each child runs (``grade_into``; tests pass a stand-in).
        limits: override the rubric's limits (tests).
        retry_failed: grade again the submissions whose last outcome was a timeout, memory or crash.
        class_report: write class-report.html/.pdf.
        progress: a ``Progress``-like object (see ``progress_bar``), or None for silence.
        compare_with: graded folders to compare the class with (``grader similarity``'s).
        bom: start gradebook.csv with a UTF-8 byte-order mark (what Excel on Windows needs).
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
        jobs = {e.student: Job(e.student, e.slug, e.path, e.sha256, resume.new_staging(out_dir, e.slug), settings,
                               keys[e.student]) for e in todo}
        if progress:
            reused = [read_record(e.student, e.slug, e.sha256, out_dir / e.slug) for e in entries if e not in todo]
            progress.start(total=len(entries), reused=map(outcome_of, reused))
        refused = [(jobs[e.student], Outcome("error", e.problem)) for e in todo if e.problem]
        graded = executor.run(task, [jobs[e.student] for e in todo if not e.problem], plan.limits)
        for job, outcome in itertools.chain(refused, graded):  # each committed as it finishes
            record_outcome(job, outcome, out_dir, plan)
            if progress:
                progress.advance(outcome_of(read_record(job.student, job.slug, job.sha256, out_dir / job.slug)))
        records = [_noted(read_record(e.student, e.slug, e.sha256, out_dir / e.slug), e) for e in entries]
        outputs = finish(records, out_dir, plan, class_report=class_report, compare_with=compare_with, bom=bom)
    if progress:
        progress.stop()
    return BatchSummary(records, [e.student for e in todo], skipped, time.monotonic() - start, outputs,
                        [(e.student, e.note) for e in entries if e.note])


def _noted(record: Record, entry: Entry) -> Record:
    """``record`` with the entry's note for the TA (an id claimed twice) leading its error column
    (``batch.noted``, which the class report says in its language)."""
    if not entry.note:
        return record
    return dataclasses.replace(record, error=say("batch.noted", note=entry.note, error=record.error)
                               if record.error else entry.note)


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


def finish(records: list[Record], out_dir: Path, plan: Plan, *, class_report: bool = True,
           compare_with: tuple[Path, ...] = (), bom: bool = True) -> list[Path]:
    """Write the gradebook, similarity.csv and the class report from the records; returns the paths written."""
    from grader.similarity.outputs import run_similarity
    from grader.similarity.words import report_section

    outputs = [write_gradebook(records, rubric_check_names(plan.rubric), out_dir, bom=bom)]
    similar = run_similarity(out_dir, labels=plan.data.test_labels, data=plan.data.fingerprint,
                             compare_with=compare_with)
    outputs.append(similar.path)
    if class_report:
        from grader.batch.classreport import write_class_report
        from grader.report.robustness_figures import class_section

        section = report_section(similar.found, similar.students, plan.settings.lang)
        outputs += write_class_report(records, out_dir, lang=plan.settings.lang, pdf=plan.settings.pdf,
                                      sections={"similarity": section, "robustness": class_section(
                                          [r.result for r in records], plan.settings.lang)})
    return outputs


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
