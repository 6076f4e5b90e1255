"""The in-memory dataset and its identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
FULL_COUNTS = {"train": 50_000, "test": 10_000}


@dataclass(frozen=True)
class Cifar10:
    """CIFAR-10 as arrays, with where it came from.

    Attributes:
        train_images: uint8 (n, 32, 32, 3), RGB, NHWC; read-only (memory-mapped from the cache).
        train_labels: int64 (n,), class indices into ``classes``.
        test_images: uint8 (n, 32, 32, 3), as above.
        test_labels: int64 (n,).
        classes: the ten class names, index order.
        fingerprint: sha256 of the test images and labels, independent of their order.
        official: True when the source's checksums match the official CIFAR-10 release.
        source: the path (or "download") the arrays were converted from.
        source_kind: "official-archive", "official-folder", "image-tree" or "image-tree-archive".
        meta: everything else recorded when the cache was written.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...] = CLASSES
    fingerprint: str = ""
    official: bool = False
    source: str = ""
    source_kind: str = ""
    meta: dict = field(default_factory=dict)

    def identity(self) -> dict:
        """The fields every grade records to name its data."""
        return {
            "fingerprint": self.fingerprint,
            "official": self.official,
            "source": self.source,
            "source_kind": self.source_kind,
            "test_count": int(len(self.test_labels)),
        }


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over the sorted per-image digests of (label, pixels).

    Order-independent, so a lossless copy of a split in another file order (a PNG tree of the
    official test set, say) has the same fingerprint as the original.
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    digests = sorted(
        hashlib.sha256(int(label).to_bytes(1, "little") + img.tobytes()).digest()
        for img, label in zip(images, labels)
    )
    return hashlib.sha256(b"".join(digests)).hexdigest()
