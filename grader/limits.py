"""What one submission may use: the one user-facing ``Limits`` (a rubric's ``[limits]``), its
defaults and floors, and the byte units every cap is written in.

The caps that enforce it are derived from it, each named for where it applies:
``grader.sandbox.SandboxCaps`` (one sandboxed child, from ``runner.launch.sandbox_caps``) and
``grader.batch.pool.TreeCaps`` (a batch worker's whole process tree, from ``pool.tree_caps``).
"""

from __future__ import annotations

from dataclasses import dataclass

TiB = 1 << 40
GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Resources one submission's run may use: loading the network and inference.

    Attributes:
        wall_seconds: wall-clock seconds before the child is killed.
        memory_mb: memory cap of the child, MiB.
    """

    wall_seconds: float = 300.0
    memory_mb: int = 4096


LIMIT_KEYS = ("wall_seconds", "memory_mb")
# Below these no submission can be graded: the child alone (Python, torch imported, the test
# images) needs about 2 s and, for the homework net, more than 768 MiB (measured: 768 failed, 1024 ran).
LIMIT_FLOORS = {"wall_seconds": 10, "memory_mb": 1024}
LIMIT_HINTS = {"wall_seconds": "starting the grading child (importing torch) alone takes about 2 s; "
                               f"{Limits.wall_seconds:g} is the default",
               "memory_mb": f"the grading child needs about 1 GiB with torch imported; {Limits.memory_mb} is the default"}


def format_bytes(n: int) -> str:
    """1073741824 -> '1 GiB', 1536 -> '1.5 KiB': limits read back in reasons."""
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"
