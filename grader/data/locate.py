"""Where the data comes from: --data, then $GRADER_DATA, then the per-user cache, then download."""

from __future__ import annotations

import os
from pathlib import Path

from grader.data.cache import cache_root, convert, load_cached
from grader.data.dataset import Cifar10
from grader.errors import GraderError

ENV_VAR = "GRADER_DATA"


def resolve_source(data: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Pick the source to use and say why.

    Returns:
        (path, how): path is None when the official archive must be downloaded; ``how`` is
        "--data", "$GRADER_DATA", "cache" or "download".
    """
    if data:
        return Path(data).expanduser(), "--data"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    downloaded = cache_root() / "download" / "cifar-10-batches-py"
    if (downloaded / "test_batch").is_file():
        return downloaded, "cache"
    return None, "download"


def load_cifar10(data: str | os.PathLike | None = None, *, expect_full: bool = True) -> Cifar10:
    """Load CIFAR-10 from the first source that applies, converting it into the cache once.

    Args:
        data: a source path; None means $GRADER_DATA, then the cache, then the official download.
        expect_full: require the official split sizes (False accepts a balanced-or-not subset).

    Raises:
        GraderError: when the source is missing, corrupt, or malformed, or the download fails.
    """
    path, how = resolve_source(data)
    if path is None:
        path = download_official()
    try:
        return load_cached(convert(path, expect_full=expect_full))
    except OSError as exc:  # the cache cannot be written (a file in the way, no permission, disk full)
        raise GraderError(f"cannot convert {path} into the data cache {cache_root()}: "
                          f"{exc.strerror or exc} ({exc.filename})",
                          "set GRADER_CACHE to a folder you can write to, with free space, and check "
                          "that the data source is readable") from None


def download_official() -> Path:
    """Download the official archive through torchvision into the cache; return its folder."""
    target = cache_root() / "download"
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(root=str(target), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise GraderError(
            f"could not download CIFAR-10 ({exc.__class__.__name__}: {exc})",
            f"pass --data PATH or set {ENV_VAR} to a local copy (the official "
            "cifar-10-python.tar.gz, its folder, or an image tree)",
        ) from None
    return target / "cifar-10-batches-py"

