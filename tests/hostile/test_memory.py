"""Hostile children that try to hold more memory than their cap in ways RLIMIT_DATA does not count.

Each test watches from outside, as the machine would: a thread here adds up the anonymous and
shared resident memory of every host process whose command line carries the attack's token, and
the peak it saw must stay near the cap.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import uuid

import pytest

from grader.sandbox import SandboxCaps, run

PY = sys.executable
GiB, MiB = 1 << 30, 1 << 20
# What the grading process's sampling lets through between two samples, with room for a busy CI.
MARGIN = 512 * MiB
MAP_GROWSDOWN = 0x100


def caps(memory_bytes: int) -> SandboxCaps:
    return SandboxCaps(wall_seconds=120, cpu_seconds=120, memory_bytes=memory_bytes)


class OutsideView:
    """Samples, every 10 ms, the RssAnon + RssShmem of host processes whose cmdline holds a token."""

    def __init__(self, token: str):
        self.token, self.peak_bytes = token.encode(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak_bytes = max(self.peak_bytes, sum(map(self._held, self._pids())))

    def _pids(self):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    if self.token in file.read():
                        yield pid
            except OSError:
                pass

    @staticmethod
    def _held(pid) -> int:
        try:
            with open(f"/proc/{pid}/status", "rb") as file:
                found = re.findall(rb"^Rss(?:Anon|Shmem):\s+(\d+) kB", file.read(), re.M)
        except OSError:
            return 0
        return sum(map(int, found)) * 1024


def attack(body: str, limits: SandboxCaps, **kwargs):
    """Run ``body`` as a child, watched from outside; (result, peak bytes seen outside)."""
    token = f"memory-attack-{uuid.uuid4().hex}"
    with OutsideView(token) as view:
        result = run([PY, "-c", f"TOKEN = {token!r}\n{body}"], limits=limits, **kwargs)
    return result, view.peak_bytes


def touch(size: str, mapping: str) -> str:
    """Code that writes one byte per page of ``mapping`` (an mmap object), then says HELD."""
    return f"""
for offset in range(0, {size}, 4096):
    {mapping}[offset] = 1
print("HELD", flush=True)
"""


GROWSDOWN_MMAP = f"""
import mmap
try:
    stack = mmap.mmap(-1, 2 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | {MAP_GROWSDOWN})
except OSError as exc:
    raise SystemExit(f"refused: {{exc.strerror}}")
""" + touch("2 << 30", "stack")

GROWSDOWN_CTYPES = f"""
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long)
flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | {MAP_GROWSDOWN}
address = libc.mmap(None, 2 << 30, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
if address in (None, ctypes.c_void_p(-1).value):
    raise SystemExit(f"refused: errno {{ctypes.get_errno()}}")
stack = (ctypes.c_char * (2 << 30)).from_address(address)
for offset in range(0, 2 << 30, 4096):
    stack[offset] = b"x"
print("HELD", flush=True)
"""


@pytest.mark.parametrize("body", [GROWSDOWN_MMAP, GROWSDOWN_CTYPES], ids=["mmap", "ctypes"])
def test_growsdown_mapping_is_refused_in_the_sandbox(body):
    result, peak = attack(body, caps(1 * GiB))
    assert result.reason == "exited with status 1: refused: " + (
        "Operation not permitted" if "import mmap\n" in body[:20] else "errno 1")
    assert b"HELD" not in result.stdout
    assert peak < 1 * GiB


def test_growsdown_mapping_unsandboxed_is_stopped_at_the_cap():
    # No seccomp here: the grading process's sampling is what stops it.
    result, peak = attack(GROWSDOWN_MMAP, caps(1 * GiB), sandbox=False)
    assert result.reason == "memory limit of 1 GiB exceeded"
    assert result.returncode is None and b"HELD" not in result.stdout
    assert peak < 1 * GiB + MARGIN  # seen from outside, every 20 ms: it may miss the last step up
    assert 1 * GiB < result.memory_peak_bytes < 1 * GiB + MARGIN


DEV_ZERO_SHARED = """
import mmap, os
shared = mmap.mmap(os.open("/dev/zero", os.O_RDWR), 1 << 30, flags=mmap.MAP_SHARED)
""" + touch("1 << 30", "shared")

# A second thread moves the main thread's stack (a growsdown mapping) with mremap and grows it;
# the main thread sleeps in a system call and never returns to its old stack.
STACK_MREMAP = """
import ctypes, re, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int)
maps = open("/proc/self/maps").read()
start, end = (int(x, 16) for x in re.search(r"^(\\w+)-(\\w+) .*\\[stack\\]", maps, re.M).groups())
def grab():
    address = libc.mremap(start, end - start, 1 << 30, 1)  # MREMAP_MAYMOVE
    stack = (ctypes.c_char * (1 << 30)).from_address(address)
    for offset in range(0, 1 << 30, 4096):
        stack[offset] = b"x"
    print("HELD", flush=True)
    time.sleep(60)
threading.Thread(target=grab).start()
time.sleep(60)
"""

# Eight processes, each well inside RLIMIT_DATA, together far over the cap.
FORKED_HOLDERS = """
import os, time
for _ in range(8):
    if os.fork() == 0:
        block = bytearray(b"x") * (96 << 20)
        print("HELD", flush=True)
        time.sleep(60)
time.sleep(60)
"""


@pytest.mark.parametrize("body", [DEV_ZERO_SHARED, STACK_MREMAP, FORKED_HOLDERS],
                         ids=["dev-zero-shared", "stack-mremap", "forked-holders"])
def test_memory_rlimit_data_misses_is_stopped_at_the_cap(body):
    cap = 256 * MiB
    result, peak = attack(body, caps(cap))
    assert peak < cap + MARGIN  # the machine never held more than the cap and a sample's growth
    if result.reason == "killed by signal SIGSEGV":  # the moved stack faulted before a sample caught it
        assert body is STACK_MREMAP and b"HELD" not in result.stdout
        return
    assert result.reason == "memory limit of 256 MiB exceeded", result.stderr[-500:]
    assert cap < result.memory_peak_bytes < cap + MARGIN


def test_pages_a_fork_shares_count_once():
    # 160 MiB held, then forked: resident sizes add up to 320 MiB, the machine holds 160 MiB.
    body = """
import os, time
block = bytearray(b"x") * (160 << 20)
if os.fork() == 0:
    time.sleep(1)
    os._exit(0)
os.wait()
print("done")
"""
    result, _ = attack(body, caps(256 * MiB))
    assert result.ok, (result.reason, result.stderr[-500:])
    assert 160 * MiB < result.memory_peak_bytes < 256 * MiB


@pytest.mark.parametrize("sandbox", [True, False])
def test_stack_limit_cannot_be_raised(sandbox):
    body = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
print(soft, hard, flush=True)
resource.setrlimit(resource.RLIMIT_STACK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
"""
    result, _ = attack(body, caps(1 * GiB), sandbox=sandbox)
    assert result.stdout.split() == [b"8388608", b"8388608"]
    assert b"not allowed to raise maximum limit" in result.stderr


def test_torch_and_numpy_run_under_the_stack_and_address_space_limits():
    body = """
import numpy, torch
torch.set_num_threads(4)
x = torch.randn(8, 3, 32, 32)
print(torch.nn.Conv2d(3, 16, 3)(x).shape[1], int(numpy.ones(1000).sum()))
"""
    result, _ = attack(body, caps(1 * GiB))
    assert result.ok, result.stderr[-500:]
    assert result.stdout.split() == [b"16", b"1000"]


def test_a_process_that_ends_while_its_shares_are_read_counts_nothing(monkeypatch):
    """Two processes hold 160 MiB between them, shared by a fork, over a 256 MiB cap by their
    resident sizes; the child ends before its share is read. It must count as gone, not as its
    160 MiB again (which stopped honest runs whose forked workers exited)."""
    from grader.sandbox import memory

    parent, child = 100, 101
    alive = {parent, child}
    monkeypatch.setattr(memory, "process_tree", lambda root: [parent, child])
    monkeypatch.setattr(memory, "resident_bytes", lambda pid: 160 * MiB if pid in alive else 0)

    def proportional(pid):
        if pid == parent:
            alive.discard(child)  # the child exits just after the parent's share is read
            return 160 * MiB      # its pages are the parent's alone now
        return None if pid not in alive else 80 * MiB

    monkeypatch.setattr(memory, "proportional_bytes", proportional)
    assert memory.tree_bytes(parent, 256 * MiB) == 160 * MiB
    alive.add(child)  # a share that cannot be read for another reason: its resident size counts
    monkeypatch.setattr(memory, "proportional_bytes", lambda pid: None)
    assert memory.tree_bytes(parent, 256 * MiB) == 320 * MiB
