"""Integrity findings in a report's language, worded from the numbers results.json keeps (pure).

    mismatch(m, t) -> str                   a history claim the network does not bear out
    fit(test_acc, train_acc, t) -> str      the test set fits far better than training images
    memorisation(probe, t) -> str           accuracy collapses on altered copies of test images
    cause(diagnosis, t) -> str              what a diagnosed network expects
    applied(fix, t) -> str                  the grade was taken with the diagnosed fix
    check_reason(detail, result, t, lang) -> str | None   why integrity withheld a check's value

results.json keeps English sentences beside these numbers for TAs and tools; reports compose
their own from the numbers with the templates of grader/report/i18n/ (``t``), so a Chinese
report reads Chinese. A fact the numbers cannot word (a hand-edited key, a diagnosis written
before its convention was stored) is shown as the sentence results.json holds.
"""

from __future__ import annotations

from grader.integrity.claims import Mismatch
from grader.integrity.diagnosis import Diagnosis
from grader.integrity.gate import HISTORY_UNREAD, NOT_BORNE_OUT, REPORTED_FACT
from grader.integrity.memorisation import THRESHOLDS as PROBE
from grader.messages import said
from grader.results import AppliedFix, GradeResult, Memorisation

# The history keys a claim can be about: the label naming it and the images it is measured on.
CLAIMED = {"train_acc": ("integrity_train_acc", "integrity_train_images"),
           "test_acc": ("integrity_test_acc", "integrity_test_images")}


def percent(value: float) -> str:
    """0.9512 -> '95.12%': accuracies as the report's integrity table shows them."""
    return f"{value * 100:.2f}%"


def mismatch(m: Mismatch, t: dict) -> str:
    """The claim, what the network does, and the best an honest log could have said."""
    if m.key == "train_loss":
        return t["integrity_claim_loss"].format(claimed=f"{m.claimed:.3f}", measured=f"{m.measured:.3f}",
                                                allowed=f"{m.allowed:.3f}")
    if m.key not in CLAIMED:
        return m.sentence()
    name, images = CLAIMED[m.key]
    return t["integrity_claim_acc"].format(name=t[name], images=t[images], claimed=percent(m.claimed),
                                           measured=percent(m.measured), allowed=percent(m.allowed))


def fit(test_acc: float, train_acc: float, t: dict) -> str:
    """Accuracy on the test set against the training images (fractions), and the gap."""
    return t["integrity_fit"].format(test=percent(test_acc), train=percent(train_acc),
                                     gap=percent(test_acc - train_acc))


def memorisation(probe: Memorisation, t: dict) -> str:
    """The probe's two accuracies, and how its copies were altered."""
    return t["integrity_memorisation"].format(clean=percent(probe.clean_subset_acc),
                                              altered=percent(probe.perturbed_acc), pixels=PROBE.shift_pixels)


def cause(d: Diagnosis, t: dict) -> str:
    """What the network seems to expect: its input convention in words, or another class order."""
    if d.flag == "class-order":
        return t["integrity_class_order"]
    c = d.convention
    if d.flag != "input-convention" or c is None:
        return d.cause
    parts = [t["integrity_scale_255" if c.scale == 255 else "integrity_scale_1"],
             t[f"integrity_norm_{c.normalisation}"]] + ([t["integrity_channels_bgr"]] if c.bgr else [])
    return t["integrity_expects"].format(input=t["list_sep"].join(parts))


def applied(fix: AppliedFix, t: dict) -> str:
    """The share of the points the fix cost, and the accuracy as handed in."""
    return t["integrity_applied"].format(penalty=f"{fix.penalty:.0%}", accuracy=percent(fix.accuracy_as_handed_in))


def check_reason(detail: str, result: GradeResult, t: dict, lang: str) -> str | None:
    """A failed check's ``detail`` in ``lang`` (``t``: its strings) when integrity wrote it (a
    claim not borne out, a history not read, a fact the submission reported); None for any other."""
    for m in result.integrity.mismatches:
        if detail == NOT_BORNE_OUT.format(finding=m.sentence()):
            return t["integrity_reason_claim"].format(finding=mismatch(m, t))
    if detail == REPORTED_FACT:
        return t["integrity_reason_reported"]
    error = result.submission.history_error
    if error is not None and detail == HISTORY_UNREAD.format(error=error):
        return t["integrity_reason_history"].format(error=said(error, lang))
    return None
