"""What the student claims against what the network does: the ``history-mismatch`` and
``test-set-fit`` flags.

    measure_split(logits, labels) -> Measured       accuracy and loss with their 95% intervals
    claim_mismatches(history, measured_train, test) -> [Mismatch]
    suspicious_fit(test, train) -> str | None       a sentence when the test set fits too well

Only a claim *better* than what the network measurably does is suspicious: a logged training
loss is the running mean over an epoch in train mode (dropout on, weights still moving), so an
honest log is usually worse than the finished network in eval mode. The tolerances below cover
the rest: sampling noise (the intervals), a network graded on a copy of CIFAR-10 other than the
one it was trained on (the JPEG copy costs an official-data network about 10 points), and
rounding in what students type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from grader.evaluate import wilson_interval

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Measured:
    """Accuracy and mean cross-entropy of the network on one set of images, in eval mode.

    Attributes:
        accuracy: top-1 accuracy, 0..1.
        accuracy_ci: its 95% Wilson interval.
        loss: mean cross-entropy (natural log).
        loss_ci: its 95% normal interval.
        count: images measured.
    """

    accuracy: float
    accuracy_ci: tuple[float, float]
    loss: float
    loss_ci: tuple[float, float]
    count: int


@dataclass(frozen=True)
class ClaimTolerances:
    """How much better than measured a claim may be before it is flagged (fractions, nats).

    Attributes:
        accuracy: points of accuracy (as a fraction) beyond the measurement's interval.
        loss: nats of cross-entropy beyond the interval (relative part: ``loss_relative``).
        loss_relative: fraction of the measured loss also allowed (a loss of 0.02 vs 0.03 is noise).
        other_copy: extra accuracy allowed when the grading data is not the official release (the
            student trained and logged on another copy of CIFAR-10).
        other_copy_loss: extra nats allowed then.
    """

    accuracy: float = 0.05
    loss: float = 0.1
    loss_relative: float = 0.25
    other_copy: float = 0.12
    other_copy_loss: float = 0.35


TOLERANCES = ClaimTolerances()


@dataclass(frozen=True)
class Mismatch:
    """One claim the network does not bear out.

    Attributes:
        key: the history key (``train_loss``, ``train_acc``, ``test_acc``).
        claimed: the final value the history claims.
        measured: what the network does (eval mode, grading data).
        allowed: the best value the claim could honestly have been.
    """

    key: str
    claimed: float
    measured: float
    allowed: float

    def sentence(self) -> str:
        """The mismatch in words, for the report and the check it fails."""
        if self.key.endswith("loss"):
            return (f"the history claims a final {self.key} of {self.claimed:.3g}, but the network's loss on "
                    f"training images is {self.measured:.3g} (an honest log is at least {self.allowed:.3g})")
        return (f"the history claims a final {self.key} of {self.claimed:.1%}, but the network scores "
                f"{self.measured:.1%} on {'training' if self.key.startswith('train') else 'test'} images "
                f"(an honest log is at most {self.allowed:.1%})")


def measure_split(logits: np.ndarray, labels: np.ndarray) -> Measured:
    """Accuracy and loss of ``logits`` (n, k) against ``labels`` (n,), with 95% intervals."""
    n = int(len(labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -log_probs[np.arange(n), labels]
    correct = int((logits.argmax(axis=1) == labels).sum())
    loss = float(losses.mean()) if n else 0.0
    half = Z95 * float(losses.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Measured(accuracy=correct / n if n else 0.0, accuracy_ci=wilson_interval(correct, n), loss=loss,
                    loss_ci=(max(0.0, loss - half), loss + half if math.isfinite(half) else loss), count=n)


def claim_mismatches(history: Mapping[str, object] | None, train: Measured, test: Measured, *,
                     official: bool, tolerances: ClaimTolerances = TOLERANCES) -> list[Mismatch]:
    """The final claims of ``history`` that are better than ``train``/``test`` allow.

    Args:
        history: per-epoch lists as handed in (None: nothing claimed).
        train: measured on the secret subset of training images.
        test: measured on the test set.
        official: the grading data is the official release (no copy shift to allow for).
    """
    if not history:
        return []
    copy_acc = 0.0 if official else tolerances.other_copy
    copy_loss = 0.0 if official else tolerances.other_copy_loss
    found = []
    for key, measured in (("train_acc", train), ("test_acc", test)):
        claimed = _final(history.get(key))
        if claimed is not None:
            allowed = min(1.0, measured.accuracy_ci[1] + tolerances.accuracy + copy_acc)
            if claimed > allowed:
                found.append(Mismatch(key, claimed, measured.accuracy, allowed))
    claimed = _final(history.get("train_loss"))
    if claimed is not None:
        allowed = max(0.0, train.loss_ci[0] * (1 - tolerances.loss_relative) - tolerances.loss - copy_loss)
        if claimed < allowed:
            found.append(Mismatch("train_loss", claimed, train.loss, allowed))
    return found


def _final(values: object) -> float | None:
    if isinstance(values, (list, tuple)) and values and isinstance(values[-1], (int, float)) \
            and not isinstance(values[-1], bool) and math.isfinite(values[-1]):
        return float(values[-1])
    return None


@dataclass(frozen=True)
class FitThresholds:
    """When the test set fits suspiciously better than the training images.

    Attributes:
        gap: test accuracy minus training accuracy (fractions) beyond both intervals that flags.
            Honest networks do at least as well on images they trained on.
    """

    gap: float = 0.10


FIT = FitThresholds()


def suspicious_fit(test: Measured, train: Measured, thresholds: FitThresholds = FIT) -> str | None:
    """A sentence when the network does far better on the test set than on training images."""
    if test.accuracy_ci[0] - train.accuracy_ci[1] <= thresholds.gap:
        return None
    return (f"the network scores {test.accuracy:.1%} on the test set but {train.accuracy:.1%} on training "
            f"images: networks trained honestly do at least as well on the images they learned from")
