"""The grading secret: what a submission cannot know, mixed into the seeds it must not predict.

The memorisation check compares a network on a subset of the test images with its accuracy on
perturbed copies of that subset. Drawn from public data alone (the test set's fingerprint), the
subset could be computed by anyone holding grader's source, and a submission could then answer
a lookup table's labels for every other test image and its honest network's for the probed ones
and their copies: near-perfect accuracy, and no drop to flag. With a secret mixed into the draw,
and into the order the child receives the images in, the subset is unknown to the submission.

The secret is ``$GRADER_SECRET`` when set (a course can give all its TAs and graders one, so they
draw the same subsets), else this machine's own key: 32 random bytes written once, readable only
by its owner, into the grader cache folder (``$GRADER_CACHE``), which the sandboxed child cannot
see. The same secret, data and submission always give the same subset and order.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from grader.data.cache import cache_root
from grader.errors import GraderError

ENV = "GRADER_SECRET"
KEY_NAME = "grading-secret"
KEY_BYTES = 32


def grading_secret() -> bytes:
    """``$GRADER_SECRET`` (UTF-8) when set and non-empty, else this machine's key (created once)."""
    if os.environ.get(ENV):
        return os.environ[ENV].encode()
    return _machine_key(cache_root() / KEY_NAME)


def seed_from(*parts: str | bytes) -> int:
    """A 64-bit seed from ``parts`` and the grading secret (sha256 of them, separated)."""
    digest = hashlib.sha256()
    for part in (*parts, grading_secret()):
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)  # length-prefixed: no two splits collide
    return int.from_bytes(digest.digest()[:8], "little")


def _machine_key(path: Path) -> bytes:
    """The key in ``path``; written first, atomically and 0600, when absent (concurrent graders
    agree: the first one wins and the others read it). A key file that is not a regular file
    owned by this user and private to it is refused: in a shared cache another user could have
    planted it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return _create_key(path)
    except OSError as exc:  # a link (O_NOFOLLOW), a folder, no permission
        raise GraderError(f"cannot read the grading secret {path}: {exc.strerror or exc}",
                          f"delete it (a new one is made), or set {ENV}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise GraderError(f"the grading secret {path} is not a private file of this user "
                              f"(mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid})",
                              f"delete it (a new one is made), or set {ENV}; keep GRADER_CACHE unshared")
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise GraderError(f"the grading secret {path} is damaged ({len(key)} bytes, not {KEY_BYTES})",
                          f"delete it (a new one is made) or set {ENV}")
    return key


def _create_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_NAME}-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(KEY_BYTES))
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temp, path)  # atomic, and never replaces a key another grader made first
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links: exclusive create, then the bytes
                _create_exclusively(path)
        finally:
            os.unlink(temp)
    except OSError as exc:
        raise GraderError(f"cannot create the grading secret {path}: {exc.strerror or exc}",
                          f"set {ENV} to a secret of your own, or GRADER_CACHE to a folder you can write") from None
    return _machine_key(path)


def _create_exclusively(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(os.urandom(KEY_BYTES))
