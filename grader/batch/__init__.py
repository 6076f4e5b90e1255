"""Grade a whole class: a pool of child processes (or a Dask cluster), resumable, then the
gradebook, the Gradescope files and the class report.

    batch_command(...)        `grader batch`
    check_command(...)        `grader check` (a student's self-check: public checks only)
    gradescope_command(...)   `grader gradescope` (run as a Gradescope autograder)
"""

from __future__ import annotations


def __getattr__(name: str):
    # The commands pull in rich and the grading stack; importing grader.batch stays cheap.
    if name in ("batch_command", "check_command", "gradescope_command", "run_batch"):
        from grader.batch import commands

        return getattr(commands, name)
    raise AttributeError(f"module 'grader.batch' has no attribute {name!r}")


__all__ = ["batch_command", "check_command", "gradescope_command", "run_batch"]
