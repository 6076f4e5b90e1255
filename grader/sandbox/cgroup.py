"""A cgroup v2 memory limit for one sandbox, where the machine delegates one to this process.

The kernel's own accounting is the only one that also counts what no process maps: files on the
sandbox's tmpfs, pipe buffers, kernel memory. It needs a cgroup v2 directory in which the memory
controller is enabled for children (``memory`` in its ``cgroup.subtree_control``) and which this
process may write to: this process's own cgroup (only when it is a hierarchy's root), or its
parent (a delegated cgroup whose processes live in a leaf, as systemd's ``Delegate=yes`` asks).
Anywhere else (cgroup v1, no delegation) ``create`` returns None and the other layers stand alone.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from grader.sandbox.memory import children

_names = itertools.count()


def locate(mountinfo: str, proc_cgroup: str) -> tuple[Path, Path] | None:
    """This process's cgroup v2 directory and the mount it lies under, from ``/proc/self/mountinfo``
    and ``/proc/self/cgroup``; None without a cgroup v2 mount that shows it."""
    own = next((line[3:] for line in proc_cgroup.splitlines() if line.startswith("0::")), None)
    if own is None:
        return None
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        fields = fields.split()
        if after.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            root, mount = fields[3], fields[4]
            relative = os.path.relpath(own, root)
            if not relative.startswith(".."):
                return Path(os.path.normpath(os.path.join(mount, relative))), Path(mount)
    return None


def delegated_parent(own: Path, mount: Path) -> Path | None:
    """Where child cgroups with a memory limit can be made: ``own`` or its parent (never above
    ``mount``), else None."""
    for candidate in [own] + ([own.parent] if own != mount else []):
        try:
            enabled = (candidate / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        if "memory" in enabled and os.access(candidate, os.W_OK):
            return candidate
    return None


def _parent() -> Path | None:
    try:
        found = locate(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())
    except OSError:
        return None
    return delegated_parent(*found) if found else None


class MemoryCgroup:
    """One child cgroup capped at ``cap_bytes`` (no swap; an OOM kills every process in it)."""

    def __init__(self, path: Path, cap_bytes: int):
        self.path = path
        path.mkdir()
        try:
            (path / "memory.max").write_text(str(cap_bytes))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if (path / name).exists():
                    (path / name).write_text(value)
        except OSError:
            self.remove()
            raise

    def adopt(self, root: int) -> None:
        """Move ``root`` and its descendants in, each before its children are listed: a process
        forked meanwhile is either listed or born inside."""
        pending = [root]
        while pending:
            pid = pending.pop()
            try:
                (self.path / "cgroup.procs").write_text(str(pid))
            except OSError:  # it exited meanwhile
                continue
            pending += children(pid)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process here for going over ``memory.max``."""
        try:
            events = (self.path / "memory.events").read_text().split()
        except OSError:
            return False
        counts = dict(zip(events[::2], events[1::2]))
        return int(counts.get("oom_kill", 0)) > 0 or int(counts.get("oom_group_kill", 0)) > 0

    def remove(self, wait_seconds: float = 2.0) -> None:
        """Kill what is left inside and remove the cgroup (its processes die asynchronously)."""
        try:
            (self.path / "cgroup.kill").write_text("1")
        except OSError:
            pass
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return  # left for the machine's owner; named grader-sandbox-*
                time.sleep(0.02)


def create(cap_bytes: int, parent: Path | None = None) -> MemoryCgroup | None:
    """A fresh memory-capped cgroup under the delegated parent; None where there is none."""
    parent = parent or _parent()
    if parent is None:
        return None
    try:
        return MemoryCgroup(parent / f"grader-sandbox-{os.getpid()}-{next(_names)}", cap_bytes)
    except OSError:
        return None
