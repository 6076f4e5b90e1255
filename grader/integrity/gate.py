"""What the rubric may read of a grade, given its integrity facts (pure).

    graded_metrics(result, trust_reported) -> (metrics, reasons)

A claim the network does not bear out earns no points: its history metric is withheld, and the
check that reads it fails saying why. So is a fact the submission's own code reported (parameter
count, MACs, latency, layers: a ``model.py`` can rewrite the child's reply) unless the rubric
trusts reported facts.
"""

from __future__ import annotations

from grader.metric_names import AGGREGATES
from grader.results import GradeResult, metrics

REPORTED = "reported"
# Why a withheld metric's check failed (reports recognise these and word them in their language).
HISTORY_UNREAD = "the history handed in was not read: {error}"
NOT_BORNE_OUT = "the claim is not borne out: {finding}"
REPORTED_FACT = ("this fact was reported by the submission's own code, which could have rewritten it "
                 "(a TA may accept it: trust_reported = true in the rubric's [submission] table)")


def graded_metrics(result: GradeResult, *, trust_reported: bool = False
                   ) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics of ``result`` the rubric may check, and why the withheld ones are missing."""
    found = metrics(result)
    reasons: dict[str, str] = {}
    error = result.submission.history_error
    if error is not None and result.history is None:  # a run folder's checkpoint may carry one
        reasons["history"] = HISTORY_UNREAD.format(error=error)
    for mismatch in result.integrity.mismatches:
        name = f"history.{mismatch.key}"
        _withhold(found, name)
        reasons[name] = NOT_BORNE_OUT.format(finding=mismatch.sentence())
    if result.model.source == REPORTED and not trust_reported:
        for name in [k for k in found if k.startswith("model.")]:
            del found[name]
        reasons["model"] = REPORTED_FACT
    return found, reasons


def _withhold(found: dict[str, float], name: str) -> None:
    for key in (name, *(f"{name}.{a}" for a in AGGREGATES)):
        found.pop(key, None)

