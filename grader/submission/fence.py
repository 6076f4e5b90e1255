"""Run the inspection of a hand-in in a forked child under caps on its CPU time, memory and wall
clock, so that no file, however built, can make the grading process itself run long or grow.

    run_fenced(task, what=..., limits=...) -> task's value     its GraderError raised here as is

The inspection reads hostile bytes with parsers the grader does not own (zipfile's directory,
tomllib, json, ast, tarfile): each has caps of its own in the code that calls it, and this fence
holds for whatever they miss. The child is a plain ``os.fork`` of the grading process: it starts
with every module already imported (about 25 ms, fork to exit, on the loaded 2-core development
machine), shares nothing writable with its parent, and its rlimits are its own. What it returns comes back pickled through a pipe and is rebuilt
by an unpickler that accepts only the classes the caller names: it is the grader's own value,
built from the hand-in's strings, never an object the hand-in chose.
"""

from __future__ import annotations

import io
import os
import pickle
import resource
import select
import signal
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from grader.errors import GraderError
from grader.messages import Message, say
from grader.limits import GiB, MiB, format_bytes

T = TypeVar("T")


@dataclass(frozen=True)
class FenceLimits:
    """Caps on one fenced inspection.

    Attributes:
        cpu_seconds: CPU time of the child (a 1 GiB checkpoint is hashed and checksummed in
            about 3 s; the bombs this fence was built for took 73 s and more).
        wall_seconds: wall-clock time, waiting on a slow disk included.
        memory_bytes: address space the child may add to what it inherits from the grading
            process (``RLIMIT_AS``: every mapping counts, so nothing escapes it).
        reply_bytes: the pickled value sent back.
    """

    cpu_seconds: int = 30
    wall_seconds: float = 120.0
    memory_bytes: int = 1 * GiB
    reply_bytes: int = 64 * MiB


FENCE_LIMITS = FenceLimits()
_CRASH_EXIT = 70  # the child's own code raised something other than a GraderError


def run_fenced(task: Callable[[], T], *, what: str, allowed: frozenset[tuple[str, str]],
               limits: FenceLimits = FENCE_LIMITS) -> T:
    """``task()`` in a forked child under ``limits``; its value, rebuilt here.

    Args:
        task: what to run; it may raise GraderError, which is raised here with the same words.
        what: how messages name the work, e.g. ``"inspecting alice.zip"``.
        allowed: the ``(module, class)`` pairs the value may hold besides builtins.
        limits: the caps.

    Raises:
        GraderError: the task's own, or the cap it broke (CPU, memory, wall clock, nesting).
        RuntimeError: the task failed in a way that is a grader bug; the message carries it.
    """
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(task, write_end, limits, parent)
    os.close(write_end)
    reply, timed_out = b"", False
    try:
        reply, timed_out = _collect(read_end, limits)
    finally:
        os.close(read_end)
        status = _end(pid)  # killed first, if still running (the wall clock, or an interrupt here)
    if timed_out:
        raise GraderError(say("fence.wall", what=what, seconds=f"{limits.wall_seconds:g}"))
    return _outcome(reply, status, what, allowed, limits)


def _child(task: Callable[[], object], write_end: int, limits: FenceLimits, parent: int) -> None:
    """Set the caps, run ``task``, send ``(kind, value)`` and exit without running any cleanup
    of the parent's (atexit handlers, finalizers that would remove the parent's folders)."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child, not a handler of the parent's
        _die_with(parent)
        _limit_self(limits)
        try:
            reply = ("value", task())
        except GraderError as exc:
            reply = ("error", (exc.message, exc.hint))
        except MemoryError:
            reply = ("memory", None)
        except RecursionError:
            reply = ("nesting", None)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a grader bug
            reply, code = ("crash", f"{type(exc).__name__}: {str(exc)[:500]}"), _CRASH_EXIT
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
    except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code
        code = _CRASH_EXIT
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Ask Linux to SIGKILL this child when the grading process dies (a batch worker killed for
    its limits), so that no inspection outlives it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request was made
        os._exit(_CRASH_EXIT)


def _limit_self(limits: FenceLimits) -> None:
    """CPU seconds from now (a forked child starts at 0), address space beyond what is mapped
    now, and no core file."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _mapped_bytes() + limits.memory_bytes
    if hard == resource.RLIM_INFINITY or cap < hard:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap if hard == resource.RLIM_INFINITY else hard))


def _mapped_bytes() -> int:
    """This process's address space now (``VmSize``)."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _collect(read_end: int, limits: FenceLimits) -> tuple[bytes, bool]:
    """Everything the child writes, until it closes the pipe; (bytes, whether the wall clock ran out)."""
    deadline = time.monotonic() + limits.wall_seconds
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"", True
        ready, _, _ = select.select([read_end], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(read_end, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > limits.reply_bytes:
            return b"", False
        chunks.append(chunk)


def _end(pid: int) -> int:
    """The child's wait status, once it is gone: killed first if it still runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
    return status


def _outcome(reply: bytes, status: int, what: str, allowed: frozenset[tuple[str, str]], limits: FenceLimits):
    """The task's value from the child's reply and wait status; or the error that says why not."""
    if not reply:
        signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        if signal_number in (signal.SIGXCPU, signal.SIGKILL):
            raise GraderError(say("fence.cpu", what=what, seconds=limits.cpu_seconds))
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == _CRASH_EXIT:
            raise RuntimeError(f"{what} failed in the grader, which could not report why")
        raise GraderError(say("fence.died", what=what, how=_how_it_ended(status)))
    try:
        kind, value = _FenceUnpickler(io.BytesIO(reply), allowed).load()
    except (pickle.UnpicklingError, ValueError, EOFError) as exc:
        raise RuntimeError(f"{what}: the grader could not read back its own result ({exc})") from None
    if kind == "value":
        return value
    if kind == "error":
        raise GraderError(*value)
    if kind == "memory":
        raise GraderError(say("fence.memory", what=what, size=format_bytes(limits.memory_bytes)))
    if kind == "nesting":
        raise GraderError(say("fence.nesting", what=what))
    raise RuntimeError(f"{what} failed in the grader: {value}")


def _how_it_ended(status: int) -> Message:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return say("fence.killed_by", signal=signal.Signals(number).name) if number in signal.valid_signals() \
            else say("fence.killed")
    return say("fence.exit_status", status=os.WEXITSTATUS(status))


class _FenceUnpickler(pickle.Unpickler):
    """Rebuilds only builtins and the classes the caller allows."""

    def __init__(self, stream: io.BytesIO, allowed: frozenset[tuple[str, str]]):
        super().__init__(stream)
        self.allowed = allowed

    def find_class(self, module: str, name: str):
        if (module, name) in self.allowed or (module, name) in _ALWAYS or (module == "builtins" and name in _BUILTINS):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the fenced child returned a {module}.{name}, which is not allowed")


_ALWAYS = frozenset({("grader.messages", "Message")})  # how an error's words travel back
_BUILTINS = frozenset({"set", "frozenset", "tuple", "list", "dict", "str", "bytes", "int", "float", "bool",
                       "complex", "slice", "range"})
