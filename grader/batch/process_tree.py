"""Helpers about a process and its descendants, read from /proc (Linux), and one that kills them.

    descendants(pid) -> [pid, ...]     pid and every process below it, parents first
    tree_rss_mib(pid) -> float         resident memory of that tree, MiB
    kill_tree(pid)                     SIGKILL the whole tree
"""

from __future__ import annotations

import os
import signal


def _process_table() -> dict[int, int]:
    """pid -> parent pid for every visible process (from /proc)."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces or ')'; the fields after the last ')' are fixed.
        fields = stat[stat.rfind(b")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, parents before children."""
    children: dict[int, list[int]] = {}
    for child, parent in _process_table().items():
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MiB (0 where /proc is unavailable)."""
    if not os.path.isdir("/proc"):
        return 0.0
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and all its descendants (collected first, so none is reparented away)."""
    for p in (descendants(pid) if os.path.isdir("/proc") else [pid]):
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
