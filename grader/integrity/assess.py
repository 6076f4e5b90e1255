"""What the grading process sends the child beyond the test set, and what it concludes.

    IntegrityImages.draw(data, probe) -> IntegrityImages   probe copies + a secret training subset
    assess(images, logits, ...) -> Assessment               measured training metrics, claims, fit

Every image goes to the child in one request, shuffled with the test set by the grading
secret, so the network cannot tell a test image from a probe copy or a training image by its
position. What that hides, and what it does not: a network that memorised the public images can
still recognise them; what catches it is its behaviour on images it did not memorise (the
training subset, for a table of test images) and on altered copies (the probe, for a table of
both sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from grader.data import Cifar10
from grader.integrity.claims import Measured, Mismatch, claim_mismatches, measure_split, suspicious_fit
from grader.integrity.memorisation import MemorisationProbe, memorisation_check, probe_images
from grader.integrity.secret import seed_from

TRAIN_SUBSET = 1000  # training images measured: accuracy to about +-3 points (95%) for a tenth more inference


@dataclass(frozen=True)
class IntegrityImages:
    """The images sent beside the test set.

    Attributes:
        probed: sorted indices of the test images the probe copies.
        copies: their altered copies, uint8 (m, 32, 32, 3).
        train: sorted indices of the secret training subset.
    """

    probed: np.ndarray
    copies: np.ndarray
    train: np.ndarray

    @classmethod
    def draw(cls, data: Cifar10, probe: MemorisationProbe | None, train_size: int = TRAIN_SUBSET
             ) -> "IntegrityImages":
        """The probe's copies (none when ``probe`` is None) and a training subset, both drawn
        with the grading secret."""
        empty = np.zeros((0, *data.test_images.shape[1:]), np.uint8)
        probed, copies = probe_images(data, probe) if probe else (np.zeros(0, np.int64), empty)
        rng = np.random.default_rng(seed_from(data.fingerprint, "training-subset"))
        n = len(data.train_labels)
        train = np.sort(rng.choice(n, size=min(train_size, n), replace=False)) if n else np.zeros(0, np.int64)
        return cls(probed, copies, train)

    def images(self, data: Cifar10) -> np.ndarray:
        """The test set, then the copies, then the training subset: one array for the child."""
        return np.concatenate([data.test_images, self.copies, data.train_images[self.train]])


@dataclass(frozen=True)
class Assessment:
    """What the extra images say.

    Attributes:
        memorisation: the probe's ``memorisation`` object (None without a probe).
        training: accuracy and loss on the training subset (None without training images).
        test: the same on the test set.
        mismatches: claims of the history that the network does not bear out.
        fit: a sentence when the test set fits far better than the training images, else None.
    """

    memorisation: dict | None
    training: Measured | None
    test: Measured
    mismatches: tuple[Mismatch, ...]
    fit: str | None


def assess(extra: IntegrityImages, logits: np.ndarray, data: Cifar10, history: Mapping | None) -> Assessment:
    """Split the child's ``logits`` (test set, copies, training subset: ``IntegrityImages.images``
    order, in the dataset's class order) and judge them."""
    n, m = len(data.test_labels), len(extra.copies)
    test = measure_split(logits[:n], data.test_labels)
    memorisation = None
    if m:
        memorisation = memorisation_check(logits[extra.probed], logits[n:n + m], data.test_labels[extra.probed])
    training = measure_split(logits[n + m:], data.train_labels[extra.train]) if len(extra.train) else None
    mismatches, fit = (), None
    if training is not None:
        mismatches = tuple(claim_mismatches(history, training, test, official=bool(data.official)))
        fit = suspicious_fit(test, training)
    return Assessment(memorisation, training, test, mismatches, fit)
