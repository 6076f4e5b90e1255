"""What a grade adds to the child's request when robustness is measured, and how it is scored.

    robustness_size(asked, rubric) -> n or None      test images per corruption and severity
    with_room(rubric, n, test_count) -> Rubric       the child's wall clock grown for the extra images
    corrupted_set(data, n) -> CorruptedSet          appended after the test and integrity images
    measure_robustness(corrupted, logits, data) -> Robustness
"""

from __future__ import annotations

import dataclasses

import numpy as np

from grader.robustness import DEFAULT_N
from grader.robustness.cache import CorruptedSet, corrupted_set
from grader.robustness.corruptions import CORRUPTIONS, SEVERITIES
from grader.robustness.measure import Robustness, measure

METRIC_PREFIX = "robustness."

__all__ = ["corrupted_set", "measure_robustness", "robustness_size", "with_room"]


def robustness_size(asked: int | None, rubric) -> int | None:
    """``asked``, else ``DEFAULT_N`` when ``rubric`` checks a ``robustness.`` metric, else None."""
    if asked:
        return asked
    return DEFAULT_N if any(c.metric.startswith(METRIC_PREFIX) for c in rubric.checks) else None


def measure_robustness(corrupted: CorruptedSet, logits: np.ndarray, data) -> Robustness:
    """Score the logits of ``corrupted.flat()`` (dataset class order) against ``data``'s test labels."""
    clean = np.asarray(data.test_images[corrupted.indices[0]]) if len(corrupted.indices) else None
    return measure(corrupted, logits, data.test_labels, data.classes, clean=clean)


def with_room(rubric, n: int | None, test_count: int):
    """``rubric`` with its child wall clock grown in proportion to the images robustness adds
    (its limit is written for the test set): measuring robustness never times out a network that
    the plain grade would finish. Unchanged when ``n`` is None."""
    if not n or not test_count:
        return rubric
    extra = len(CORRUPTIONS) * SEVERITIES * min(n, test_count)
    limits = dataclasses.replace(rubric.limits, wall_seconds=rubric.limits.wall_seconds * (1 + extra / test_count))
    return dataclasses.replace(rubric, limits=limits)
