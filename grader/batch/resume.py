"""What is already graded, and the atomic hand-over of a student's folder.

A student's folder ``OUT/<slug>/`` is complete or absent: the child writes into a hidden staging
folder ``OUT/.batch-tmp-<slug>-*`` and the parent renames it into place. ``batch.json`` inside
records the resume key; a folder whose key matches the current one is not graded again.

    resume_key(sha256, settings_identity) -> str
    finished(folder, key, retry_failed) -> bool
    new_staging(out_dir, slug) -> Path
    commit(staging, target)
    clean_staging(out_dir) -> int
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from grader import atomic
from grader.batch.pool import MARKER

STAGING_PREFIX = ".batch-tmp-"
RESULTS_NAME = "results.json"


def resume_key(sha256: str, identity: Mapping[str, Any]) -> str:
    """A digest of the submission's content and everything that decides its grade.

    Args:
        sha256: the submission's content digest.
        identity: JSON-able settings that change the outputs: the rubric's digest, the data
            fingerprint, the grader version, the report language, sandbox on/off, ...
    """
    blob = json.dumps({"sha256": sha256, **identity}, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def read_marker(folder: Path) -> dict | None:
    """The folder's ``batch.json``, or None when it is missing or unreadable."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def finished(folder: Path, key: str, *, retry_failed: bool = False) -> bool:
    """Whether ``folder`` holds a complete grade for ``key`` (and, with ``retry_failed``, not a
    timeout, memory or crash outcome, which a re-run should try again). A failure of the grader's
    own machinery (marker ``infrastructure``) says nothing about the submission: never finished."""
    marker = read_marker(folder)
    if marker is None or marker.get("resume_key") != key or not (folder / RESULTS_NAME).is_file():
        return False
    if marker.get("infrastructure"):
        return False
    return not (retry_failed and marker.get("status") != "ok")


def new_staging(out_dir: Path, slug: str) -> Path:
    """A fresh, empty hidden folder inside ``out_dir`` (same file system, so rename is atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return atomic.temp_dir(out_dir, prefix=f"{STAGING_PREFIX}{slug}-")


def commit(staging: Path, target: Path) -> None:
    """Put ``staging`` in place of ``target`` with renames only.

    Interrupted at any point, ``target`` is the old complete folder, absent, or the new complete
    folder; leftovers are hidden ``.batch-tmp-*`` folders that ``clean_staging`` removes.
    """
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{target.name}-old-", dir=target.parent))
        os.replace(target, old / "folder")
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_staging(out_dir: Path) -> int:
    """Remove staging folders an interrupted run left in ``out_dir``; returns how many."""
    if not out_dir.is_dir():
        return 0
    stale = [p for p in out_dir.iterdir() if p.name.startswith(STAGING_PREFIX) and p.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)
