"""Start one child (sandboxed or not), feed stdin, capture capped output, enforce the wall clock
and the memory cap."""

from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.limits import format_bytes
from grader.messages import say
from grader.sandbox import bwrap, cgroup, seccomp
from grader.sandbox.limits import RunResult, SandboxCaps
from grader.sandbox.memory import MemoryWatch
from grader.sandbox.messages import LENGTH, complete_messages

APPLY_LIMITS = Path(__file__).with_name("_apply_limits.py")
_CHUNK = 1 << 16
# How the child's stderr reads when a limit refused it something (Python, torch/c10, libstdc++).
_MEMORY_SIGNS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc",
                 b"DefaultCPUAllocator: can't allocate")
_FILE_SIZE_SIGNS = (b"File too large",)


# Called with each whole message the child writes; returns the next request's bytes (a whole
# message), or None to close the child's stdin and let it finish.
FollowUp = Callable[[bytes], "bytes | None"]


def run(argv: Sequence[str], *, stdin: bytes = b"", readonly: Sequence[Path] = (),
        limits: SandboxCaps = SandboxCaps(), sandbox: bool = True,
        follow_up: FollowUp | None = None) -> RunResult:
    """Run ``argv`` as an untrusted child and return what it did.

    With ``sandbox=True`` the child runs under bubblewrap (see grader.sandbox.bwrap) with the
    seccomp filter; with ``sandbox=False`` it runs directly, in a scratch cwd/HOME, with the same
    environment, rlimits (but RLIMIT_NPROC), memory sampling and wall clock. Callers must then
    say loudly, in their output and report, that the submission ran unsandboxed.

    Args:
        argv: the command, e.g. ``[sys.executable, "-m", "grader.runner.child", ...]``.
        stdin: bytes written to the child's standard input, then closed (unless ``follow_up``).
        readonly: host paths the child may read (bound read-only at the same path).
        limits: resource caps.
        sandbox: False only when the user asked for --no-sandbox.
        follow_up: hold a conversation (``grader.sandbox.messages``): called with each whole
            message the child writes to stdout, it returns the next request to write to the
            child's stdin, or None to close it. The caps hold for the whole conversation.
    Returns:
        RunResult; a limit that ended the run is named in ``reason``. Never raises for anything
        the child did.
    Raises:
        GraderError: bubblewrap is missing or unusable, or a ``readonly`` path is missing.
    """
    # In the sandbox, _apply_limits.py stays on as process 1 (bwrap --as-pid-1) and runs argv.
    command = [sys.executable, "-I", "-S", str(APPLY_LIMITS), *(["--init"] if sandbox else []),
               _rlimit_spec(limits, sandbox), "--", *argv]
    if not sandbox:
        with tempfile.TemporaryDirectory(prefix="grader-unsandboxed-") as scratch:
            return _supervise(command, stdin, limits, cwd=scratch, env=bwrap.child_env(scratch),
                              pass_fds=(), sandboxed=False, follow_up=follow_up)
    bwrap.check_available()
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryDirectory(prefix="grader-staging-") as staging, \
            tempfile.TemporaryDirectory(prefix="grader-shown-") as copies:
        try:
            os.write(write_fd, seccomp.build_filter())  # a few hundred bytes: fits a pipe buffer
            os.close(write_fd)
            write_fd = -1
            shown = bwrap.readable_copies(readonly, Path(copies))
            prefix = bwrap.bwrap_argv(readonly=shown, limits=limits, seccomp_fd=read_fd,
                                      staging=Path(staging))
            return _supervise(prefix + command, stdin, limits, cwd="/", env={"PATH": os.defpath},
                              pass_fds=(read_fd,), sandboxed=True, follow_up=follow_up)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)


def _rlimit_spec(limits: SandboxCaps, sandbox: bool) -> str:
    """``NAME=SOFT:HARD,...`` for _apply_limits.py.

    The CPU soft limit sends SIGXCPU, the hard one (5 s later) SIGKILL for a child that catches it
    (process 1 of the sandbox ignores SIGXCPU: the hard limit ends it). RLIMIT_NPROC counts every
    process of the uid; outside a user namespace that would be the grader's own user, so it is
    applied only in the sandbox. Every other soft limit equals its hard one: none can be raised.
    """
    address_space = limits.memory_bytes + limits.address_space_slack_bytes
    spec = {"CPU": (limits.cpu_seconds, limits.cpu_seconds + 5),
            "DATA": (limits.memory_bytes, limits.memory_bytes),
            "STACK": (limits.stack_bytes, limits.stack_bytes),
            "AS": (address_space, address_space),
            "FSIZE": (limits.file_size_bytes, limits.file_size_bytes),
            "NOFILE": (limits.open_files, limits.open_files),
            "CORE": (0, 0)}
    if sandbox:
        spec["NPROC"] = (limits.max_processes, limits.max_processes)
    return ",".join(f"{name}={soft}:{hard}" for name, (soft, hard) in spec.items())


def _supervise(command, stdin, limits, *, cwd, env, pass_fds, sandboxed, follow_up=None) -> RunResult:
    start = time.monotonic()
    group = cgroup.create(limits.memory_bytes)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=env, pass_fds=pass_fds,
                                start_new_session=True)  # its own process group, killed as one
        if group is not None:
            group.adopt(proc.pid)
        watch = MemoryWatch(proc.pid, limits.memory_bytes)
        try:
            stdout, stderr_tail, stopped = _pump(proc, stdin, limits, watch, deadline=start + limits.wall_seconds,
                                                 follow_up=follow_up)
        except BaseException:  # e.g. KeyboardInterrupt in the grader: the child goes too
            _kill(proc)
            proc.wait()
            raise
        if stopped:
            _kill(proc)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        if stopped is None and group is not None and group.oom_killed():
            stopped = "memory"  # the kernel killed inside; the run's exit tells no more
    finally:
        if group is not None:
            group.remove()
    proc.returncode = os.waitstatus_to_exitcode(status)
    returncode = None if stopped else proc.returncode
    if sandboxed and returncode is not None and returncode > 128:
        returncode = -(returncode - 128)  # bwrap reports a signal death as 128 + N, like a shell
    cpu = usage.ru_utime + usage.ru_stime
    reason = _reason(stopped, returncode, stderr_tail, cpu, limits)
    return RunResult(returncode=returncode, stdout=stdout, stderr=stderr_tail,
                     timed_out=stopped == "wall", reason=reason, seconds=seconds,
                     sandboxed=sandboxed, memory_peak_bytes=watch.peak_bytes)


def _pump(proc, stdin: bytes, limits: SandboxCaps, watch: MemoryWatch, *, deadline: float,
          follow_up: FollowUp | None = None):
    """Write stdin and read stdout/stderr until both close and the child exits, or a limit stops
    it: the deadline, the output cap, or the memory cap (sampled between reads).

    Returns (stdout, stderr tail, None | "wall" | "output" | "memory").
    """
    stdout, stderr = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    feed = _Feed(proc.stdin, sel, stdin, follow_up, most=limits.output_bytes)
    try:
        while any(key.events == selectors.EVENT_READ for key in sel.get_map().values()):
            if watch.over_cap():
                return bytes(stdout), bytes(stderr), "memory"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(stdout), bytes(stderr), "wall"
            for key, _ in sel.select(timeout=min(remaining, watch.seconds_to_next())):
                if key.fileobj is proc.stdin:
                    feed.write()
                    continue
                data = os.read(key.fileobj.fileno(), _CHUNK)
                if not data:
                    sel.unregister(key.fileobj)
                elif key.fileobj is proc.stdout:
                    stdout += data
                    if len(stdout) > limits.output_bytes:
                        return bytes(stdout[:limits.output_bytes]), bytes(stderr), "output"
                    feed.answer(stdout)
                else:
                    stderr += data
                    del stderr[:-limits.stderr_tail_bytes]
        return bytes(stdout), bytes(stderr), _wait_exit(proc, watch, deadline)
    finally:
        sel.close()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                stream.close()


class _Feed:
    """The child's stdin: the first request, then (in a conversation) each answer that
    ``follow_up`` gives to a message of the child's, until it gives None and stdin closes, or
    the child starts a message longer than ``most`` (the output cap), which could never end."""

    def __init__(self, pipe, sel, first: bytes, follow_up: FollowUp | None, most: int):
        self.pipe, self.sel, self.follow_up, self.most = pipe, sel, follow_up, most
        self.pending, self.closing, self.seen = bytearray(first), follow_up is None, 0
        if not first and self.closing:
            pipe.close()
            return
        os.set_blocking(pipe.fileno(), False)
        if first:
            sel.register(pipe, selectors.EVENT_WRITE)

    def write(self) -> None:
        try:
            written = os.write(self.pipe.fileno(), self.pending[:_CHUNK])
        except BrokenPipeError:  # the child stopped reading; its exit tells why
            written, self.closing = len(self.pending), True
        del self.pending[:written]
        if not self.pending:
            self.sel.unregister(self.pipe)
            if self.closing:
                self.pipe.close()

    def answer(self, stdout: bytearray) -> None:
        """Hand each newly completed message of ``stdout`` to ``follow_up``, queue what it says."""
        if self.follow_up is None or self.closing:  # said None: what the child writes is not read
            return
        found, self.seen = complete_messages(stdout, self.seen)
        for payload in found:
            more = None if self.closing else self.follow_up(payload)
            if more is None:
                self.closing = True
            elif more:
                if not self.pending:
                    self.sel.register(self.pipe, selectors.EVENT_WRITE)
                self.pending += more
        if len(stdout) - self.seen >= LENGTH.size and LENGTH.unpack_from(stdout, self.seen)[0] > self.most:
            self.closing = True  # a message longer than the output cap never ends: ask nothing more
        if self.closing and not self.pending:
            self.pipe.close()


def _wait_exit(proc, watch: MemoryWatch, deadline: float):
    """With its output closed, wait for the child's exit under the wall clock and the memory cap
    (a pidfd turns readable when the process exits: no polling, and no reaping it here).

    Returns None | "wall" | "memory".
    """
    pidfd = os.pidfd_open(proc.pid)
    try:
        while True:
            if watch.over_cap():
                return "memory"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "wall"
            ready, _, _ = select.select([pidfd], [], [], min(remaining, watch.seconds_to_next()))
            if ready:
                return None
    finally:
        os.close(pidfd)


def _kill(proc) -> None:
    """SIGKILL the child's process group; in the sandbox, bwrap's death ends its PID namespace."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reason(stopped, returncode, stderr_tail: bytes, cpu_seconds: float, limits: SandboxCaps):
    """Why the run ended, as a student reads it (a catalogue message); None for a clean exit."""
    if stopped == "output":
        return say("sandbox.output", size=format_bytes(limits.output_bytes))
    if stopped == "wall":
        return say("sandbox.wall", seconds=f"{limits.wall_seconds:g}")
    if stopped == "memory":
        return say("sandbox.memory", size=format_bytes(limits.memory_bytes))
    if returncode == 0:
        return None
    # SIGXCPU comes from the soft CPU limit; SIGKILL from the hard one (if SIGXCPU was caught).
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL
                                         and cpu_seconds >= limits.cpu_seconds):
        return say("sandbox.cpu", seconds=limits.cpu_seconds)
    if any(sign in stderr_tail for sign in _MEMORY_SIGNS):
        return say("sandbox.memory", size=format_bytes(limits.memory_bytes))
    if any(sign in stderr_tail for sign in _FILE_SIZE_SIGNS):
        return say("sandbox.file_size", size=format_bytes(limits.file_size_bytes))
    if returncode < 0:
        return say("sandbox.signal", signal=signal.Signals(-returncode).name)
    last = stderr_tail.decode(errors="replace").strip().splitlines()[-1:] or [""]
    if last[0]:
        return say("sandbox.exit_said", status=returncode, said=last[0][:200])
    return say("sandbox.exit", status=returncode)
