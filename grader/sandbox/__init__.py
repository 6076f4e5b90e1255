"""Run untrusted submission code in a child process that cannot harm, cheat or stall the grader.

    from grader.sandbox import SandboxCaps, RunResult, run, check_available

See docs/sandbox.md for what the child can and cannot see, and the limits it runs under.
"""

from grader.sandbox.bwrap import check_available
from grader.sandbox.limits import RunResult, SandboxCaps
from grader.sandbox.process import run

__all__ = ["SandboxCaps", "RunResult", "run", "check_available"]
