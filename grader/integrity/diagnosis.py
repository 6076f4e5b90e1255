"""Input-contract diagnosis: when a network scores far below what it should, find the convention
it was trained with (pixel range, normalisation, channel order) or the order of its outputs.

    CONVENTIONS                                   the common ways students feed CIFAR-10
    needs_diagnosis(accuracy, claimed, classes) -> bool
    best_permutation(confusion) -> perm           outputs -> true classes, an assignment problem
    choose(slice) -> Choice                       the best convention and output order on one slice
    confirm(choice, ...) -> [Diagnosis]           checked on another slice (pure, like the rest)

The grade stands as measured; a diagnosis tells the student the exact ``submission.toml`` lines
that would fix it and what accuracy they would give.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from grader.evaluate import wilson_interval

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Convention:
    """One way to turn uint8 pixels into the network's input: ``(pixels / 255 * scale - mean) / std``
    per channel, the channels in RGB or BGR order.

    Attributes:
        name: how the report names it.
        scale: 1.0 for pixels in 0..1 (ToTensor), 255.0 for 0..255.
        mean, std: per-channel normalisation in the ``scale`` units, or None for none.
        bgr: the channels reversed (OpenCV's order).
        normalisation: which ``mean`` and ``std`` these are, for reports in any language:
            ``none``, ``half`` (0.5 each), ``cifar10``, ``imagenet``; ``declared`` for a
            submission's own ``[input]`` table.
    """

    name: str
    scale: float = 1.0
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    bgr: bool = False
    normalisation: str = "none"

    def facts(self) -> dict:
        """What the convention is, by name: results.json's ``convention`` of a diagnosis."""
        return {"scale": self.scale, "normalisation": self.normalisation, "channels": "bgr" if self.bgr else "rgb"}

    def input_table(self) -> dict:
        """The ``[input]`` table of submission.toml (and of the child's request)."""
        table = {"scale": self.scale, "mean": list(self.mean) if self.mean else None,
                 "std": list(self.std) if self.std else None}
        return {**table, "channels": "bgr"} if self.bgr else table

    def toml_lines(self) -> list[str]:
        """The lines of submission.toml that declare this convention."""
        lines = ["[input]", f"scale = {self.scale:g}"]
        if self.mean is not None:
            lines += [f"mean = [{', '.join(f'{m:g}' for m in self.mean)}]",
                      f"std = [{', '.join(f'{s:g}' for s in self.std)}]"]
        if self.bgr:
            lines.append('channels = "bgr"')
        return lines


def _conventions() -> tuple[Convention, ...]:
    rgb = (Convention("pixels 0..1 (ToTensor), no normalisation"),
           Convention("Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))", mean=HALF, std=HALF, normalisation="half"),
           Convention("CIFAR-10 mean and std", mean=CIFAR_MEAN, std=CIFAR_STD, normalisation="cifar10"),
           Convention("ImageNet mean and std", mean=IMAGENET_MEAN, std=IMAGENET_STD, normalisation="imagenet"),
           Convention("pixels 0..255, no normalisation", scale=255.0))
    bgr = tuple(replace(c, name=c.name + ", channels BGR", bgr=True) for c in rgb)
    return rgb + bgr


CONVENTIONS = _conventions()


def convention_of(facts: Mapping | None) -> Convention | None:
    """The one of ``CONVENTIONS`` that ``facts`` (``Convention.facts``) describe; None for none
    (results.json written before diagnoses stored them, or a value no convention has)."""
    return next((c for c in CONVENTIONS if facts and c.facts() == dict(facts)), None)


@dataclass(frozen=True)
class DiagnosisThresholds:
    """When to diagnose, and when a finding is worth reporting.

    Attributes:
        below_claim: accuracy this far below the claimed final test accuracy (fraction) triggers.
        floor: accuracy below this triggers (fraction).
        min_gain: a convention or permutation is reported only when it gains this much over the
            declared one on the confirming slice, beyond both intervals (fraction).
    """

    below_claim: float = 0.15
    floor: float = 0.30
    min_gain: float = 0.10


THRESHOLDS = DiagnosisThresholds()


def needs_diagnosis(accuracy: float, claimed_test_acc: float | None, classes: int,
                    thresholds: DiagnosisThresholds = THRESHOLDS) -> bool:
    """Whether the accuracy is low enough to look for a wrong input contract."""
    if accuracy < thresholds.floor or accuracy < 1.0 / classes:
        return True
    return claimed_test_acc is not None and claimed_test_acc - accuracy > thresholds.below_claim


def best_permutation(confusion: np.ndarray) -> np.ndarray:
    """``perm[output] = class``: the relabelling of the network's outputs that puts the most images
    on the diagonal (``confusion``: rows true class, columns output). A linear assignment."""
    from scipy.optimize import linear_sum_assignment

    true_class, output = linear_sum_assignment(np.asarray(confusion), maximize=True)
    perm = np.empty(len(output), dtype=np.int64)
    perm[output] = true_class
    return perm


def confusion_of(predictions: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: rows true class, columns prediction."""
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (labels, predictions), 1)
    return out


@dataclass(frozen=True)
class Diagnosis:
    """A likely cause of a low score, and its fix.

    Attributes:
        flag: ``input-convention`` or ``class-order``.
        cause: what the network seems to expect, in words.
        fix: the exact submission.toml lines that declare it.
        accuracy: what the network scores with the fix, on the confirming slice.
        accuracy_ci: its 95% interval.
        also: other conventions that score the same within noise (names).
        convention: for ``input-convention``, the convention the network expects (reports word
            ``cause`` from it in their language); None otherwise.
    """

    flag: str
    cause: str
    fix: tuple[str, ...]
    accuracy: float
    accuracy_ci: tuple[float, float]
    also: tuple[str, ...] = ()
    convention: Convention | None = None

    def to_json(self) -> dict:
        return {"flag": self.flag, "cause": self.cause, "fix": list(self.fix), "accuracy": self.accuracy,
                "accuracy_ci": list(self.accuracy_ci), "also": list(self.also),
                "convention": self.convention.facts() if self.convention else None}


@dataclass(frozen=True)
class Slice:
    """Predictions on one slice of held-out images under each convention (same order as the
    conventions diagnosed), and the slice's labels."""

    predictions: np.ndarray  # (conventions, n) int
    labels: np.ndarray       # (n,) int


@dataclass(frozen=True)
class Choice:
    """What the choosing slice says: the best convention (index), the relabelling of its outputs
    that fits best, and the conventions that score the same within noise."""

    best: int
    perm: np.ndarray
    also: tuple[int, ...] = ()


def choose(slice_: Slice, *, declared: int, classes: int) -> Choice:
    """The convention and output order that score best on ``slice_`` (the first of equals, so the
    declared convention, listed first, wins a tie), and those within noise of it."""
    best, perm = _best_pair(slice_, classes)
    others = [i for i in range(len(slice_.predictions)) if i not in (best, declared)]
    return Choice(best, perm, tuple(_same_within_noise(slice_, best, others)))


def confirm(choice: Choice, declared_predictions: np.ndarray, best_predictions: np.ndarray, labels: np.ndarray,
            conventions: tuple[Convention, ...], *, declared: int, classes: int,
            thresholds: DiagnosisThresholds = THRESHOLDS) -> list[Diagnosis]:
    """Check ``choice`` on a second slice (the predictions of the declared and the chosen
    convention there, and its ``labels``).

    Returns:
        at most one input-convention and one class-order diagnosis, each confirmed to gain at
        least ``min_gain`` beyond both intervals; [] for a network that is declared correctly.
    """
    best, perm, n = choice.best, choice.perm, len(labels)
    hits = lambda predictions: int((predictions == labels).sum())  # noqa: E731
    base, plain, fixed = hits(declared_predictions), hits(best_predictions), hits(perm[best_predictions])
    if not _gains(fixed, base, n, thresholds.min_gain):
        return []
    fixed_ci = wilson_interval(fixed, n)
    found = []
    if best != declared:
        found.append(Diagnosis("input-convention", f"the network expects {conventions[best].name}",
                               tuple(conventions[best].toml_lines()), fixed / n, fixed_ci,
                               tuple(conventions[i].name for i in choice.also), conventions[best]))
    if not np.array_equal(perm, np.arange(classes)) and _gains(fixed, plain, n, thresholds.min_gain):
        from grader.data import CLASSES

        order = [CLASSES[c] for c in perm] if classes == len(CLASSES) else [str(c) for c in perm]
        found.append(Diagnosis("class-order", "the network's outputs are in another class order",
                               ("classes = [" + ", ".join(f'"{c}"' for c in order) + "]",), fixed / n, fixed_ci))
    return found


def diagnose(choosing: Slice, confirming: Slice, conventions: tuple[Convention, ...], declared: int, *,
             classes: int, thresholds: DiagnosisThresholds = THRESHOLDS) -> list[Diagnosis]:
    """``choose`` on one slice, ``confirm`` on the other, each slice holding every convention's
    predictions (``declared``: the index of what the network was graded with)."""
    choice = choose(choosing, declared=declared, classes=classes)
    return confirm(choice, confirming.predictions[declared], confirming.predictions[choice.best],
                   confirming.labels, conventions, declared=declared, classes=classes, thresholds=thresholds)


def _best_pair(choose: Slice, classes: int) -> tuple[int, np.ndarray]:
    """The convention whose predictions, relabelled by their best permutation, are right most
    often on ``choose`` (the first of equals: the declared one comes first)."""
    best, best_hits, best_perm = 0, -1, np.arange(classes)
    for i, predictions in enumerate(choose.predictions):
        perm = best_permutation(confusion_of(predictions, choose.labels, classes))
        if (perm[predictions] == predictions).all():
            perm = np.arange(classes)  # no relabelling needed: keep the identity
        hits = int((perm[predictions] == choose.labels).sum())
        if hits > best_hits:
            best, best_hits, best_perm = i, hits, perm
    return best, best_perm


def _gains(hits: int, base: int, n: int, margin: float) -> bool:
    """Whether ``hits`` out of ``n`` beats ``base`` by ``margin`` beyond both 95% intervals."""
    return hits > base and wilson_interval(hits, n)[0] - wilson_interval(base, n)[1] >= margin - 1e-12


def _same_within_noise(slice_: Slice, best: int, others: list[int]) -> list[int]:
    n = len(slice_.labels)
    hits = (slice_.predictions == slice_.labels[None, :]).sum(axis=1)
    lo_best = wilson_interval(int(hits[best]), n)[0]
    return [i for i in others if wilson_interval(int(hits[i]), n)[1] >= lo_best]
