"""Run one grading task per submission, each in its own child process, under limits.

    run_job(task, job, limits) -> Outcome        supervise one child (any thread may call it)

The executors (``executors.LocalExecutor``, ``executors.DaskExecutor``) run many jobs through
``run_job``; the process-tree helpers (memory, kill) live in ``process_tree``.

A child that crashes, overruns the wall clock or the memory cap is killed with everything it
started (the sandboxed inference child included) and becomes an Outcome with a reason; the other
children go on. ``task(job)`` runs in the child, writes its files into ``job.staging`` and returns
its timings; the child then writes ``batch.json`` there, the marker of a finished task.

Children are forked from a forkserver that has imported the task's module already (torch and the
report stack take seconds to import), or started as fresh interpreters where forking children is
not allowed (a daemonic process, such as a Dask worker).
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from grader import atomic
from grader.batch.process_tree import kill_tree, tree_rss_mib
from grader.limits import Limits
from grader.messages import say

MARKER = "batch.json"  # written last by a finished child; its absence means "not finished"
CRASH_NOTE = "crash.txt"  # the child's own account of an exception in the grader itself
CRASH_EXIT = 70  # EX_SOFTWARE: the grader (not the submission) raised in the child
# What multiprocessing reports when it could not learn a forkserver child's exit status (the status
# pipe hit EOF); the grader's own code never exits with it, so it means "lost", not "the submission".
LOST_EXIT = 255


@dataclass(frozen=True)
class TreeCaps:
    """What one grading process tree may use, enforced by the parent (``tree_caps`` derives them
    from the rubric's limits on the submission's own run).

    Attributes:
        timeout_s: wall-clock seconds from the child's start to its exit (start-up, inference
            and rendering together).
        memory_mib: resident memory of the child and all its descendants, MiB (pages shared
            between them are counted once per process, so this errs on the strict side).
        poll_s: seconds between two memory samples.
    """

    timeout_s: float
    memory_mib: int
    poll_s: float = 0.1


@dataclass(frozen=True)
class LimitMargin:
    """What the grading process may use beyond the rubric's limits on the submission's own run.

    Attributes:
        extra_seconds: seconds for start-up, evaluation and rendering around the inference.
        extra_mib: MiB for the grader itself (data, matplotlib, weasyprint) beside the child.
    """

    extra_seconds: float = 120.0
    extra_mib: int = 2048


def tree_caps(limits: Limits, margin: LimitMargin = LimitMargin()) -> TreeCaps:
    """The caps of one grading process tree: the submission's own limits plus the grader's margin."""
    return TreeCaps(timeout_s=float(limits.wall_seconds) + margin.extra_seconds,
                    memory_mib=int(limits.memory_mb) + margin.extra_mib)


@dataclass(frozen=True)
class Job:
    """One submission to grade, as handed to a child.

    Attributes:
        student: the student id (gradebook key).
        slug: ``student`` as a folder name under OUT.
        submission: the file or folder handed in.
        sha256: content digest of the submission (see ``discover.content_sha256``).
        staging: empty folder the child writes its files into.
        settings: how to grade (data, rubric, language, sandbox, ...), opaque to the pool.
        resume_key: what the finished folder is valid for (see ``resume.resume_key``).
        cpus: cores the child (and the inference child, which sizes its thread pool from its
            affinity) is pinned to, so N parallel children do not oversubscribe the machine;
            None leaves the affinity alone.
    """

    student: str
    slug: str
    submission: Path
    sha256: str
    staging: Path
    settings: Any = None
    resume_key: str = ""
    cpus: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    """How a child ended.

    Attributes:
        status: "ok" (the task finished), "timeout", "memory" or "crashed".
        reason: for anything but "ok", a sentence for the gradebook's error column (a catalogue
            Message, so that a report says it in its language); deterministic (no timings, no
            pids) so a re-run writes the same gradebook.
        wall_s: seconds the child ran.
        peak_mib: the largest resident memory sampled over its process tree, MiB.
        files: for a remote run, the files it wrote (relative path -> bytes); else empty.
        infrastructure: the failure came from the grader's own machinery (a lost exit status, a
            lost Dask worker), not the submission; resume grades such a student again.
    """

    status: str
    reason: str | None = None
    wall_s: float = 0.0
    peak_mib: float = 0.0
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    infrastructure: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


Task = Callable[[Job], dict]


# --- the child side -----------------------------------------------------------------------------


def child_main(task: Task, job: Job, launched_at: float) -> None:
    """Body of every child: run ``task(job)``, then write the ``batch.json`` marker.

    An exception (a bug in the grader, since grading itself never raises for a bad submission)
    is written to ``crash.txt`` and the child exits with ``CRASH_EXIT``.
    """
    _die_with_parent()
    _die_with_batch()
    if job.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, job.cpus)
    started = time.time()
    try:
        timings = dict(task(job) or {})
        report_error = timings.pop("report_error", None)
        timings["startup"] = round(timings.get("startup", 0.0) + max(started - launched_at, 0.0), 3)
        atomic.write_json(job.staging / MARKER, {
            "student": job.student, "sha256": job.sha256, "resume_key": job.resume_key,
            "status": "ok", "reason": None, "timings": timings, "report_error": report_error,
        })
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent as a reason
        note = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            atomic.write_text(job.staging / CRASH_NOTE, note + "\n\n" + traceback.format_exc())
        finally:
            os._exit(CRASH_EXIT)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when its parent dies, so no orphan outlives a killed batch."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _die_with_batch() -> None:
    """In a forkserver child, SIGKILL this child once the batch process that asked for it dies.

    Its parent is the forkserver, which outlives a SIGKILLed batch for as long as any of its
    children holds the forkserver's "alive" pipe, so PR_SET_PDEATHSIG alone would let a killed
    batch's children finish and write into staging folders the resumed batch has just cleaned.
    multiprocessing's parent sentinel becomes readable when the requesting process is gone.
    """
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait as wait_ready

        wait_ready([parent.sentinel])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-batch", daemon=True).start()


def _subprocess_main(job_file: str) -> None:
    """Entry of a child started as a fresh interpreter: the pickled (task, job, time) is our own."""
    with open(job_file, "rb") as f:
        task, job, launched_at = pickle.load(f)
    child_main(task, job, launched_at)


# --- launching ----------------------------------------------------------------------------------


class _Child:
    """A started child: its pid, how to ask whether it has exited (exit code or None), and the exit
    code that means its status was lost (``LOST_EXIT`` for a forkserver child; None for a
    subprocess, whose 255 is a real exit code)."""

    def __init__(self, pid: int, poll: Callable[[], int | None], reap: Callable[[], None],
                 lost_exit: int | None = None):
        self.pid, self.poll, self.reap, self.lost_exit = pid, poll, reap, lost_exit


_forkserver_lock = threading.Lock()
_forkserver_ctx = None
# multiprocessing's Process objects are not thread-safe: Process.start() polls *every* live child
# (process._cleanup), and a forkserver child's poll() reads its exit status from a pipe that holds
# it once. A start in one thread racing the owner's poll in another lets one reader take the status
# and the other hit EOF, which multiprocessing turns into exit code 255 for a child that finished
# fine. Every start, poll and close of a Process therefore happens under this lock.
_process_lock = threading.Lock()


def _forkserver(preload: list[str]):
    """The process-wide forkserver context, preloading ``preload`` the first time it is made."""
    global _forkserver_ctx
    import multiprocessing

    with _forkserver_lock:
        if _forkserver_ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([*preload, __name__])
            _forkserver_ctx = ctx
        return _forkserver_ctx


def can_fork_children() -> bool:
    """Whether this process may start multiprocessing children (a daemonic one may not)."""
    import multiprocessing

    return sys.platform.startswith("linux") and not multiprocessing.current_process().daemon


def launch(task: Task, job: Job) -> _Child:
    """Start ``child_main(task, job)`` in a new process, warm (forkserver) when allowed."""
    launched_at = time.time()
    if can_fork_children():
        # A task may name the heavy modules it needs (``task.preload``) so children start warm.
        process = _forkserver([task.__module__, *getattr(task, "preload", ())]).Process(
            target=child_main, args=(task, job, launched_at), name=f"grade-{job.slug}")
        with _process_lock:
            process.start()

        def poll() -> int | None:
            with _process_lock:
                return process.exitcode

        def reap() -> None:
            with _process_lock:
                process.close()

        return _Child(process.pid, poll, reap, lost_exit=LOST_EXIT)
    job_file = job.staging / ".job.pickle"
    job_file.write_bytes(pickle.dumps((task, job, launched_at)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    popen = subprocess.Popen(
        [sys.executable, "-c", "import sys; from grader.batch.pool import _subprocess_main; "
                               "_subprocess_main(sys.argv[1])", str(job_file)],
        env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    return _Child(popen.pid, popen.poll, lambda: None)


# --- supervising --------------------------------------------------------------------------------


def run_job(task: Task, job: Job, limits: TreeCaps) -> Outcome:
    """Run ``task(job)`` in a child and watch it until it exits or breaks a limit.

    A child whose exit status was lost (an infrastructure failure, see ``LOST_EXIT``) is run once
    more in an emptied staging folder; lost twice, it is a "crashed" Outcome marked
    ``infrastructure`` so that a resumed batch grades it again.

    Returns:
        the Outcome; never raises for anything the child does.
    """
    outcome = _run_once(task, job, limits)
    if outcome.infrastructure:
        shutil.rmtree(job.staging, ignore_errors=True)
        outcome = _run_once(task, job, limits)
    return outcome


def _run_once(task: Task, job: Job, limits: TreeCaps) -> Outcome:
    job.staging.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    child = launch(task, job)
    peak = 0.0
    try:
        while (code := child.poll()) is None:
            elapsed = time.monotonic() - start
            rss = tree_rss_mib(child.pid)
            peak = max(peak, rss)
            # memory first: a child over both caps is reported for the more specific one
            if rss > limits.memory_mib:
                kill_tree(child.pid)
                return Outcome("memory", say("batch.memory", limit=limits.memory_mib), elapsed, peak)
            if elapsed > limits.timeout_s:
                kill_tree(child.pid)
                return Outcome("timeout", say("batch.timeout", limit=f"{limits.timeout_s:g}"), elapsed, peak)
            time.sleep(limits.poll_s)
    except BaseException:
        kill_tree(child.pid)
        raise
    finally:
        _wait_gone(child)
        (job.staging / ".job.pickle").unlink(missing_ok=True)
    wall = time.monotonic() - start
    return _outcome_from_exit(code, job.staging, wall, peak, lost_exit=child.lost_exit)


def _wait_gone(child: _Child) -> None:
    """Reap the child (waiting briefly if it is being killed) so no zombie is left."""
    deadline = time.monotonic() + 5.0
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        child.reap()
    except ValueError:
        pass  # still running after SIGKILL (uninterruptible I/O); the OS reaps it later


def _outcome_from_exit(code: int, staging: Path, wall: float, peak: float,
                       lost_exit: int | None = LOST_EXIT) -> Outcome:
    lost = lost_exit is not None and code == lost_exit
    if (code == 0 or lost) and (staging / MARKER).is_file():
        # The marker is the child's last write: with it, a lost status lost nothing to grade again.
        return Outcome("ok", None, wall, peak)
    if code == CRASH_EXIT and (staging / CRASH_NOTE).is_file():
        first = (staging / CRASH_NOTE).read_text(encoding="utf-8").split("\n\n", 1)[0]
        return Outcome("crashed", say("batch.crashed", error=first), wall, peak)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        key = "batch.killed_oom" if -code == signal.SIGKILL else "batch.killed"
        return Outcome("crashed", say(key, signal=name), wall, peak)
    if lost:
        return Outcome("crashed", say("batch.lost"), wall, peak, infrastructure=True)
    return Outcome("crashed", say("batch.exit_code", code=code), wall, peak)
