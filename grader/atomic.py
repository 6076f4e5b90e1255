"""Atomic writes: every output goes to a temporary name in the same folder, then is renamed.

An interruption (even SIGKILL) leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from grader.errors import GraderError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp makes 0600 files, outputs get the usual 0644-style mode


def temp_dir(parent: Path, *, prefix: str, suffix: str = "") -> Path:
    """A new empty folder in ``parent`` with the mode a plain mkdir gives (umask applied), not
    mkdtemp's 0700: it is renamed into place, and a course's co-graders or web server must be able
    to read what it becomes."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    tmp.chmod(0o777 & ~_UMASK)
    return tmp


def ensure_dir(path: str | os.PathLike, *, hint: str) -> Path:
    """Create the output folder ``path`` (and its parents) now, before any work, and check that it
    can be written: a bad ``--out`` then fails in a second, not after the work it was to hold.

    Raises:
        GraderError: naming the folder and the reason, with ``hint`` saying what to do.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise GraderError(f"cannot create the folder {path}: it, or a folder above it, is a file", hint) from None
    except OSError as exc:  # no permission, a read-only file system
        raise GraderError(f"cannot create the folder {path}: {exc.strerror or exc}", hint) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise GraderError(f"cannot write into the folder {path}: permission denied", hint)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced temp file, then rename). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON (non-ASCII kept as is) to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


@contextmanager
def staged_dir(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path`` in one rename.

    With ``replace=False`` a ``path`` that appeared meanwhile (another process finished the same
    work first) is kept and the staged copy discarded. On an exception the temporary folder is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        yield tmp
        if path.exists():
            if not replace:
                shutil.rmtree(tmp)
                return
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
