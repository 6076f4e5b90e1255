"""The memory a sandboxed child holds, measured from outside while it runs.

RLIMIT_DATA caps each process's private writable mappings, but not memory the kernel books
elsewhere: a ``MAP_GROWSDOWN`` mapping, the main thread's stack moved and grown with ``mremap``,
a ``MAP_SHARED`` mapping of ``/dev/zero``, or the same cap again in every forked process. So the
grading process also adds up, every ``SAMPLE_SECONDS``, the anonymous and shared resident memory
(``RssAnon + RssShmem``; ``VmRSS`` would also count the shared libraries, which cost the machine
nothing per child) of every process in the child's tree, and stops the run above the cap.

When several processes are over the cap together, the sum is taken again from their proportional
shares (``Pss_Anon + Pss_Shmem``), so that pages a ``fork`` left shared count once.
"""

from __future__ import annotations

import os
import re
import time

SAMPLE_SECONDS = 0.05  # between two samples; a child touching memory at 4 GB/s gains 200 MB in one
_STATUS = re.compile(rb"^(?:RssAnon|RssShmem):\s+(\d+) kB", re.M)
_ROLLUP = re.compile(rb"^(?:Pss_Anon|Pss_Shmem):\s+(\d+) kB", re.M)
KiB = 1024


def children(pid: int) -> list[int]:
    """The children of process ``pid`` (of every thread of it); [] once it is gone."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as file:
                found += map(int, file.read().split())
    except OSError:  # it (or one of its threads) ended while being read
        pass
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, parents before their children."""
    tree, index = [root], 0
    while index < len(tree):
        tree += children(tree[index])
        index += 1
    return tree


def resident_bytes(pid: int) -> int:
    """Anonymous + shared resident memory of ``pid`` (``/proc/PID/status``); 0 once it is gone."""
    return _kib_sum(f"/proc/{pid}/status", _STATUS) or 0


def proportional_bytes(pid: int) -> int | None:
    """Its proportional share of the same (``/proc/PID/smaps_rollup``); None where unreadable."""
    return _kib_sum(f"/proc/{pid}/smaps_rollup", _ROLLUP)


def _kib_sum(path: str, pattern: re.Pattern) -> int | None:
    try:
        with open(path, "rb") as file:
            fields = pattern.findall(file.read())
    except OSError:
        return None
    return sum(map(int, fields)) * KiB if fields else None


def tree_bytes(root: int, cap_bytes: int) -> int:
    """What the tree under ``root`` holds: the resident sum, or the proportional one when several
    processes together pass ``cap_bytes`` (the lower of the two is the truer)."""
    sizes = {pid: resident_bytes(pid) for pid in process_tree(root)}
    total = sum(sizes.values())
    if total <= cap_bytes or sum(1 for size in sizes.values() if size) < 2:
        return total
    return sum(_share(pid) for pid in sizes)


def _share(pid: int) -> int:
    """The proportional share of ``pid``; where it cannot be read, its resident size read again
    now: 0 for a process that ended since the first reading. Counting such a process at its
    first, full size would count the pages it shared twice and stop an honest child whose
    worker (a DataLoader's) exits; this way one sample may count them at half a share instead,
    and the next, 50 ms later, counts them in full again."""
    share = proportional_bytes(pid)
    return resident_bytes(pid) if share is None else share


class MemoryWatch:
    """Samples a process tree's memory at most every ``interval`` seconds.

    Attributes:
        peak_bytes: the largest sample so far.
    """

    def __init__(self, root: int, cap_bytes: int, interval: float = SAMPLE_SECONDS):
        self.root, self.cap_bytes, self.interval = root, cap_bytes, interval
        self.peak_bytes = 0
        self._due = time.monotonic()

    def seconds_to_next(self) -> float:
        """How long a caller may block before the next sample is due."""
        return max(self._due - time.monotonic(), 0.0)

    def over_cap(self) -> bool:
        """Take a sample if one is due; whether the tree holds more than the cap."""
        now = time.monotonic()
        if now < self._due:
            return False
        self._due = now + self.interval
        held = tree_bytes(self.root, self.cap_bytes)
        self.peak_bytes = max(self.peak_bytes, held)
        return held > self.cap_bytes
