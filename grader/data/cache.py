"""The conversion cache: one folder of .npy arrays per source, keyed by the source's hash."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from grader import __version__
from grader.atomic import staged_dir, write_json
from grader.errors import GraderError
from grader.hashing import sha256_file
from grader.data.dataset import CLASSES, Cifar10, fingerprint
from grader.data.sources import check_class_counts, read_source

ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")
CACHE_FORMAT = 1


def cache_root() -> Path:
    """``$GRADER_CACHE``, else the per-user cache folder (``~/.cache/grader`` on Linux)."""
    if os.environ.get("GRADER_CACHE"):
        return Path(os.environ["GRADER_CACHE"]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("grader"))


def source_key(path: Path) -> str:
    """A content hash of the source, memoised by (path, size, mtime) so it is computed once.

    A file hashes its bytes; a folder hashes the sorted list of its files' paths, sizes and
    mtimes (re-reading 60,000 images on every load would cost more than it protects).
    """
    path = path.resolve()
    stamp = _stamp(path)
    index_path = cache_root() / "cifar10" / "sources.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    if index.get(str(path), {}).get("stamp") == stamp:
        return index[str(path)]["sha256"]
    key = sha256_file(path) if path.is_file() else hashlib.sha256(stamp.encode()).hexdigest()
    index[str(path)] = {"stamp": stamp, "sha256": key}
    write_json(index_path, index)
    return key


def _stamp(path: Path) -> str:
    if path.is_file():
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    rows = []
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            rows.append(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def cache_dir_for(key: str) -> Path:
    """The cache folder of the source whose key is ``key``; the format is part of its path, so a
    grader that writes another format converts again beside the old folder, never reading it."""
    return cache_root() / "cifar10" / (key[:24] if CACHE_FORMAT == 1 else f"v{CACHE_FORMAT}-{key[:24]}")


def load_cached(folder: Path) -> Cifar10:
    """Load a converted folder; arrays are memory-mapped read-only, so this takes milliseconds."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("cache_format") != CACHE_FORMAT:
        raise GraderError(f"the data cache {folder} is in format {meta.get('cache_format')!r}, not {CACHE_FORMAT}",
                          "delete that folder: the source is converted again on the next run")
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    return Cifar10(
        **arrays,
        classes=tuple(meta["classes"]),
        fingerprint=meta["fingerprint"],
        official=meta["official"],
        source=meta["source"],
        source_kind=meta["source_kind"],
        meta=meta,
    )


def convert(source: Path, *, expect_full: bool = True, label: str | None = None) -> Path:
    """Read ``source`` and write its cache folder atomically (unless already there).

    Returns:
        the cache folder. A conversion interrupted at any point leaves no folder behind.
    """
    key = source_key(source)
    folder = cache_dir_for(key)
    if (folder / "meta.json").is_file():
        if expect_full:  # converted earlier with --partial: the counts it recorded still decide
            meta = json.loads((folder / "meta.json").read_text())
            for split, counts in meta["counts"].items():
                check_class_counts(split, counts["per_class"], str(source), expect_full)
        return folder
    started = time.perf_counter()
    converted = read_source(source, expect_full=expect_full)
    test_images, test_labels = converted.splits["test"]
    meta = {
        "cache_format": CACHE_FORMAT,
        "source": label or str(source.resolve()),
        "source_sha256": key,
        "source_kind": converted.kind,
        "official": converted.official,
        "fingerprint": fingerprint(test_images, test_labels),
        "classes": list(CLASSES),
        "counts": {
            split: {"total": int(len(labels)),
                    "per_class": np.bincount(labels, minlength=len(CLASSES)).tolist()}
            for split, (_, labels) in converted.splits.items()
        },
        "grader_version": __version__,
        "converted_seconds": round(time.perf_counter() - started, 2),
    }
    with staged_dir(folder, replace=False) as tmp:  # a parallel worker may win the race
        for split, (images, labels) in converted.splits.items():
            np.save(tmp / f"{split}_images.npy", images)
            np.save(tmp / f"{split}_labels.npy", labels)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder
