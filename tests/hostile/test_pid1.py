"""Hostile children that go after the sandbox's process 1, the one process they did not start.

Process 1 is grader/sandbox/_apply_limits.py --init: it carries every limit the child does, is not
dumpable, and the seccomp filter refuses the calls that reach into another process. The host-side
proof: the run ends as the child decides (process 1 neither stopped nor hijacked), well before the
wall clock.
"""

from __future__ import annotations

import sys

from grader.sandbox import SandboxCaps, run

PY = sys.executable
LIMITS = SandboxCaps(wall_seconds=60, cpu_seconds=30, memory_bytes=1 << 30, max_processes=32)
PWNED = "PWNED"

REACH_PID1 = f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
for name, request in (("attach", 16), ("seize", 0x4206)):
    if libc.ptrace(request, 1, None, None) == 0:
        print("{PWNED} ptrace", name)
    print("ptrace", name, os.strerror(ctypes.get_errno()))
class iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))
buffer = ctypes.create_string_buffer(8)
local = iovec(ctypes.cast(buffer, ctypes.c_void_p), 8)
remote = iovec(0x400000, 8)
if libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) >= 0:
    print("{PWNED} process_vm_readv")
print("process_vm_readv", os.strerror(ctypes.get_errno()))
for mode in ("r+b", "rb"):
    try:
        open("/proc/1/mem", mode)
        print("{PWNED} /proc/1/mem", mode)
    except OSError as exc:
        print("/proc/1/mem", mode, exc.strerror)
open("/proc/self/mem", "r+b").close()  # the control: its own memory is open to it
print("self mem opened")
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
    os.kill(1, sig)  # process 1 of a PID namespace ignores these from inside it
print("pid 1 still", open("/proc/1/stat").read().split()[2])
"""


def test_process_1_cannot_be_traced_read_or_written():
    result = run([PY, "-c", REACH_PID1], limits=LIMITS)
    assert result.ok, (result.reason, result.stderr[-800:])
    out = result.stdout.decode()
    assert PWNED not in out, out
    assert out.splitlines() == [
        "ptrace attach Operation not permitted",
        "ptrace seize Operation not permitted",
        "process_vm_readv Operation not permitted",
        "/proc/1/mem r+b Permission denied",
        "/proc/1/mem rb Permission denied",
        "self mem opened",
        "pid 1 still S",
    ]
    assert result.seconds < LIMITS.wall_seconds / 2  # process 1 was never stopped


# The rows of /proc/PID/limits that the sandbox sets.
LIMIT_ROWS = ("Max cpu time", "Max file size", "Max data size", "Max stack size",
              "Max core file size", "Max processes", "Max open files", "Max address space")

READ_LIMITS = """
import os, resource
def rows(pid):
    return [line for line in open(f"/proc/{pid}/limits").read().splitlines()
            if line.startswith(%r)]
print(os.getpid(), open("/proc/1/cmdline").read().split("\\0")[3:5])
print(rows(1) == rows("self"))
print("\\n".join(rows(1)))
try:
    resource.prlimit(1, resource.RLIMIT_NPROC, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("%s prlimit")
except PermissionError as exc:
    print("prlimit", exc.strerror)
""" % (LIMIT_ROWS, PWNED)


def test_process_1_carries_the_childs_limits():
    result = run([PY, "-c", READ_LIMITS], limits=LIMITS)
    assert result.ok, (result.reason, result.stderr[-800:])
    lines = result.stdout.decode().splitlines()
    pid, cmdline = lines[0].split(" ", 1)
    assert pid == "2"  # process 1 is the limiter, not bubblewrap
    assert "_apply_limits.py" in cmdline and "--init" in cmdline
    assert lines[1] == "True", lines
    rows = {line[:26].strip(): line[26:].split()[:2] for line in lines[2:-1]}
    assert rows["Max data size"] == [str(LIMITS.memory_bytes)] * 2
    assert rows["Max stack size"] == [str(LIMITS.stack_bytes)] * 2
    assert rows["Max cpu time"] == [str(LIMITS.cpu_seconds), str(LIMITS.cpu_seconds + 5)]
    assert rows["Max processes"] == [str(LIMITS.max_processes)] * 2
    assert lines[-1] == "prlimit Operation not permitted"
