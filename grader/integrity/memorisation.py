"""Memorisation check: a network that learned the test images themselves collapses on altered copies.

A lookup table over the public images (a stock nn.Sequential of AvgPool2d, Flatten and two Linear
layers does it) scores 100% on the exact test images; on mirrored, shifted copies it falls to
chance-like accuracy, while a network that learned to see loses a couple of points.

Each copy is mirrored left to right, moved by exactly 3 pixels in a random direction (edges
repeated), and given noise of one grey level (sigma 1/255, so that no copy equals an image a
table could hold). Measured on 2,000 test images of the JPEG copy (bench/calibrate_probe.py;
figures in docs/benchmarks.md): the homework network loses 2.5 points, the fast recipe's 1.6;
a nearest-neighbour lookup over the test set loses 62 points, one over the training and test
sets together 62 too. Mirroring alone costs honest networks nothing (CIFAR-10's classes look the
same mirrored) and a lookup 58 points; the shift catches a table that also holds mirrored copies
(3 pixels cost such a lookup about 18 points). Stronger noise is no probe: the fast recipe's
whitening layer amplifies it (8/255 costs that network 48 points, a lookup nothing).

The grading side sends the child ``probe_images`` (altered copies of a secret subset of the test
images) with the test set and reads the two accuracies with ``memorisation_check``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.data import Cifar10
from grader.integrity.secret import seed_from


@dataclass(frozen=True)
class MemorisationProbe:
    """The second pass of the memorisation check (its thresholds: ``MemorisationThresholds``).

    Attributes:
        subset_size: test images that also go to the child as perturbed copies (images; the whole
            test set when it is smaller). 1,000 adds a tenth to the inference time and measures
            each accuracy to about +-3 points (95%), far finer than the 20-point drop that flags.
        seed: with the data fingerprint and the grading secret, picks the subset and the
            perturbation: fixed for a data set and a secret, so every submission is probed with
            the same copies.
    """

    subset_size: int = 1000
    seed: int = 1


MEMORISATION = MemorisationProbe()


@dataclass(frozen=True)
class MemorisationThresholds:
    """How the perturbed copies are made and when an accuracy drop is flagged."""

    noise_std: float = 1.0           # Gaussian noise, in pixel units of 0..255 (see the module doc)
    shift_pixels: int = 3            # each copy moves by exactly this many pixels, up, down, left or right
    mirror: bool = True              # each copy is mirrored left to right
    min_clean_accuracy: float = 0.5  # below this a drop says nothing about memorising (fraction)
    max_drop: float = 0.15           # clean minus altered accuracy that raises the flag (fraction)


THRESHOLDS = MemorisationThresholds()


def perturb(images: np.ndarray, seed: int, thresholds: MemorisationThresholds = THRESHOLDS
            ) -> np.ndarray:
    """Altered copies: each image mirrored, moved by ``shift_pixels`` in a random direction (edges
    repeated) and given faint noise.

    Args:
        images: uint8, shape (n, h, w, c).
        seed: the same seed gives the same copies (evaluation stays deterministic).
    Returns:
        a new uint8 array of the same shape.
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (n, h, w, c), got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    s = thresholds.shift_pixels
    rng = np.random.default_rng(seed)
    source = images[:, :, ::-1] if thresholds.mirror else images
    padded = np.pad(source, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")   # (n, h+2s, w+2s, c)
    offsets = np.array([(0, s), (2 * s, s), (s, 0), (s, 2 * s)])             # up, down, left, right
    dy, dx = offsets[rng.integers(0, 4, size=n)].T
    rows = dy[:, None] + np.arange(h)[None, :]                                # (n, h)
    cols = dx[:, None] + np.arange(w)[None, :]                                # (n, w)
    moved = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    noise = rng.normal(0.0, thresholds.noise_std, size=moved.shape)
    return np.clip(moved + noise, 0, 255).round().astype(np.uint8)


def memorisation_flag(clean_acc: float, perturbed_acc: float,
                      thresholds: MemorisationThresholds = THRESHOLDS) -> str | None:
    """A sentence for the report when the accuracies look like memorised test images, else None.

    Args:
        clean_acc: accuracy on the test images, as a fraction in [0, 1].
        perturbed_acc: accuracy on ``perturb(test images)``, same scale.
    """
    for name, value in (("clean_acc", clean_acc), ("perturbed_acc", perturbed_acc)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    drop = clean_acc - perturbed_acc
    if clean_acc < thresholds.min_clean_accuracy or drop < thresholds.max_drop:
        return None
    return (f"possible memorisation of the test set: accuracy falls from {clean_acc:.1%} to "
            f"{perturbed_acc:.1%} on mirrored copies moved by {thresholds.shift_pixels} pixels "
            f"(a network that learned to see loses a few points)")


def probe_images(data: Cifar10, probe: MemorisationProbe) -> tuple[np.ndarray, np.ndarray]:
    """(sorted indices of the probed test images, their perturbed copies: uint8 (m, 32, 32, 3))."""
    rng = np.random.default_rng(seed_from(data.fingerprint, "memorisation", str(probe.seed)))  # secret: see there
    n = len(data.test_images)
    subset = np.sort(rng.choice(n, size=min(probe.subset_size, n), replace=False))
    return subset, perturb(np.asarray(data.test_images[subset]), seed=int(rng.integers(2**32)))


def memorisation_check(clean_logits: np.ndarray, perturbed_logits: np.ndarray, labels: np.ndarray) -> dict:
    """The ``memorisation`` object of results.json: accuracies on the probed images and their copies.

    Args:
        clean_logits: (m, k) logits of the probed test images.
        perturbed_logits: (m, k) logits of their perturbed copies, same order.
        labels: (m,) their true classes.
    """
    clean = float((clean_logits.argmax(axis=1) == labels).mean())
    perturbed = float((perturbed_logits.argmax(axis=1) == labels).mean())
    flag = memorisation_flag(clean, perturbed)
    detail = flag or (f"accuracy {clean:.1%} on {len(labels)} test images and {perturbed:.1%} on "
                      "mirrored, shifted copies: no sign of a memorised test set")
    return {"clean_subset_acc": clean, "perturbed_acc": perturbed, "flagged": flag is not None,
            "detail": detail, "count": int(len(labels))}
