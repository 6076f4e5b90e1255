"""Logits on the corrupted images in, robustness figures out (pure).

    measure(corrupted, logits, labels, classes) -> Robustness

Accuracy per corruption, per severity and overall, each with a 95% Wilson interval as the test
accuracy has. The overall figure is CIFAR-10-C's mean corruption accuracy: the mean over the
standard corruptions generated (frost is left out) and their five severities; the extras
(speckle noise, gaussian blur, spatter, saturate) are reported per corruption only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from grader.evaluate import png_base64, wilson_interval
from grader.robustness.cache import CorruptedSet
from grader.robustness.corruptions import CORRUPTIONS, LEFT_OUT

EXAMPLE_SEVERITY = 3  # the report shows each corruption at this severity


@dataclass(frozen=True)
class Robustness:
    """Accuracy under CIFAR-10-C's corruptions, regenerated locally.

    Attributes:
        mean_accuracy: accuracy over every standard corruption generated and every severity, 0..1.
        mean_accuracy_ci: its 95% Wilson interval (images counted once per corruption and severity).
        per_corruption: corruption -> accuracy over its five severities (extras included).
        per_corruption_ci: corruption -> 95% Wilson interval.
        per_severity: accuracy at severity 1..5 over the standard corruptions.
        per_severity_ci: their intervals.
        per_corruption_severity: corruption -> accuracy at severity 1..5 (the report's heatmap).
        n_per_cell: test images per corruption and severity.
        left_out: corruption -> why it was not generated.
        examples: one image per corruption at ``EXAMPLE_SEVERITY`` (the clean one first):
            ``{corruption, severity, png, true, predicted}``.
        regenerated: always True: the images are regenerated here, not the published CIFAR-10-C.
    """

    mean_accuracy: float
    mean_accuracy_ci: tuple[float, float]
    per_corruption: Mapping[str, float]
    per_corruption_ci: Mapping[str, tuple[float, float]]
    per_severity: tuple[float, ...]
    per_severity_ci: tuple[tuple[float, float], ...]
    per_corruption_severity: Mapping[str, tuple[float, ...]]
    n_per_cell: int
    left_out: Mapping[str, str] = field(default_factory=lambda: dict(LEFT_OUT))
    examples: tuple[Mapping[str, Any], ...] = ()
    regenerated: bool = True

    def to_json(self) -> dict:
        """The ``robustness`` object of results.json."""
        return {"mean_accuracy": self.mean_accuracy, "mean_accuracy_ci": list(self.mean_accuracy_ci),
                "per_corruption": dict(self.per_corruption),
                "per_corruption_ci": {k: list(v) for k, v in self.per_corruption_ci.items()},
                "per_severity": list(self.per_severity), "per_severity_ci": [list(v) for v in self.per_severity_ci],
                "per_corruption_severity": {k: list(v) for k, v in self.per_corruption_severity.items()},
                "n_per_cell": self.n_per_cell, "left_out": dict(self.left_out),
                "examples": [dict(e) for e in self.examples], "regenerated": self.regenerated}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "Robustness":
        """Read the ``robustness`` object of a results.json (TypeError/KeyError when malformed)."""
        return cls(mean_accuracy=float(obj["mean_accuracy"]), mean_accuracy_ci=_pair(obj["mean_accuracy_ci"]),
                   per_corruption={str(k): float(v) for k, v in obj["per_corruption"].items()},
                   per_corruption_ci={str(k): _pair(v) for k, v in obj["per_corruption_ci"].items()},
                   per_severity=tuple(float(v) for v in obj["per_severity"]),
                   per_severity_ci=tuple(_pair(v) for v in obj["per_severity_ci"]),
                   per_corruption_severity={str(k): tuple(float(a) for a in v)
                                            for k, v in obj["per_corruption_severity"].items()},
                   n_per_cell=int(obj["n_per_cell"]), left_out=dict(obj.get("left_out") or {}),
                   examples=tuple(dict(e) for e in obj.get("examples") or ()),
                   regenerated=bool(obj.get("regenerated", True)))


def _pair(value) -> tuple[float, float]:
    lo, hi = value
    return (float(lo), float(hi))


def measure(corrupted: CorruptedSet, logits: np.ndarray, labels: np.ndarray, classes, *,
            clean: np.ndarray | None = None) -> Robustness:
    """Score the child's ``logits`` on ``corrupted.flat()`` (same order, dataset class order).

    Args:
        corrupted: the images sent.
        logits: float (corruptions * severities * n, classes).
        labels: the whole test set's labels (the subset's are picked by ``corrupted.indices``).
        classes: the class names, for the examples.
        clean: the first subset image uncorrupted, shown first among the examples.
    Raises:
        ValueError: when the logits do not match the set.
    """
    k, s, n = corrupted.images.shape[:3]
    if len(logits) != k * s * n:
        raise ValueError(f"{len(logits)} logits for {k * s * n} corrupted images")
    truth = np.asarray(labels)[corrupted.indices]
    hits = (np.asarray(logits).argmax(1).reshape(k, s, n) == truth).sum(axis=2)  # k, s
    standard = np.array([CORRUPTIONS[name].standard for name in corrupted.names])

    def rate(count, total):
        return (int(count) / int(total) if total else 0.0), wilson_interval(int(count), int(total))

    mean, mean_ci = rate(hits[standard].sum(), standard.sum() * s * n)
    by_corruption = {name: rate(hits[i].sum(), s * n) for i, name in enumerate(corrupted.names)}
    by_severity = [rate(hits[standard, j].sum(), standard.sum() * n) for j in range(s)]
    return Robustness(
        mean_accuracy=mean, mean_accuracy_ci=mean_ci,
        per_corruption={name: v[0] for name, v in by_corruption.items()},
        per_corruption_ci={name: v[1] for name, v in by_corruption.items()},
        per_severity=tuple(v[0] for v in by_severity), per_severity_ci=tuple(v[1] for v in by_severity),
        per_corruption_severity={name: tuple(float(h) / n for h in hits[i]) for i, name in enumerate(corrupted.names)},
        n_per_cell=n, examples=_examples(corrupted, logits, truth, classes, clean))


def _examples(corrupted: CorruptedSet, logits: np.ndarray, truth: np.ndarray, classes,
              clean: np.ndarray | None) -> tuple[dict, ...]:
    """The first subset image, clean (when given) and under each corruption at ``EXAMPLE_SEVERITY``."""
    k, s, n = corrupted.images.shape[:3]
    severity = min(EXAMPLE_SEVERITY, s)
    predicted = np.asarray(logits).argmax(1).reshape(k, s, n)[:, severity - 1, 0]
    true = classes[int(truth[0])]
    out = [] if clean is None else [{"corruption": "clean", "severity": 0, "png": png_base64(clean), "true": true,
                                     "predicted": None}]
    for i, name in enumerate(corrupted.names):
        out.append({"corruption": name, "severity": severity, "png": png_base64(corrupted.images[i, severity - 1, 0]),
                    "true": true, "predicted": classes[int(predicted[i])]})
    return tuple(out)
