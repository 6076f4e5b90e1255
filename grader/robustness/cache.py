"""The corrupted images a grade sends: a fixed seeded subset of the test set, every corruption
at every severity, generated once and cached.

    corrupted_set(data, n) -> CorruptedSet     from the cache, generating it the first time
    generate(data, n) -> CorruptedSet          in memory (the cache's contents)

The subset and every random draw are seeded from the data's fingerprint, so every grade on the
same data sees the same images. The cache folder sits beside the converted data
(``$GRADER_CACHE/cifar10-c/``), keyed by the fingerprint, the corruption code's version and
``n``, and is written atomically (a parallel worker may generate the same folder; one wins).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader import __version__
from grader.atomic import staged_dir
from grader.data import Cifar10
from grader.data.cache import cache_root
from grader.errors import GraderError
from grader.robustness.corruptions import CODE_VERSION, CORRUPTIONS, SEVERITIES, corrupt


@dataclass(frozen=True)
class CorruptedSet:
    """Corrupted copies of ``n`` test images.

    Attributes:
        indices: the test images used, sorted indices into the test set, (n,).
        names: the corruptions, in ``CORRUPTIONS`` order.
        images: uint8 (corruptions, severities, n, h, w, 3); memory-mapped when read from the cache.
        seconds: how long generating it took (when it was generated).
    """

    indices: np.ndarray
    names: tuple[str, ...]
    images: np.ndarray
    seconds: float = 0.0

    def flat(self) -> np.ndarray:
        """Every image in one (corruptions * severities * n, h, w, 3) array, corruption-major."""
        return self.images.reshape(-1, *self.images.shape[3:])

    def after(self, images: np.ndarray) -> np.ndarray:
        """``images`` followed by ``flat()``: one request for the child."""
        return np.concatenate([images, self.flat()])


def _seed(fingerprint: str, *parts: object) -> np.random.SeedSequence:
    text = ":".join([fingerprint, "robustness", *map(str, parts)])
    return np.random.SeedSequence(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "little"))


def subset(data: Cifar10, n: int) -> np.ndarray:
    """``n`` test indices (all of them when the test set is smaller), sorted, drawn with a seed
    from the data's fingerprint."""
    total = len(data.test_labels)
    rng = np.random.default_rng(_seed(data.fingerprint, "subset"))
    return np.sort(rng.choice(total, size=min(n, total), replace=False))


def generate(data: Cifar10, n: int) -> CorruptedSet:
    """Corrupt ``n`` test images by every corruption at every severity (pure; seconds to a minute)."""
    if n < 1:
        raise GraderError(f"robustness needs at least 1 image per corruption and severity, not {n}",
                          "pass --robustness N with N >= 1 (or --robustness alone for the default)")
    started = time.perf_counter()
    indices = subset(data, n)
    clean = np.ascontiguousarray(data.test_images[indices])
    names = tuple(CORRUPTIONS)
    images = np.empty((len(names), SEVERITIES, *clean.shape), np.uint8)
    for i, name in enumerate(names):
        for severity in range(1, SEVERITIES + 1):
            rng = np.random.default_rng(_seed(data.fingerprint, name, severity))
            images[i, severity - 1] = corrupt(name, clean, severity, rng)
    return CorruptedSet(indices, names, images, time.perf_counter() - started)


def cache_folder(data: Cifar10, n: int) -> Path:
    """Where the set for ``data`` and ``n`` is cached."""
    return cache_root() / "cifar10-c" / f"{data.fingerprint[:24]}-v{CODE_VERSION}-n{n}"


def corrupted_set(data: Cifar10, n: int) -> CorruptedSet:
    """The cached set for ``data`` and ``n``, generated and written the first time.

    Raises:
        GraderError: when ``n`` < 1, or a cached folder is unreadable (with the folder to delete).
    """
    folder = cache_folder(data, n)
    if not (folder / "meta.json").is_file():
        made = generate(data, n)
        meta = {"fingerprint": data.fingerprint, "code_version": CODE_VERSION, "n": n, "names": list(made.names),
                "grader_version": __version__, "generated_seconds": round(made.seconds, 2)}
        with staged_dir(folder, replace=False) as tmp:
            np.save(tmp / "indices.npy", made.indices)
            np.save(tmp / "images.npy", made.images)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        return made
    try:
        meta = json.loads((folder / "meta.json").read_text())
        images = np.load(folder / "images.npy", mmap_mode="r")
        indices = np.load(folder / "indices.npy")
    except (OSError, ValueError) as exc:
        raise GraderError(f"the corrupted-image cache {folder} is unreadable ({exc})",
                          "delete that folder: it is generated again on the next run") from None
    if tuple(meta.get("names", ())) != tuple(CORRUPTIONS) or images.shape[:2] != (len(CORRUPTIONS), SEVERITIES):
        raise GraderError(f"the corrupted-image cache {folder} does not hold this grader's corruptions",
                          "delete that folder: it is generated again on the next run")
    return CorruptedSet(indices, tuple(meta["names"]), images)
