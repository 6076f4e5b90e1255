"""What a sandboxed child may use (its caps), and what came back from it."""

from __future__ import annotations

from dataclasses import dataclass

from grader.limits import GiB, Limits, MiB


@dataclass(frozen=True)
class SandboxCaps:
    """Resource caps for one child. Every field carries its unit in its name; the wall clock and
    memory default to the user-facing ``grader.limits.Limits``.

    memory_bytes is the cap on the whole sandbox's memory, enforced in layers (docs/sandbox.md):
    RLIMIT_DATA of each process (private writable memory: heap, anonymous mmaps, tensors); the
    grading process's sampling of the anonymous and shared resident memory of every process in
    the sandbox, which stops the run above it; a cgroup v2 ``memory.max`` where one is delegated.
    stack_bytes is RLIMIT_STACK, soft and hard: the main thread's stack, and glibc's default for
    every other thread's, whose stacks count against RLIMIT_DATA (torch starts one per core).
    address_space_slack_bytes: RLIMIT_AS is memory_bytes plus this, a last stop per process,
    wide enough for what importing torch reserves and never touches (3.4 GiB, more per thread).
    """

    wall_seconds: float = Limits.wall_seconds
    cpu_seconds: int = 600
    memory_bytes: int = Limits.memory_mb * MiB
    stack_bytes: int = 8 * MiB
    address_space_slack_bytes: int = 8 * GiB
    max_processes: int = 64
    file_size_bytes: int = 256 * MiB
    open_files: int = 256
    output_bytes: int = 64 * MiB
    stderr_tail_bytes: int = 64 * 1024
    tmpfs_bytes: int = 256 * MiB

    def __post_init__(self):
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"SandboxCaps.{name} must be positive, got {value!r}")


@dataclass
class RunResult:
    """What one child run produced.

    Attributes:
        returncode: the child's exit status; negative -N when signal N ended it; None when the
            parent killed it before it exited (wall clock, output cap).
        stdout: captured standard output, at most SandboxCaps.output_bytes.
        stderr: the last SandboxCaps.stderr_tail_bytes of standard error.
        timed_out: True when the wall-clock limit killed it.
        reason: why the run failed, in words for a gradebook row (None when it exited 0).
        seconds: wall-clock time from start to reaping, parent side.
        sandboxed: False when it ran with sandbox=False (callers must say so loudly).
        memory_peak_bytes: the most anonymous + shared resident memory the parent's sampling saw
            the child's processes hold together (bytes; a lower bound of the true peak).
    """

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    reason: str | None
    seconds: float
    sandboxed: bool = True
    memory_peak_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.reason is None
