"""Fingerprints of a network's weights that survive re-saving, renaming and reordering (pure).

    fingerprint(tensors) -> WeightPrint          per-tensor digests, whatever the file's form
    compare_prints(a, b) -> PrintMatch           how much of two networks' weights is the same

Each tensor is rounded to float16 (so a copy converted to half precision still matches) and
hashed twice: as it is (shape and values in order: an *exact* copy) and as the multiset of its
values with its sorted shape, which permuting hidden units leaves unchanged (a *reordered*
copy). Key names, prefixes, nesting and file format never enter a digest, and a network's
digests are compared as a multiset, so tensor order does not either. Constant tensors (a
BatchNorm scale left at 1, zero biases) are skipped: every network of that architecture shares them.

A *sketch* catches fine-tuned copies cheaply: each weight matrix, scaled to unit length, is
summed into ``SKETCH_SIZE`` buckets with random signs (a count sketch, hashed by the tensor's
place and shape, so the same for every network of an architecture); the dot product of two
sketches estimates the mean cosine similarity of the two networks' weights as saved.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

# A pair is a copy when the smaller network's weights are all found in the larger, and the
# smaller holds at least this share of the larger's (a state_dict cut from a run folder that
# also keeps other tensors still matches; one shared layer does not).
MIN_SIZE_RATIO = 0.5
SKETCH_SIZE = 256  # buckets: the sketch's cosine is within about 1/sqrt(256) = 0.06 of the true one


@dataclass(frozen=True)
class TensorPrint:
    """One tensor's digests.

    Attributes:
        exact: sha256 (hex, 32 digits) of its shape and float16-rounded values, in order.
        sorted: the same of its sorted shape and its sorted values (blind to unit order).
        size: its number of elements.
        shape: its shape.
    """

    exact: str
    sorted: str
    size: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class WeightPrint:
    """A network's fingerprint.

    Attributes:
        tensors: its non-constant floating-point tensors' digests, in file order.
        architecture: digest of every tensor's shape in file order (equal for two networks
            whose weights can be compared as saved).
        sketch: the unit-length count sketch of its weight matrices (``SKETCH_SIZE`` values).
    """

    tensors: tuple[TensorPrint, ...]
    architecture: str = ""
    sketch: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        """Elements in the fingerprinted tensors."""
        return sum(t.size for t in self.tensors)

    def to_json(self) -> dict:
        return {"tensors": [[t.exact, t.sorted, t.size, list(t.shape)] for t in self.tensors],
                "architecture": self.architecture, "sketch": [round(v, 6) for v in self.sketch]}

    @classmethod
    def from_json(cls, obj: dict) -> "WeightPrint":
        tensors = tuple(TensorPrint(str(e), str(s), int(n), tuple(int(d) for d in shape))
                        for e, s, n, shape in obj["tensors"])
        return cls(tensors, str(obj.get("architecture", "")), tuple(float(v) for v in obj.get("sketch", ())))


@dataclass(frozen=True)
class PrintMatch:
    """How two fingerprints overlap, as shares of the smaller network's elements.

    Attributes:
        exact: share found identical, in order, in the other network.
        reordered: share found as the same values in another order.
        size_ratio: the smaller network's elements over the larger's.
    """

    exact: float
    reordered: float
    size_ratio: float

    def kind(self) -> str | None:
        """"exact copy", "reordered copy", or None when the weights are not copies."""
        if self.size_ratio < MIN_SIZE_RATIO:
            return None
        if self.exact >= 1.0:
            return "exact copy"
        return "reordered copy" if self.reordered >= 1.0 else None


def fingerprint(tensors: list[np.ndarray]) -> WeightPrint:
    """The fingerprint of ``tensors`` (float arrays, any order, any shapes)."""
    prints = []
    for tensor in tensors:
        half = np.ascontiguousarray(tensor, dtype=np.float16)
        if half.size < 2 or np.all(half == half.flat[0]):
            continue
        shape = tuple(int(d) for d in half.shape)
        exact = _digest(repr(shape), half.tobytes())
        counts = np.bincount(half.view(np.uint16).ravel(), minlength=1 << 16)  # the values as a multiset
        seen = np.flatnonzero(counts)
        ordered = _digest(repr(sorted(shape)), seen.astype("<u2").tobytes() + counts[seen].astype("<u8").tobytes())
        prints.append(TensorPrint(exact, ordered, int(half.size), shape))
    architecture = _digest(repr([tuple(t.shape) for t in tensors]), b"")
    return WeightPrint(tuple(prints), architecture, sketch(tensors))


def sketch(tensors: list[np.ndarray]) -> tuple[float, ...]:
    """The count sketch of ``tensors``' weight matrices (two or more dimensions), unit length."""
    total = np.zeros(SKETCH_SIZE)
    for place, tensor in enumerate(tensors):
        if tensor.ndim < 2:
            continue
        flat = tensor.astype(np.float64).ravel()
        norm = np.linalg.norm(flat)
        if not norm:
            continue
        hashed = _hash(np.arange(flat.size, dtype=np.uint64), seed=_seed(place, tensor.shape))
        buckets = (hashed >> np.uint64(40)) % np.uint64(SKETCH_SIZE)
        signs = ((hashed >> np.uint64(20)) & np.uint64(1)).astype(np.float64) * 2 - 1
        total += np.bincount(buckets.astype(np.intp), weights=signs * flat / norm, minlength=SKETCH_SIZE)
    norm = np.linalg.norm(total)
    return tuple(float(v) for v in total / norm) if norm else ()


def compare_prints(a: WeightPrint, b: WeightPrint) -> PrintMatch:
    """How much of ``a`` and ``b`` is the same weights (see ``PrintMatch``)."""
    small, large = sorted((a, b), key=lambda p: p.size)
    if not small.size:
        return PrintMatch(0.0, 0.0, 0.0)
    return PrintMatch(_shared(small, large, "exact") / small.size, _shared(small, large, "sorted") / small.size,
                      small.size / large.size)


def _shared(small: WeightPrint, large: WeightPrint, field: str) -> int:
    """Elements of ``small`` whose digest (``field``) ``large`` also holds, counted as multisets."""
    available = Counter(getattr(t, field) for t in large.tensors)
    shared = 0
    for t in small.tensors:
        key = getattr(t, field)
        if available[key]:
            available[key] -= 1
            shared += t.size
    return shared


def _seed(place: int, shape: tuple[int, ...]) -> int:
    """The sketch's hash seed for the tensor at ``place`` with ``shape`` (the same on every machine)."""
    return int.from_bytes(hashlib.sha256(repr((place, tuple(shape))).encode()).digest()[:4], "little")


def _hash(index: np.ndarray, seed: int) -> np.ndarray:
    """A fixed pseudo-random 64-bit hash of each index (splitmix64's finaliser), per ``seed``."""
    with np.errstate(over="ignore"):
        z = index + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _digest(shape: str, values: bytes) -> str:
    return hashlib.sha256(shape.encode() + b"|" + values).hexdigest()[:32]
