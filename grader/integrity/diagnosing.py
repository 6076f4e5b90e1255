"""The input diagnosis, run as follow-up requests to the grading child, which keeps the network
loaded (no second start, no second load):

    after the grade's own reply       low enough to diagnose? (``needs_diagnosis``)
    1. the choosing slice (100)        under every common convention but the declared one
    2. the confirming slice (200)      under the chosen convention, if it is not the declared one;
                                       ``confirm`` against the declared convention's predictions,
                                       which the grade's own reply already holds for both slices
    3. (a rubric with apply_diagnosis) every image of the grade's request under the confirmed
                                       convention, so the grade can be taken with the fix

Both slices are test images the child has already seen in the grade's request.
"""

from __future__ import annotations

import importlib
import threading
from typing import Callable, Mapping

import numpy as np

from grader.data import Cifar10
from grader.integrity.diagnosis import (CONVENTIONS, Choice, Convention, Diagnosis, Slice, choose, confirm,
                                        needs_diagnosis)
from grader.integrity.secret import seed_from
from grader.runner.launch import ChildOutput, FollowUp

# Test images to choose a convention on (it only ranks them: a wrong input convention costs tens
# of points), and to confirm the choice on: fewer could not confirm a 10-point gain beyond both
# intervals. A smaller test set than both together gets no diagnosis.
CHOOSE_SLICE = 100
CONFIRM_SLICE = 200


def declared_convention(table: Mapping | None) -> Convention:
    """The ``[input]`` table the network was graded with, as a Convention."""
    table = dict(table or {})
    mean, std = table.get("mean"), table.get("std")
    return Convention("the declared input", float(table.get("scale", 1.0)), tuple(mean) if mean else None,
                      tuple(std) if std else None, table.get("channels") == "bgr", normalisation="declared")


class DiagnosisPlan:
    """Plans the follow-up requests of one grade's diagnosis (a ``grader.runner.launch.Planner``)
    and reads what they found.

    Args:
        data: the test set (images and labels stay here; only images are sent).
        claimed: the claimed final test accuracy, given the first reply's header (a run folder's
            history arrives with it), or None.
        reorder: the first reply's test logits put in the dataset's class order.
        resend: the grade's request (its images, in order) to run again under a confirmed input
            convention, so that ``fixed`` can return the whole grade's logits with the fix; None
            when the rubric grades as handed in.
    """

    def __init__(self, data: Cifar10, *, claimed: Callable[[dict], float | None],
                 reorder: Callable[[np.ndarray], np.ndarray], resend: np.ndarray | None = None):
        self.data, self.claimed, self.reorder, self.resend = data, claimed, reorder, resend
        n = len(data.test_labels)
        self.possible = n >= CHOOSE_SLICE + CONFIRM_SLICE
        rng = np.random.default_rng(seed_from(data.fingerprint, "diagnosis"))
        picked = rng.choice(n, size=min(CHOOSE_SLICE + CONFIRM_SLICE, n), replace=False)
        self.choosing, self.confirming = picked[:CHOOSE_SLICE], picked[CHOOSE_SLICE:]
        self.conventions: tuple[Convention, ...] = ()
        self.graded: np.ndarray | None = None  # the declared convention's predictions, all test images
        self.choice: Choice | None = None
        self.found: tuple[Diagnosis, ...] = ()
        self.refed: np.ndarray | None = None  # the grade's request under the fix, class-ordered

    def __call__(self, reply: ChildOutput) -> FollowUp | None:
        stage = len(reply.more)
        if stage == 0:
            return self._after_grade(reply)
        if stage == 1:
            return self._after_choosing(reply.more[0])
        if stage == 2 and self.choice is not None and self.choice.best != 0:
            return self._confirmed(self.reorder(reply.more[1]).argmax(1))
        self.refed = self.reorder(reply.more[-1])
        return None

    def _after_grade(self, reply: ChildOutput) -> FollowUp | None:
        labels = self.data.test_labels
        predictions = self.reorder(reply.logits[:len(labels)]).argmax(1)
        accuracy = float((predictions == labels).mean())
        if not self.possible or not needs_diagnosis(accuracy, self.claimed(reply.info), len(self.data.classes)):
            return None
        # The assignment solver's import (about 0.6 s) overlaps the child's work on the slice.
        threading.Thread(target=importlib.import_module, args=("scipy.optimize",), daemon=True).start()
        own = declared_convention(reply.info.get("input"))
        self.graded = predictions
        self.conventions = (own, *(c for c in CONVENTIONS if c.input_table() != own.input_table()))
        return FollowUp(self.data.test_images[self.choosing], [c.input_table() for c in self.conventions[1:]])

    def _after_choosing(self, logits: np.ndarray) -> FollowUp | None:
        k = len(self.choosing)
        others = [self.reorder(logits[i * k:(i + 1) * k]).argmax(1) for i in range(len(self.conventions) - 1)]
        slice_ = Slice(np.stack([self.graded[self.choosing], *others]), self.data.test_labels[self.choosing])
        self.choice = choose(slice_, declared=0, classes=len(self.data.classes))
        if self.choice.best == 0:  # the declared convention's predictions on the other slice are here
            return self._confirmed(self.graded[self.confirming])
        return FollowUp(self.data.test_images[self.confirming], [self.conventions[self.choice.best].input_table()])

    def _confirmed(self, best_predictions: np.ndarray) -> FollowUp | None:
        self.found = tuple(confirm(self.choice, self.graded[self.confirming], best_predictions,
                                   self.data.test_labels[self.confirming], self.conventions, declared=0,
                                   classes=len(self.data.classes)))
        if self.resend is None or not any(d.flag == "input-convention" for d in self.found):
            return None
        return FollowUp(self.resend, [self.conventions[self.choice.best].input_table()])

    def findings(self) -> tuple[Diagnosis, ...]:
        """The confirmed diagnoses; () when none was needed or the conversation ended early."""
        return self.found

    def fixed(self, logits: np.ndarray) -> np.ndarray | None:
        """The grade's logits (``logits``: the grade's own, class-ordered) with every confirmed fix
        applied: the input convention's run, then the outputs relabelled; None when there is
        nothing to apply (no finding, or the run under the fix did not come back)."""
        if not self.found or self.resend is None:
            return None
        base = logits
        if any(d.flag == "input-convention" for d in self.found):
            if self.refed is None:
                return None
            base = self.refed
        if not any(d.flag == "class-order" for d in self.found):
            return base
        relabelled = np.empty_like(base)
        relabelled[:, self.choice.perm] = base  # output j is class perm[j]
        return relabelled
