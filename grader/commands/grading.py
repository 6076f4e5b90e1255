"""`grader grade`, `check`, `gradescope` and `report`: thin front ends on the one pipeline.

Each loads what the grade needs (rubric, data), checks the machine and the output folder before
any work, then calls ``grade_one`` and ``write_outputs`` and says what happened.
"""

from __future__ import annotations

from pathlib import Path

import click

from grader import atomic
from grader.commands.console import format_summary, print_check_summary
from grader.commands.exits import Exit, exit_for
from grader.data import Cifar10, load_cifar10
from grader.errors import GraderError
from grader.pipeline import OutputParts, grade_one, preflight, write_outputs
from grader.results import GradeResult
from grader.rubric import Rubric, load_rubric

OUT_HINT = "pass an --out folder you can write to"
RESULTS_HINT = "run where ROOT/results can be written"
NO_SANDBOX_WARNING = "WARNING: --no-sandbox: the submission's code runs with your permissions."


def prepare(rubric: str | Path | None, *, data_path: str | None, partial: bool, model_code: str | None,
            out_dir: str | Path, sandbox: bool, out_hint: str = OUT_HINT, public: bool = False
            ) -> tuple[Rubric, Cifar10, Path]:
    """What every grading command checks before any student: the rubric (its public checks only
    for a self-check; ``model_code`` over its own), the data, the output folder and the machine
    (whose problems are the TA's to fix, never a student's error).

    Returns:
        the rubric, the data and the output folder, created.
    Raises:
        GraderError: for any of them, with the fix.
    """
    chosen = load_rubric(rubric)
    chosen = (chosen.public() if public else chosen).with_model_code(model_code)
    data = load_cifar10(data_path, expect_full=not partial)
    out = atomic.ensure_dir(out_dir, hint=out_hint)
    preflight(sandbox=sandbox)
    return chosen, data, out


def hand_in_folder(root: Path, name: str, hint: str) -> Path:
    """``root/name``, the folder a platform puts the student's files in.

    Raises:
        GraderError: when it is missing or a file, with ``hint``.
    """
    folder = root / name
    if not folder.is_dir():
        raise GraderError(f"{folder} {'is a file, not a folder' if folder.exists() else 'does not exist'}", hint)
    return folder


def grade_command(*, submission: str, out_dir: str, rubric: str | None, data_path: str | None,
                  lang: str = "en", partial: bool = False, no_sandbox: bool = False,
                  model_code: str | None = None, no_pdf: bool = False, robustness: int | None = None) -> Exit:
    """`grader grade`: grade, write ``out_dir/results.json`` and the report, print a summary
    (``robustness``: test images per corruption and severity to measure robustness on, or None).

    Raises:
        GraderError: for a bad rubric or data source, an ``out_dir`` that cannot be written, or a
            machine that cannot grade (all checked before grading).
    """
    chosen, data, _ = prepare(rubric, data_path=data_path, partial=partial, model_code=model_code,
                              out_dir=out_dir, sandbox=not no_sandbox)
    if no_sandbox:
        click.echo(NO_SANDBOX_WARNING, err=True)
    result = grade_and_write(Path(submission), Path(out_dir), data=data, rubric=chosen, lang=lang,
                             sandbox=not no_sandbox, pdf=not no_pdf, robustness=robustness)
    return exit_for(result)


def grade_and_write(submission: Path, out_dir: Path, *, data: Cifar10, rubric: Rubric | None = None,
                    lang: str = "en", sandbox: bool = True, pdf: bool = True,
                    robustness: int | None = None) -> GradeResult:
    """Grade ``submission`` into ``out_dir`` (results.json, report), print the summary and what was
    written; return the grade (``grader grade`` and a finished ``grader train`` both end here)."""
    result = grade_one(submission, data=data, rubric=rubric, sandbox=sandbox, robustness=robustness)
    written = write_outputs(result, out_dir, OutputParts(lang=lang, pdf=pdf))
    click.echo(format_summary(result, lang))
    for path in written.paths:
        click.echo(f"wrote {path}")
    if written.report_error:
        click.echo(f"WARNING: {written.report_error}; results.json is complete: retry with "
                   f"`grader report {out_dir}/results.json --out {out_dir}`", err=True)
    return result


def check_command(*, submission: str, out_dir: str = "grader-check", rubric: str | None = None,
                  data_path: str | None = None, lang: str = "en", partial: bool = False,
                  no_sandbox: bool = False, model_code: str | None = None) -> Exit:
    """`grader check`: a student's self-check with the rubric's public checks only."""
    chosen, data, _ = prepare(rubric, data_path=data_path, partial=partial, model_code=model_code,
                              out_dir=out_dir, sandbox=not no_sandbox, public=True)
    result = grade_one(Path(submission), data=data, rubric=chosen, sandbox=not no_sandbox)
    written = write_outputs(result, Path(out_dir), OutputParts(lang=lang))
    reports = [p for p in written.paths if p.suffix in (".pdf", ".html")]
    print_check_summary(result, reports[-1] if reports else None, lang=lang)
    if written.report_error:
        click.echo(f"WARNING: {written.report_error}", err=True)
    return exit_for(result)


def gradescope_command(*, root: str = "/autograder", rubric: str | None = None,
                       data_path: str | None = None, partial: bool = False,
                       model_code: str | None = None, lang: str = "en") -> Exit:
    """`grader gradescope`: grade ROOT/submission, write ROOT/results/results.json (and the report
    in ROOT/results/grader). OK once results.json is written, whatever the grade. Over the rubric's
    daily limit (``[gradescope]``), the hand-in is not graded and the previous score stands."""
    from grader.platforms.gradescope import gradescope_results, gradescope_student, limited_results

    root = Path(root)
    submission = hand_in_folder(root, "submission", "run inside Gradescope, or pass --root to a folder "
                                                    "holding submission/ (the upload's files)")
    chosen, data, work = prepare(rubric, data_path=data_path, partial=partial, model_code=model_code,
                                 out_dir=root / "results" / "grader", sandbox=True, out_hint=RESULTS_HINT)
    progress, refusal = gradescope_progress(root, chosen, lang)
    if refusal is not None:
        target = atomic.write_json(root / "results" / "results.json",
                                   limited_results(refusal, progress, max_score=chosen.max_score))
        click.echo(f"not graded: {refusal.used} graded submissions on {refusal.day} ({refusal.zone}), the "
                   f"limit is {refusal.limit} -> {target}")
        return Exit.OK
    result = grade_one(submission, data=data, rubric=chosen, student=gradescope_student(root))
    write_outputs(result, work, OutputParts(lang=lang))
    target = atomic.write_json(root / "results" / "results.json",
                               gradescope_results(result, public=chosen.visibility(), progress=progress,
                                                  lang=lang))
    click.echo(f"{result.student.id}: {result.status.value}, score {result.verdict.score:g} -> {target}")
    return Exit.OK


def gradescope_progress(root: Path, rubric: Rubric, lang: str):
    """The earlier submissions in ROOT/submission_metadata.json (None, None without the file), and
    the refusal when the rubric's daily limit is reached.

    Raises:
        GraderError: for a metadata file that cannot be read, or one without ``created_at``.
    """
    from grader.platforms.attempts import earlier_attempts, limit_refusal, read_metadata, submission_time
    from grader.platforms.gradescope import Progress

    meta = read_metadata(root)
    if meta is None:
        if rubric.gradescope.max_submissions_per_day is not None:
            click.echo(f"no {root}/submission_metadata.json: the daily limit is not applied", err=True)
        return None, None
    attempts, now = earlier_attempts(meta), submission_time(meta)
    progress = Progress(tuple(attempts), now, rubric.gradescope, lang)
    return progress, limit_refusal(attempts, now, rubric.gradescope)


def report_command(*, results: str, out_dir: str, lang: str = "en", no_pdf: bool = False) -> Exit:
    """`grader report`: re-render the report of a results.json without re-evaluating."""
    from grader.report.render import render_html, write_pages
    from grader.results import read_results

    result = read_results(Path(results))
    try:
        html = render_html(result, lang=lang)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:  # a hand-edited value
        raise GraderError(f"{results} holds a value of the wrong type or shape ({type(exc).__name__}: {exc})",
                          "pass the results.json that grader grade wrote, unedited, or grade the "
                          "submission again (docs/results-schema.md gives each key's type)") from None
    atomic.ensure_dir(out_dir, hint=OUT_HINT)
    for path in write_pages(html, Path(out_dir), pdf=not no_pdf):
        click.echo(str(path))
    return Exit.OK
