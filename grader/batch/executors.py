"""Run many jobs under limits, each through ``pool.run_job``: here or on a Dask cluster.

    LocalExecutor(workers).run(task, jobs, limits)   N children at a time on this machine
    DaskExecutor(address).run(task, jobs, limits)    the same on a dask.distributed cluster

Both yield (job, Outcome) pairs in completion order. A remote Outcome carries the files its child
wrote; ``materialise`` writes them into the local staging folder.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

from grader import atomic
from grader.batch.pool import Job, Outcome, Task, TreeCaps, run_job
from grader.errors import GraderError
from grader.messages import say


def cpu_slots(workers: int) -> list[tuple[int, ...] | None]:
    """One set of cores per worker: the available cores split evenly (one each, shared round-robin,
    when there are more workers than cores); [None] * workers where affinity is not supported."""
    if not hasattr(os, "sched_getaffinity"):
        return [None] * workers
    cores = sorted(os.sched_getaffinity(0))
    if workers >= len(cores):
        return [(cores[i % len(cores)],) for i in range(workers)]
    share, extra = divmod(len(cores), workers)
    slots, start = [], 0
    for i in range(workers):
        size = share + (1 if i < extra else 0)
        slots.append(tuple(cores[start:start + size]))
        start += size
    return slots


class LocalExecutor:
    """``workers`` children at a time on this machine; results in completion order."""

    def __init__(self, workers: int):
        if workers < 1:
            raise GraderError(f"--jobs must be at least 1, got {workers}")
        self.workers = workers

    def run(self, task: Task, jobs: Iterable[Job], limits: TreeCaps) -> Iterator[tuple[Job, Outcome]]:
        jobs = list(jobs)
        slots: queue.SimpleQueue = queue.SimpleQueue()
        for cpus in cpu_slots(self.workers):
            slots.put(cpus)

        def pinned(job: Job) -> Outcome:
            cpus = slots.get()
            try:
                return run_job(task, replace(job, cpus=cpus), limits)
            finally:
                slots.put(cpus)

        # Threads only wait on children; the grading itself happens in the child processes.
        with ThreadPoolExecutor(self.workers, thread_name_prefix="grade") as pool:
            pending = {pool.submit(pinned, job): job for job in jobs}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield pending.pop(future), future.result()
            finally:
                for future in pending:
                    future.cancel()


def run_remote(task: Task, job: Job, files: dict[str, bytes], limits: TreeCaps) -> Outcome:
    """Grade on a Dask worker: rebuild the submission from ``files`` in a temporary folder, run the
    job there, and return the Outcome with every file the child wrote (so OUT needs no shared disk).
    """
    with tempfile.TemporaryDirectory(prefix="grader-remote-") as tmp:
        root = Path(tmp)
        submission = root / "in" / job.submission.name
        for rel, data in files.items():
            target = submission / rel if rel else submission
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if not files:
            submission.mkdir(parents=True)
        local = replace(job, submission=submission, staging=root / "out")
        outcome = run_job(task, local, limits)
        written = {p.relative_to(local.staging).as_posix(): p.read_bytes()
                   for p in sorted(local.staging.rglob("*")) if p.is_file() and p.name != ".job.pickle"}
        return replace(outcome, files=written)


def read_submission_files(path: Path) -> dict[str, bytes]:
    """A submission's files as relative path -> bytes ('' for a single-file submission)."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


class DaskExecutor:
    """Send each job to a dask.distributed cluster; its workers need ``grader`` and the data."""

    def __init__(self, address: str | None = None, *, client=None):
        try:
            from dask.distributed import Client
        except ImportError as exc:
            raise GraderError(f"--executor dask needs dask.distributed ({exc})",
                              "pip install 'cifar10-grader[dask]'") from None
        if client is None and not address:
            raise GraderError("--executor dask needs --scheduler ADDRESS",
                              "start one with `dask scheduler` and pass e.g. --scheduler tcp://host:8786")
        try:
            self.client = client or Client(address, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise GraderError(f"cannot reach the Dask scheduler at {address} ({exc})",
                              "check the address and that `dask scheduler` is running there") from None
        self._own_client = client is None

    def run(self, task: Task, jobs: Iterable[Job], limits: TreeCaps) -> Iterator[tuple[Job, Outcome]]:
        from dask.distributed import as_completed

        futures = {}
        for job in jobs:
            future = self.client.submit(run_remote, task, job, read_submission_files(job.submission), limits,
                                        pure=False, key=f"grade-{job.slug}-{job.resume_key[:12]}")
            futures[future] = job
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker becomes a row, not a crash
                    outcome = Outcome("crashed", say("batch.worker_failed", error=f"{type(exc).__name__}: {exc}"),
                                      infrastructure=True)
                yield job, outcome
        finally:
            for future in futures:
                future.cancel()
            if self._own_client:
                self.client.close()


def materialise(outcome: Outcome, staging: Path) -> None:
    """Write a remote Outcome's files into the local ``staging`` folder."""
    for rel, data in outcome.files.items():
        atomic.write_bytes(staging / rel, data)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
