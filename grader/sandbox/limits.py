"""What a sandboxed child may use (its caps), and what came back from it."""

from __future__ import annotations

from dataclasses import dataclass

from grader.limits import Limits, MiB


@dataclass(frozen=True)
class SandboxCaps:
    """Resource caps for one child. Every field carries its unit in its name; the wall clock and
    memory default to the user-facing ``grader.limits.Limits``.

    memory_bytes caps RLIMIT_DATA (private writable memory: heap, anonymous mmaps, tensors), not
    RLIMIT_AS: a CUDA build of torch reserves tens of GiB of address space it never touches, so an
    address-space cap that lets CUDA start would not limit memory at all (see docs/sandbox.md).
    The seccomp filter closes the two ways around RLIMIT_DATA (shared anonymous mmaps, memfd).
    """

    wall_seconds: float = Limits.wall_seconds
    cpu_seconds: int = 600
    memory_bytes: int = Limits.memory_mb * MiB
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
    """

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    reason: str | None
    seconds: float
    sandboxed: bool = True

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.reason is None
