"""The sha256 of a file's bytes, read in blocks: one helper for every digest of a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

HASH_CHUNK = 1 << 20  # bytes read at a time


def sha256_file(path: Path) -> str:
    """Hex sha256 digest of the bytes of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
