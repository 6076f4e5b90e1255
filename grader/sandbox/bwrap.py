"""The bubblewrap command line: what the child sees of the machine, and nothing more.

Layout inside the sandbox (every bind read-only, all at their host paths so that a venv's
symlinks and the editable install's finder keep working):

    /usr (+ /lib /lib64 /bin /sbin as the host has them)   system libraries, for torch's imports
    /etc/ld.so.cache, /etc/ld.so.conf(.d)                  the dynamic loader's view of /usr
    the Python installation, the venv, the grader package   what ``python -m grader...`` imports
    the caller's ``readonly`` paths                         the submission
    /tmp, /dev/shm                                          size-capped tmpfs, HOME and cwd = /tmp
    /proc (own PID namespace), /dev (null, zero, urandom, ...)

Never ``/`` whole (host UNIX sockets live in /run and /tmp), never /home, /root, /work or any data
folder, so the labels cannot be found by searching.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from grader.errors import GraderError
from grader.sandbox.limits import Limits

SANDBOX_UID = 65534  # "nobody" inside the user namespace
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")
# Modules the child imports from outside the interpreter's prefixes, if installed elsewhere.
NEEDED_MODULES = ("grader", "torch", "numpy")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap), or pass --no-sandbox to run untrusted code without it (not advised)")


def check_available() -> None:
    """Raise GraderError unless bubblewrap is installed and can create its namespaces here.

    Raises:
        GraderError: bwrap is missing, or fails to start a trivial sandbox (its stderr quoted).
    """
    _probe(shutil.which("bwrap"))


@functools.cache
def _probe(bwrap: str | None) -> None:
    if bwrap is None:
        raise GraderError("bubblewrap (bwrap) is not on PATH; submissions cannot be sandboxed",
                          INSTALL_HINT)
    argv = [bwrap, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID),
            "--gid", str(SANDBOX_UID), "--cap-drop", "ALL", *_system_binds(), "--", "/bin/true"]
    probe = subprocess.run(argv, capture_output=True, timeout=30)
    if probe.returncode != 0:
        raise GraderError(
            f"bubblewrap ({bwrap}) cannot create a sandbox here: "
            f"{probe.stderr.decode(errors='replace').strip()}",
            "allow user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_"
            "clone; in Docker, --security-opt seccomp=unconfined or run as root), or pass "
            "--no-sandbox (not advised)")


def bwrap_argv(*, readonly: Sequence[Path], limits: Limits, seccomp_fd: int) -> list[str]:
    """The ``bwrap ... --`` prefix; the command to run inside follows it.

    Args:
        readonly: extra host paths bound read-only at the same path (the submission).
        limits: tmpfs_bytes sizes /tmp and /dev/shm.
        seccomp_fd: an inherited descriptor holding the BPF program (see seccomp.build_filter).
    Raises:
        GraderError: a ``readonly`` path does not exist.
    """
    argv = [shutil.which("bwrap") or "bwrap",
            # Started as root, bwrap would keep capabilities: a user namespace mapping only
            # uid/gid 65534, with every capability dropped, leaves the child none.
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--unshare-all",  # network, IPC, PID, UTS, cgroup namespaces
            "--disable-userns",  # no nested user namespace to regain capabilities in
            "--cap-drop", "ALL",
            "--die-with-parent",  # killing bwrap (wall clock) ends the whole PID namespace
            "--new-session",  # no TIOCSTI into the grader's terminal
            # Mounts first, then binds over them: a submission may well live under /tmp.
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp",
            "--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm",
            *_system_binds()]
    for path in LOADER_FILES:
        argv += ["--ro-bind-try", path, path]
    for path in _python_roots():
        if path == Path("/"):
            raise GraderError(f"Python is installed at / ({sys.prefix}); the sandbox will not "
                              "expose the whole file system", "use a virtualenv or a Python "
                              "installed under /usr, /opt or a home directory")
        argv += ["--ro-bind", str(path), str(path)]
    for path in readonly:
        path = Path(path)
        if not path.exists():
            raise GraderError(f"{path} does not exist; cannot show it to the sandboxed child")
        if len(path.resolve().parts) <= 2:  # "/", "/tmp", "/home": host sockets, other users
            raise GraderError(f"{path} is too broad to show to the sandboxed child",
                              "pass the submission file or its own folder")
        argv += ["--ro-bind", str(path.resolve()), str(path.resolve())]
        if path.absolute() != path.resolve():  # the caller may name it through a symlink
            argv += ["--ro-bind", str(path.resolve()), str(path.absolute())]
    # The sandbox's root and /dev are bwrap's own tmpfs, writable and uncapped until remounted:
    # without the remounts a child could fill memory by writing files there.
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for name, value in child_env("/tmp").items():
        argv += ["--setenv", name, value]
    argv += ["--seccomp", str(seccomp_fd), "--"]
    return argv


def child_env(home: str) -> dict[str, str]:
    """The whole environment the child gets: nothing of the grader's (tokens, paths) leaks in."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
           "USER": "sandbox", "LOGNAME": "sandbox", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
    # Thread counts and device choice are the grader's decisions; pass them on.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@functools.cache
def _system_binds() -> tuple[str, ...]:
    """/usr read-only, and the top-level lib/bin directories as the host has them."""
    argv = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return tuple(argv)


@functools.cache
def _python_roots() -> tuple[Path, ...]:
    """The smallest set of directories holding the interpreter, its stdlib and the needed modules."""
    candidates = {Path(p).resolve() for p in
                  (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    candidates.add(Path(sys.prefix).absolute())  # the venv as named, if it sits behind a symlink
    candidates.add(Path(os.path.realpath(sys.executable)).parent.parent)
    for name in NEEDED_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            candidates.update(Path(p).resolve() for p in spec.submodule_search_locations)
    roots = sorted(candidates, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in roots:
        if path.exists() and not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(kept)
