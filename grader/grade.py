"""`grader grade`: one submission in, results.json out.

    inspect -> run the child (images in, logits out) -> evaluate -> rubric -> results

``grade_submission`` computes and returns the results dict; only ``grade_command`` writes files.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from grader.atomic import ensure_dir
from grader.data import Cifar10, load_cifar10
from grader.errors import GraderError
from grader.evaluate import evaluate
from grader.integrity.memorisation import MEMORISATION, MemorisationProbe, memorisation_check, probe_images
from grader.results import (new_results, with_error, with_evaluation, with_memorisation, with_submission,
                            with_verdict, write_results)
from grader.rubric import Rubric, check, load_rubric
from grader.runner.launch import RunLimits, run_submission
from grader.submission import inspect_submission, normalise_history

EXIT_PASSED, EXIT_FAILED, EXIT_UNGRADED = 0, 1, 2


def grade_submission(submission: str | Path, *, data: Cifar10, rubric: Rubric | None = None,
                     sandbox: bool = True, memorisation: MemorisationProbe | None = MEMORISATION) -> dict:
    """Grade one submission (file or folder) on ``data``'s test set; never raises for a bad submission.

    The child receives the test images and perturbed copies of a seeded subset of them, shuffled
    together in one request, so it cannot tell which are which; the metrics come from the clean
    images, and the accuracy on the copies against the same images' clean accuracy feeds the
    memorisation check (``results["memorisation"]``, flag ``memorisation-suspected``).

    Args:
        submission: what the student handed in.
        data: the CIFAR-10 test set (its labels stay in this process).
        rubric: the checks to apply [default: the homework's assertions].
        sandbox: False runs the submission unsandboxed; the result flags it.
        memorisation: how to probe for a memorised test set; None skips the check.

    Returns:
        the results dict of docs/results-schema.md: ``status`` "graded", or "error" with a message
        saying what is wrong and what to do.
    """
    rubric = rubric or load_rubric()
    started = time.perf_counter()
    results = new_results(submission, data=data, sandbox=sandbox)
    try:
        inspected = inspect_submission(submission)
        results = with_submission(results, inspected)
        limits = RunLimits(wall_seconds=rubric.limits.wall_seconds, memory_mb=rubric.limits.memory_mb)
        n = len(data.test_images)
        subset, copies = probe_images(data, memorisation) if memorisation else (np.zeros(0, np.int64), None)
        images = data.test_images if copies is None else np.concatenate([data.test_images, copies])
        child = run_submission(inspected, images, classes=len(data.classes),
                               seed_text=data.fingerprint, sandbox=sandbox, limits=limits)
        evaluation = evaluate(child.logits[:n], data.test_labels, data.classes, data.test_images)
        results = with_evaluation(results, evaluation, child.info, sandbox=child.sandbox)
        if copies is not None:
            results = with_memorisation(results, memorisation_check(
                child.logits[subset], child.logits[n:], data.test_labels[subset]))
        if results["history"] is None and child.info.get("history"):
            results["history"] = _checkpoint_history(child.info["history"], inspected.weights.name)
    except GraderError as exc:
        results = with_error(results, str(exc))
    except Exception as exc:  # a grader bug must not stop a batch; it is reported as one
        results = with_error(results, f"the grader failed unexpectedly ({type(exc).__name__}: {exc}); "
                                      "please report this with the submission")
    return with_verdict(results, check(results, rubric), total_seconds=time.perf_counter() - started)


def _checkpoint_history(raw: object, name: str) -> dict | None:
    """The history a grader checkpoint carries, validated like a history file (None if unusable)."""
    try:
        return normalise_history(raw, where=name)
    except GraderError:
        return None


def preflight(*, sandbox: bool) -> None:
    """Raise GraderError when this machine cannot grade: no working sandbox (when asked for), or
    no usable grading secret (``grader.integrity.secret``)."""
    from grader.integrity.secret import grading_secret

    if sandbox:
        from grader.sandbox import check_available

        check_available()
    grading_secret()


def grade_command(*, submission: str, out_dir: str, rubric: str | None, data_path: str | None,
                  lang: str = "en", partial: bool = False, no_sandbox: bool = False) -> int:
    """The `grade` command: grade, write ``out_dir/results.json`` and the report, print a summary.

    Returns:
        0 every check passed, 1 some check failed, 2 the submission could not be graded (or the
        data or rubric could not be read, or ``out_dir`` cannot be written: checked before grading).
    """
    try:
        chosen = load_rubric(rubric)
        data = load_cifar10(data_path, expect_full=not partial)
        ensure_dir(out_dir, hint="pass an --out folder you can write to")
        preflight(sandbox=not no_sandbox)  # the machine's problems are the TA's to fix, not a student's error
    except GraderError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_UNGRADED
    if no_sandbox:
        click.echo("WARNING: --no-sandbox: the submission's code runs with your permissions.", err=True)
    results = grade_and_write(Path(submission), Path(out_dir), data=data, rubric=chosen, lang=lang,
                              sandbox=not no_sandbox)
    if results["status"] == "error":
        return EXIT_UNGRADED
    return EXIT_PASSED if all(c["passed"] for c in results["checks"]) else EXIT_FAILED


def grade_and_write(submission: Path, out_dir: Path, *, data: Cifar10, rubric: Rubric | None = None,
                    lang: str = "en", sandbox: bool = True) -> dict:
    """Grade ``submission``, write results.json and the report into ``out_dir``, print the
    summary and what was written; return the results (``grader grade`` and a finished
    ``grader train`` both end here)."""
    results = grade_submission(submission, data=data, rubric=rubric, sandbox=sandbox)
    path = write_results(results, out_dir)
    click.echo(format_summary(results))
    click.echo(f"wrote {path}")
    write_report_or_warn(results, out_dir, lang=lang)
    return results


def write_report_or_warn(results: dict, out_dir: Path, *, lang: str) -> None:
    """Render report.html (and .pdf) beside results.json; a rendering failure never loses the grade."""
    from grader.report import write_report

    try:
        for written in write_report(results, out_dir, lang=lang):
            click.echo(f"wrote {written}")
    except Exception as exc:  # the grade is already on disk; say how to retry
        click.echo(f"WARNING: the report could not be rendered ({type(exc).__name__}: {exc}); "
                   f"results.json is complete: retry with `grader report {out_dir}/results.json "
                   f"--out {out_dir}`", err=True)


def format_summary(results: dict) -> str:
    """A few lines for the terminal: status, accuracy, each check, score."""
    who = results["student"]["id"]
    if results["status"] == "error":
        return f"{who}: NOT GRADED\n  {results['error']}"
    lo, hi = results["accuracy_ci"]
    lines = [f"{who}: {results['submission']['format']}, accuracy {results['accuracy']:.4f} "
             f"(95% CI {lo:.4f}-{hi:.4f}), loss {results['loss']:.4f}"]
    for c in results["checks"]:
        mark = "PASS" if c["passed"] else "FAIL"
        lines.append(f"  [{mark}] {c['name']}: {c['detail']}  ({c['score']:g}/{c['max_score']:g})")
    lines.append(f"score {results['score']:g}/{results['max_score']:g}")
    if results["sandbox"].get("warning"):
        lines.append(f"WARNING: {results['sandbox']['warning']}")
    return "\n".join(lines)
