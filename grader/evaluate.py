"""Logits and labels in, metrics out. Pure and deterministic: no I/O, no randomness beyond a seed.

    evaluate(logits, labels, classes, images=None) -> EvalResult
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class EvalConfig:
    """Tunables of the evaluation.

    Attributes:
        z: normal quantile of the confidence intervals (1.96: 95%).
        ece_bins: equal-width confidence bins of the expected calibration error.
        sample_count: images in the fixed sample shown in the report.
        sample_seed: seed of that sample (same seed, same images for every submission).
        confident_wrong: how many of the most confidently wrong images to keep.
        confused_pairs: how many of the most frequent (true, predicted) mistakes to keep.
    """

    z: float = 1.959963984540054
    ece_bins: int = 15
    sample_count: int = 24
    sample_seed: int = 0
    confident_wrong: int = 8
    confused_pairs: int = 5


@dataclass(frozen=True)
class EvalResult:
    """What one network scored on the test set.

    Attributes:
        accuracy: top-1 accuracy, 0..1.
        accuracy_ci: 95% Wilson interval of ``accuracy``.
        loss: mean cross-entropy of the logits (natural log).
        top2_accuracy: the true class among the two highest logits, 0..1.
        ece: expected calibration error over ``EvalConfig.ece_bins`` equal-width bins.
        per_class_accuracy: class name -> recall (correct among images of that class).
        per_class_precision: class name -> precision (correct among images predicted as that class;
            0 when the class was never predicted). The homework called this "per-class accuracy".
        per_class_count: class name -> number of test images of that class.
        confusion_matrix: rows true class, columns predicted class, counts.
        confused_pairs: the most frequent off-diagonal cells, ``{true, predicted, count}``.
        samples: the fixed seeded sample, ``{index, true, predicted, confidence, correct, png}``.
        confident_wrong: the most confidently wrong images, same fields.
        count: number of test images.
        reliability: the non-empty ECE bins, ``{lo, hi, count, accuracy, confidence}`` (a bin
            holds the images whose top confidence lies in ``(lo, hi]``): the reliability diagram.
    """

    accuracy: float
    accuracy_ci: tuple[float, float]
    loss: float
    top2_accuracy: float
    ece: float
    per_class_accuracy: dict[str, float]
    per_class_precision: dict[str, float]
    per_class_count: dict[str, int]
    confusion_matrix: list[list[int]]
    confused_pairs: list[dict]
    samples: list[dict]
    confident_wrong: list[dict]
    count: int
    reliability: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: tuples become lists."""
        out = asdict(self)
        out["accuracy_ci"] = list(self.accuracy_ci)
        return out


def evaluate(logits: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] | list[str],
             images: np.ndarray | None = None, *, config: EvalConfig = EvalConfig()) -> EvalResult:
    """Score ``logits`` (n, k) against ``labels`` (n,).

    Args:
        logits: float (n, k), finite, in the same order as ``labels``.
        labels: int (n,), class indices 0..k-1.
        classes: the k class names.
        images: uint8 (n, 32, 32, 3), for the thumbnails of ``samples`` and ``confident_wrong``
            (None: those lists carry no ``png``).

    Returns:
        the EvalResult; the same inputs always give the same result.

    Raises:
        ValueError: when the shapes disagree.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = logits.shape
    if len(labels) != n or len(classes) != k or n == 0:
        raise ValueError(f"logits {logits.shape}, labels {labels.shape} and {len(classes)} classes disagree")

    log_probs = logits - _logsumexp(logits)  # n, k
    probs = np.exp(log_probs)
    predicted = np.argmax(logits, axis=1)
    confidence = probs[np.arange(n), predicted]
    correct = predicted == labels

    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    per_true, per_pred, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    recall = np.divide(hits, per_true, out=np.zeros(k), where=per_true > 0)
    precision = np.divide(hits, per_pred, out=np.zeros(k), where=per_pred > 0)

    top2 = np.argsort(-logits, axis=1, kind="stable")[:, :2]
    top2_hit = (top2 == labels[:, None]).any(axis=1)
    hits_total = int(correct.sum())

    def item(i: int) -> dict:
        entry = {"index": int(i), "true": classes[labels[i]], "predicted": classes[predicted[i]],
                 "confidence": float(confidence[i]), "correct": bool(correct[i])}
        if images is not None:
            entry["png"] = png_base64(images[i])
        return entry

    sample_rng = np.random.default_rng(config.sample_seed)
    sample = np.sort(sample_rng.choice(n, size=min(config.sample_count, n), replace=False))
    wrong = np.flatnonzero(~correct)
    wrong = wrong[np.lexsort((wrong, -confidence[wrong]))][:config.confident_wrong]  # ties: lower index

    bins = reliability_bins(confidence, correct, bins=config.ece_bins)
    return EvalResult(
        accuracy=hits_total / n,
        accuracy_ci=wilson_interval(hits_total, n, z=config.z),
        loss=float(-log_probs[np.arange(n), labels].mean()),
        top2_accuracy=float(top2_hit.mean()),
        ece=_weighted_gap(bins, n),
        per_class_accuracy={c: float(v) for c, v in zip(classes, recall)},
        per_class_precision={c: float(v) for c, v in zip(classes, precision)},
        per_class_count={c: int(v) for c, v in zip(classes, per_true)},
        confusion_matrix=matrix.tolist(),
        confused_pairs=confused_pairs(matrix, classes, top=config.confused_pairs),
        samples=[item(i) for i in sample],
        confident_wrong=[item(i) for i in wrong],
        count=n,
        reliability=bins,
    )


def _logsumexp(x: np.ndarray) -> np.ndarray:
    peak = x.max(axis=1, keepdims=True)
    return peak + np.log(np.exp(x - peak).sum(axis=1, keepdims=True))


def wilson_interval(successes: int, n: int, *, z: float = EvalConfig.z) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (stays inside 0..1)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, despite rounding
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence|, weighted by bin size."""
    return _weighted_gap(reliability_bins(confidence, correct, bins=bins), len(confidence))


def _weighted_gap(bins: list[dict], n: int) -> float:
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / n)


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, *, bins: int) -> list[dict]:
    """The non-empty equal-width confidence bins ``(lo, hi]``, each ``{lo, hi, count, accuracy,
    confidence}`` (accuracy and mean confidence of its images): what the ECE sums over."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (lo, hi] bins
    found = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            found.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(mask.sum()),
                          "accuracy": float(correct[mask].mean()), "confidence": float(confidence[mask].mean())})
    return found


def confused_pairs(matrix: np.ndarray, classes, *, top: int) -> list[dict]:
    """The ``top`` largest off-diagonal cells, largest first (ties: row, then column order)."""
    k = len(classes)
    cells = [(-int(matrix[t, p]), t, p) for t in range(k) for p in range(k) if t != p and matrix[t, p] > 0]
    return [{"true": classes[t], "predicted": classes[p], "count": -c} for c, t, p in sorted(cells)[:top]]


def png_base64(image: np.ndarray) -> str:
    """A uint8 (h, w, 3) image as a base64 PNG string (deterministic bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
