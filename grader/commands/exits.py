"""Exit codes of every `grader` command, defined once."""

from __future__ import annotations

import enum

from grader.results import GradeResult


class Exit(enum.IntEnum):
    """What a script reads from `grader`'s exit status."""

    OK = 0  # success; for grade/check: every check passed
    FAILED = 1  # a rubric check failed (never a crash: a script must not read a bug as a failed check)
    INPUT = 2  # a usage or input error, an ungradable hand-in, or the machine's (full disk, no permission)
    BUG = 3  # grader itself failed: the traceback is printed
    INTERRUPTED = 130  # the shell's convention for Ctrl-C


HELP = "Exit codes: 0 success, 1 rubric failed, 2 usage or input error, 3 grader bug, 130 interrupted."
CHECK_HELP = HELP + (" For check: 0 READY (every public check passes), 1 NOT READY (a check fails), 2 not "
                     "graded (the hand-in must be fixed first).")


def exit_for(result: GradeResult) -> Exit:
    """OK when every check passed, FAILED when one failed, INPUT when the hand-in was not graded."""
    if not result.graded:
        return Exit.INPUT
    return Exit.OK if result.passed else Exit.FAILED
