"""The bubblewrap command line: what the child sees of the machine, and nothing more.

Layout inside the sandbox (every bind read-only, all at their host paths so that a venv's
symlinks and the editable install's finder keep working):

    /usr (+ /lib /lib64 /bin /sbin as the host has them)   system libraries, for torch's imports
    /etc/ld.so.cache, /etc/ld.so.conf(.d)                  the dynamic loader's view of /usr
    the Python installation, the venv, the grader package   what ``python -m grader...`` imports
    the caller's ``readonly`` paths                         the submission
    /tmp, /dev/shm                                          size-capped tmpfs; HOME and cwd = /tmp/home
    /proc (own PID namespace), /dev (null, zero, urandom, ...)

Never ``/`` whole (host UNIX sockets live in /run and /tmp), never /home, /root, /work or any data
folder, so the labels cannot be found by searching.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from grader.errors import GraderError
from grader.messages import say
from grader.sandbox.limits import SandboxCaps

SANDBOX_UID = 65534  # "nobody" inside the user namespace
SCRATCH_HOME = "/tmp/home"  # on the capped tmpfs; empty at start
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")
# Modules the child imports from outside the interpreter's prefixes, if installed elsewhere.
NEEDED_MODULES = ("grader", "torch", "numpy")


def check_available() -> None:
    """Raise GraderError unless bubblewrap is installed and can create its namespaces here.

    Raises:
        GraderError: bwrap is missing, or fails to start a trivial sandbox (its stderr quoted).
    """
    _probe(shutil.which("bwrap"))


@functools.cache
def _probe(bwrap: str | None) -> None:
    if bwrap is None:
        raise GraderError(say("sandbox.no_bwrap"))
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as staging:
        argv = bwrap_argv(readonly=(), limits=SandboxCaps(), seccomp_fd=None, staging=Path(staging))
        probe = subprocess.run([*argv, sys.executable, "-I", "-S", "-c", ""],
                               capture_output=True, timeout=60)
    if probe.returncode != 0:
        raise GraderError(say("sandbox.cannot_create", bwrap=bwrap,
                              reason=probe.stderr.decode(errors="replace").strip()[:500]))


def readable_copies(readonly: Sequence[Path], copies: Path) -> list[tuple[Path, Path]]:
    """Pair each path with what to show at it: itself, or a world-readable copy under ``copies``.

    The child runs as host uid 65534 and reads only what others may read; a 0600 weights file
    (torch.save, mkstemp, a umask 077 checkout) is copied rather than chmod-ed behind the owner's
    back. Returns (source to bind, path it appears at) pairs.
    """
    pairs = []
    for i, path in enumerate(map(Path, readonly)):
        if not path.exists():
            raise GraderError(f"{path} does not exist; cannot show it to the sandboxed child")
        if len(path.resolve().parts) <= 2:  # "/", "/tmp", "/home": host sockets, other users
            raise GraderError(f"{path} is too broad to show to the sandboxed child",
                              "pass the submission file or its own folder")
        files = [path] + (sorted(path.rglob("*")) if path.is_dir() else [])
        if all(_readable_by_others(p) for p in files):
            pairs.append((path.resolve(), path.absolute()))
            continue
        os.chmod(copies, 0o755)
        copy = copies / str(i)
        if path.is_dir():
            shutil.copytree(path, copy, symlinks=True, ignore=_special_files)
        else:
            shutil.copy2(path, copy)
        for p in [copy] + (sorted(copy.rglob("*")) if copy.is_dir() else []):
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        pairs.append((copy, path.absolute()))
    return pairs


def _special_files(folder: str, names: list[str]) -> list[str]:
    """Sockets, FIFOs and devices are not copied: a submission has no business holding them."""
    return [n for n in names if not stat.S_ISDIR(m := os.lstat(os.path.join(folder, n)).st_mode)
            and not stat.S_ISREG(m) and not stat.S_ISLNK(m)]


def bwrap_argv(*, readonly: Sequence[tuple[Path, Path]], limits: SandboxCaps, seccomp_fd: int | None,
               staging: Path) -> list[str]:
    """The command prefix that starts bubblewrap; the command to run inside follows it.

    Run as root, the prefix first drops to the unprivileged host uid 65534 (see _drop_root):
    a sandbox whose processes are host root, even without capabilities, is exempt from
    RLIMIT_NPROC and owns every root-owned file it can see.

    Args:
        readonly: (source, shown at) pairs from readable_copies: the submission.
        limits: tmpfs_bytes sizes /tmp and /dev/shm.
        seccomp_fd: an inherited descriptor holding the BPF program (see seccomp.build_filter);
            None for no filter (the probe that checks bwrap works at all).
        staging: an empty directory the caller removes afterwards (used only as root).
    Raises:
        GraderError: Python is installed at / (binding it would show the whole file system).
    """
    binds = [(path, path) for path in LOADER_FILES if os.path.exists(path)]
    for path in _python_roots():
        if path == Path("/"):
            raise GraderError(f"Python is installed at / ({sys.prefix}); the sandbox will not "
                              "expose the whole file system", "use a virtualenv or a Python "
                              "installed under /usr, /opt or a home directory")
        binds.append((str(path), str(path)))
    for source, shown in readonly:
        binds.append((str(Path(source).resolve()), str(shown)))
        if Path(shown).resolve() != Path(shown):  # named through a symlink: show both names
            binds.append((str(Path(source).resolve()), str(Path(shown).resolve())))
    prefix = []
    if os.geteuid() == 0:
        prefix, binds = _drop_root(binds, staging)
    argv = [shutil.which("bwrap") or "bwrap",
            # A user namespace mapping only uid/gid 65534, with every capability dropped.
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--unshare-all",  # network, IPC, PID, UTS, cgroup namespaces
            "--disable-userns",  # no nested user namespace to regain capabilities in
            "--cap-drop", "ALL",
            "--die-with-parent",  # killing bwrap (wall clock) ends the whole PID namespace
            # No bubblewrap init: process 1 is the command, which sets every limit before anything
            # else runs (see _apply_limits.py --init), so no process in here lacks them.
            "--as-pid-1",
            "--new-session",  # no TIOCSTI into the grader's terminal
            # Mounts first, then binds over them: a submission may well live under /tmp.
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp",
            "--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm",
            *_system_binds()]
    for source, dest in binds:
        argv += ["--ro-bind", source, dest]
    # The sandbox's root and /dev are bwrap's own tmpfs, writable and uncapped until remounted:
    # without the remounts a child could fill memory by writing files there.
    # HOME and cwd: an empty folder of the scratch tmpfs (/tmp itself may hold the mount points of
    # binds that live under the host's /tmp, such as a project checked out there).
    argv += ["--dir", SCRATCH_HOME]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SCRATCH_HOME, "--clearenv"]
    for name, value in child_env(SCRATCH_HOME).items():
        argv += ["--setenv", name, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv.append("--")
    return prefix + argv


def _drop_root(binds: list[tuple[str, str]], staging: Path):
    """As root: a prefix that runs bwrap as host uid 65534, and binds it can still reach.

    uid 65534 cannot traverse e.g. /root (0700) to reach a pyenv Python or pytest's tmp folders.
    So, in a private mount namespace of its own (``unshare --mount``, invisible to the host),
    the prefix mounts a small tmpfs on ``staging``, bind-mounts each unreachable source into it,
    and then ``setpriv`` drops to 65534 and execs bwrap with those staged sources.
    Returns (prefix argv, rewritten binds).
    """
    script, staged = [f"mount -t tmpfs -o mode=755,size=64k grader-staging {_q(staging)}"], []
    for i, (source, dest) in enumerate(binds):
        if _reachable_by_others(Path(source)):
            staged.append((source, dest))
            continue
        target = staging / str(i)
        make = "mkdir" if os.path.isdir(source) else "touch"
        script += [f"{make} {_q(target)}", f"mount --bind {_q(source)} {_q(target)}"]
        staged.append((str(target), dest))
    script.append(f'exec setpriv --reuid={SANDBOX_UID} --regid={SANDBOX_UID} --clear-groups '
                  f'--no-new-privs -- "$@"')
    prefix = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-ec",
              " && ".join(script), "grader-sandbox"]
    return prefix, staged


def _q(path) -> str:
    return shlex.quote(str(path))


def _reachable_by_others(path: Path) -> bool:
    """Whether a uid with no special rights can read ``path`` (every ancestor searchable)."""
    try:
        return (all(os.stat(parent).st_mode & stat.S_IXOTH for parent in path.parents)
                and _readable_by_others(path))
    except OSError:
        return False


def _readable_by_others(path: Path) -> bool:
    """Whether ``path`` itself grants others read (and search, for a directory)."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return True
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


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
