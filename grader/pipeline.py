"""The one grading pipeline: a hand-in in, a GradeResult out; then its files.

    grade_one(submission, data=..., rubric=...) -> GradeResult     never raises for a bad hand-in
    write_outputs(result, folder, parts) -> Written                results.json, report, Gradescope
    preflight(sandbox=...)                                         can this machine grade at all?

    inspect -> run the child (images in, logits out) -> evaluate -> integrity -> rubric -> result

Every front end (``grade``, ``check``, ``gradescope``, ``train --report``, each worker of
``batch``) is these two calls with its own options.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from grader.data import CLASSES, Cifar10
from grader.errors import GraderError
from grader.evaluate import evaluate
from grader.messages import say
from grader.integrity.assess import IntegrityImages, assess
from grader.integrity.diagnosing import DiagnosisPlan
from grader.integrity.gate import graded_metrics
from grader.integrity.memorisation import MEMORISATION, MemorisationProbe
from grader.robustness.request import corrupted_set, measure_robustness, robustness_size, with_room
from grader.results import (AppliedFix, GradeResult, Integrity, Memorisation, ModelFacts, SandboxFacts, Student,
                            Timings, as_error, new_result, with_verdict, write_results)
from grader.rubric import Rubric, check, load_rubric
from grader.runner.launch import ChildOutput, run_submission
from grader.submission import Submission, inspect_submission, normalise_history


def grade_one(submission: str | Path, *, data: Cifar10, rubric: Rubric | None = None, sandbox: bool = True,
              student: str | None = None, kept=None,
              memorisation: MemorisationProbe | None = MEMORISATION, robustness: int | None = None) -> GradeResult:
    """Grade one hand-in (file or folder) on ``data``'s test set.

    The child receives the test images and perturbed copies of a secret subset of them, shuffled
    together in one request, so it cannot tell which are which; the metrics come from the clean
    images, and the copies feed the memorisation probe.

    Args:
        submission: what the student handed in.
        data: the CIFAR-10 test set (its labels stay in this process).
        rubric: the checks to apply [default: the homework's assertions].
        sandbox: False runs the submission unsandboxed; the result flags it.
        student: the id to record (a gradebook's key), instead of the manifest's or the file's name.
        memorisation: how to probe for a memorised test set; None skips the probe.
        robustness: also measure accuracy under common corruptions on this many test images per
            corruption and severity (sent in the same request); None: only when the rubric checks it.
        kept: a ``grader.similarity.Kept`` to fill with the weight fingerprint (read here, from the
            file) and the test-set logits, for the class's similarity step; None keeps nothing.

    Returns:
        the grade: GRADED, or ERROR with a message saying what is wrong and what to do.
    """
    rubric = rubric or load_rubric()
    started = time.perf_counter()
    result = new_result(submission, dataset=data.identity(), sandbox=sandbox)
    try:
        with inspect_submission(submission, rules=rubric.intake) as inspected:  # removes an unpacked archive
            result = _with_submission(result, inspected)
            if kept is not None:
                kept.take_weights(inspected.weights, own=frozenset(b.pickled for b in inspected.classes))
            size = robustness_size(robustness, rubric)  # its images widen the child's wall clock
            result = _run_and_measure(result, inspected, data, with_room(rubric, size, len(data.test_labels)),
                                      sandbox=sandbox, memorisation=memorisation, kept=kept, robustness=size)
    except GraderError as exc:
        result = as_error(result, str(exc), detail=exc.detail)
    except Exception as exc:  # a grader bug must not stop a batch; it is reported as one
        result = as_error(result, f"the grader failed unexpectedly ({type(exc).__name__}: {exc}); "
                                  "please report this with the submission")
    if student:
        result = result.replace(student=Student(student, result.student.name))
    found, reasons = graded_metrics(result, trust_reported=rubric.intake.trust_reported)
    verdict = check(found, rubric, not_graded=None if result.graded else (result.student_error or ""),
                    reasons=reasons or None)
    if result.integrity.applied:  # graded with the diagnosed fix: the rubric's share of the points goes
        verdict = dataclasses.replace(verdict, score=verdict.score * (1 - result.integrity.applied.penalty))
    return with_verdict(result, verdict, total_seconds=time.perf_counter() - started)


def _run_and_measure(result: GradeResult, inspected: Submission, data: Cifar10, rubric: Rubric, *,
                     sandbox: bool, memorisation: MemorisationProbe | None, kept=None,
                     robustness: int | None = None) -> GradeResult:
    n = len(data.test_images)
    extra = IntegrityImages.draw(data, memorisation)
    corrupted = corrupted_set(data, robustness) if robustness else None
    images = extra.images(data)  # the corrupted copies follow, when asked for: one request, sliced below
    sent = corrupted.after(images) if corrupted is not None else images
    order = lambda logits: _in_dataset_order(logits, inspected.manifest.get("classes"), data.classes)  # noqa: E731
    handed_in = result.history
    plan = DiagnosisPlan(data, claimed=lambda info: _claimed_test_acc(handed_in, info, inspected), reorder=order,
                         resend=sent if rubric.intake.apply_diagnosis else None)
    child = run_submission(inspected, sent, classes=len(data.classes), seed_text=data.fingerprint,
                           sandbox=sandbox, limits=rubric.limits, plan=plan)
    logits, applied = _with_fix(order(child.logits), plan, data, penalty=rubric.intake.diagnosis_penalty)
    evaluation = evaluate(logits[:n], data.test_labels, data.classes, data.test_images)
    if kept is not None:
        kept.take_logits(logits[:n])
    result = _with_child(result.replace(evaluation=evaluation), child, own_code=_own_code_ran(inspected))
    if result.history is None and child.info.get("history"):
        result = result.replace(history=_checkpoint_history(child.info["history"], inspected.weights.name))
    found = assess(extra, logits[:len(images)], data, result.history)
    if corrupted is not None:
        result = result.replace(robustness=measure_robustness(corrupted, logits[len(images):], data))
    integrity = Integrity(memorisation=Memorisation(**found.memorisation) if found.memorisation else None,
                          training=found.training, mismatches=found.mismatches, fit=found.fit,
                          diagnosis=plan.findings(), applied=applied)
    if applied:
        fix = "; ".join(line for d in plan.findings() for line in d.fix if line != "[input]")
        result = result.replace(submission=dataclasses.replace(result.submission, notes=(
            *result.submission.notes, say("note.diagnosed_fix", fix=fix, penalty=f"{applied.penalty:.0%}",
                                          accuracy=f"{applied.accuracy_as_handed_in:.2%}"))))
    return result.replace(integrity=integrity)


def _with_fix(logits: np.ndarray, plan: DiagnosisPlan, data: Cifar10, *,
              penalty: float) -> tuple[np.ndarray, AppliedFix | None]:
    """The logits to grade with: the diagnosis's fix applied when the rubric asked for it and one
    was confirmed (``plan.fixed``), else ``logits`` as handed in."""
    fixed = plan.fixed(logits)
    if fixed is None:
        return logits, None
    n = len(data.test_labels)
    as_handed_in = float((logits[:n].argmax(1) == data.test_labels).mean())
    return fixed, AppliedFix(accuracy_as_handed_in=as_handed_in, penalty=penalty)


def _claimed_test_acc(history: Mapping | None, info: dict, inspected: Submission) -> float | None:
    """The final test accuracy the hand-in claims: its history file's, else its run folder's
    (which arrives in the child's reply ``info``)."""
    if history is None and info.get("history"):
        history = _checkpoint_history(info["history"], inspected.weights.name)
    claimed = (history or {}).get("test_acc") or [None]
    return claimed[-1]


def _own_code_ran(inspected: Submission) -> bool:
    """Whether code the student wrote runs in the child (so it could rewrite the reply)."""
    return inspected.entry is not None or any(binding.file for binding in inspected.classes)


def _with_submission(result: GradeResult, inspected: Submission) -> GradeResult:
    """Record what was handed in (before it runs)."""
    facts = result.submission
    return result.replace(
        student=Student(str(inspected.student.get("id") or result.student.id),
                        str(inspected.student.get("name") or result.student.name)),
        history=inspected.history,
        submission=type(facts)(path=str(inspected.path), sha256=inspected.sha256, format=inspected.form,
                               files=tuple(inspected.files), manifest=dict(inspected.manifest),
                               input=inspected.input, notes=(*facts.notes, *_intake_notes(inspected)),
                               history_error=inspected.history_file and inspected.history_file.error))


def _with_child(result: GradeResult, child: ChildOutput, *, own_code: bool) -> GradeResult:
    """Record what only the child could report: the network's facts, its form and input
    (``own_code``: the student's code ran there, so the facts are as it reported them)."""
    info = child.info
    facts = result.submission
    timings = info.get("timings", {})
    return result.replace(
        submission=dataclasses.replace(facts, format=info.get("form", facts.format), input=info.get("input"),
                                       notes=(*facts.notes, *info.get("notes", ()))),
        model=ModelFacts(parameters=info.get("parameters"), macs_per_image=info.get("macs_per_image"),
                         latency_ms_per_image=info.get("latency_ms_per_image"),
                         layers=tuple(info.get("layers", ())), blocks=dict(info.get("blocks") or {}),
                         precision=info.get("precision"),
                         source="reported" if own_code else "grader"),
        device=str(info.get("device", "cpu")),
        sandbox=SandboxFacts(bool(child.sandbox.get("enabled")), child.sandbox.get("warning")),
        timings=Timings(load=timings.get("load"), inference=timings.get("inference")),
    )


def _intake_notes(inspected: Submission) -> tuple[str, ...]:
    """What reading the hand-in changed or could not do: history keys and units, an unreadable
    history, the order of the network's outputs."""
    history, classes = inspected.history_file, inspected.manifest.get("classes")
    notes = list(history.notes) if history else []
    if history and history.error:
        notes.append(_unread_history_note(history))
    if classes and list(classes) != list(CLASSES):
        notes.append(say("note.reordered", classes=", ".join(classes)))
    return tuple(notes)


def _unread_history_note(history) -> str:
    """The note for a history that could not be read, saying why (and what to do, when known)."""
    detail = history.error_detail
    if detail is None:
        return f"the history was not read, so the checks on it fail (the network is graded): {history.error}"
    return say("note.history_unread" if detail.hint("en") else "note.history_unread_bare", error=detail)


def _in_dataset_order(logits: np.ndarray, classes: list[str] | None, names: list[str]) -> np.ndarray:
    """``logits`` (n, classes) with column j for the dataset's class ``names[j]``, where the manifest's
    ``classes`` gives the network's own order (CIFAR-10's names, see ``parse_classes``)."""
    if not classes:
        return logits
    missing = [name for name in names if name not in classes]
    if missing or len(names) != len(classes):
        raise GraderError(say("classes.unmatched", names=", ".join(names)))
    return logits[:, [list(classes).index(name) for name in names]]


def _checkpoint_history(raw: object, name: str) -> dict | None:
    """The history a grader checkpoint carries, validated like a history file (None if unusable)."""
    try:
        return normalise_history(raw, where=name)
    except GraderError:
        return None


def preflight(*, sandbox: bool) -> None:
    """Raise GraderError when this machine cannot grade: no working sandbox (when asked for), or
    no usable grading secret."""
    from grader.integrity.secret import grading_secret

    if sandbox:
        from grader.sandbox import check_available

        check_available()
    grading_secret()


# --- outputs -------------------------------------------------------------------------------

GRADESCOPE_NAME = "gradescope/results.json"


@dataclass(frozen=True)
class OutputParts:
    """Which files a grade writes beside results.json.

    Attributes:
        report: report.html.
        pdf: report.pdf too (with ``report``).
        lang: the language of the report and of gradescope/results.json, "en" or "zh".
        gradescope: gradescope/results.json, with check visibility from ``public``.
        public: check name -> shown to students before publication (Gradescope's visibility).
    """

    report: bool = True
    pdf: bool = True
    lang: str = "en"
    gradescope: bool = False
    public: Mapping[str, bool] | None = None


@dataclass(frozen=True)
class Written:
    """What ``write_outputs`` wrote: the paths, results.json first, and why the report could not
    be drawn (None when it was, or was not asked for)."""

    paths: tuple[Path, ...]
    report_error: str | None = None


def write_outputs(result: GradeResult, folder: Path, parts: OutputParts = OutputParts()) -> Written:
    """Write results.json, then the Gradescope file and the report that ``parts`` asks for.

    A grade never depends on its rendering: results.json is written first, and a report that
    cannot be drawn is reported in ``Written.report_error``, not raised.
    """
    from grader import atomic

    folder = Path(folder)
    paths = [write_results(result, folder)]
    if parts.gradescope:
        from grader.platforms.gradescope import gradescope_results

        paths.append(atomic.write_json(folder / GRADESCOPE_NAME, gradescope_results(result, public=parts.public,
                                                                                    lang=parts.lang)))
    if not parts.report:
        return Written(tuple(paths))
    try:
        from grader.report import write_report

        paths += write_report(result, folder, lang=parts.lang, pdf=parts.pdf)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        return Written(tuple(paths), f"the report could not be drawn ({type(exc).__name__}: {exc})")
    return Written(tuple(paths))
