"""`grader prairielearn`, `classroom` and `export`: the one pipeline's grade in a platform's format.

Each grades with ``grade_one`` and ``write_outputs`` (or reads a batch's results.json files) and
hands the GradeResult to a pure formatter in ``grader.platforms``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from grader import atomic
from grader.batch.gradebook import Record, read_record
from grader.batch.resume import RESULTS_NAME, read_marker
from grader.commands.console import format_summary
from grader.commands.exits import Exit, exit_for
from grader.commands.grading import NO_SANDBOX_WARNING, RESULTS_HINT, hand_in_folder, prepare
from grader.errors import GraderError
from grader.pipeline import OutputParts, grade_one, write_outputs


def prairielearn_command(*, root: str = "/grade", rubric: str | None = None, data_path: str | None = None,
                         partial: bool = False, model_code: str | None = None, no_sandbox: bool = False,
                         lang: str | None = None) -> Exit:
    """`grader prairielearn`: grade ROOT/student, write ROOT/results/results.json (and the grade's
    own results.json in ROOT/results/grader). OK once results.json is written, whatever the grade;
    options on the command line win over ``params.grader`` in ROOT/data/data.json (``lang``:
    English when neither sets it)."""
    from grader.platforms.prairielearn import fit_size, prairielearn_results, read_options, result_images

    root = Path(root)
    submission = hand_in_folder(root, "student", "run inside PrairieLearn's grading container, or pass "
                                                 "--root to a folder holding student/ (the submitted files)")
    options = read_options(root)
    chosen, data, work = prepare(rubric or options.rubric, data_path=data_path, partial=partial or options.partial,
                                 model_code=model_code or options.model_code, out_dir=root / "results" / "grader",
                                 sandbox=not no_sandbox, out_hint=RESULTS_HINT)
    if no_sandbox:
        click.echo(NO_SANDBOX_WARNING, err=True)
    result = grade_one(submission, data=data, rubric=chosen, sandbox=not no_sandbox)
    write_outputs(result, work, OutputParts(report=False))
    lang = lang or options.lang or "en"
    shown = fit_size(prairielearn_results(result, images=result_images(result, lang), lang=lang))
    target = atomic.write_json(root / "results" / "results.json", shown)
    click.echo(f"{result.student.id}: {result.status.value}, score {shown['score']:.4g} -> {target}")
    return Exit.OK


def classroom_command(*, submission: str, out_dir: str = "grader-classroom", rubric: str | None = None,
                      data_path: str | None = None, partial: bool = False, model_code: str | None = None,
                      no_sandbox: bool = False, lang: str = "en") -> Exit:
    """`grader classroom`: grade, write results.json and the report (in ``lang``) to ``out_dir``,
    append the ``result`` line to $GITHUB_OUTPUT (or print it when unset), and exit by the rubric.
    The workflow's log, which the student reads, has the summary in ``lang``."""
    from grader.platforms.classroom import classroom_result, output_line

    chosen, data, _ = prepare(rubric, data_path=data_path, partial=partial, model_code=model_code,
                              out_dir=out_dir, sandbox=not no_sandbox)
    if no_sandbox:
        click.echo(NO_SANDBOX_WARNING, err=True)
    result = grade_one(Path(submission), data=data, rubric=chosen, sandbox=not no_sandbox)
    write_outputs(result, Path(out_dir), OutputParts(pdf=False, lang=lang))
    click.echo(format_summary(result, lang))
    line = output_line(classroom_result(result, lang))
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as out:  # the runner's file: append, as every step does
            out.write(line + "\n")
        click.echo(f"wrote the result step output to {target}")
    else:
        click.echo(line)
    return exit_for(result)


def export_command(*, batch_out: str, fmt: str, roster: str, out: str, assignment: str | None = None,
                   lang: str = "en") -> Exit:
    """`grader export`: a batch's grades as a Canvas, Moodle or plain CSV gradebook (its feedback
    in ``lang``). Students with a grade but no roster row, and roster rows without a grade, are
    listed on stderr."""
    from grader.platforms.exports import DEFAULT_ASSIGNMENT, export_csv, export_table, read_roster

    try:
        text = Path(roster).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GraderError(f"{roster} is not UTF-8 text", "save the roster as CSV UTF-8") from None
    table = read_roster(text, fmt, where=roster)
    made = export_table(read_batch(Path(batch_out)), table, fmt, assignment=assignment or DEFAULT_ASSIGNMENT,
                        lang=lang)
    target = atomic.write_text(out, export_csv(made.rows))
    if made.unmatched:
        click.echo(f"{len(made.unmatched)} graded student(s) not in {roster}, left out of {out}: "
                   + ", ".join(made.unmatched), err=True)
    if made.ungraded:
        click.echo(f"{len(made.ungraded)} student(s) of {roster} have no grade in {batch_out} (cells left empty): "
                   + ", ".join(made.ungraded), err=True)
    click.echo(f"wrote {len(made.rows) - 1} row(s) to {target}")
    return Exit.OK


def read_batch(out_dir: Path) -> list[Record]:
    """The grade of every student folder of a ``grader batch`` OUT folder.

    Raises:
        GraderError: when ``out_dir`` holds no student folder.
    """
    folders = sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and ((p / RESULTS_NAME).is_file() or read_marker(p) is not None)) if out_dir.is_dir() else []
    if not folders:
        raise GraderError(f"{out_dir} holds no graded student folders",
                          "pass the --out folder of a finished `grader batch`")
    records = []
    for folder in folders:
        marker = read_marker(folder) or {}
        record = read_record(str(marker.get("student") or folder.name), folder.name,
                             str(marker.get("sha256") or ""), folder)
        if not marker.get("student") and record.result is not None:  # a folder graded outside batch
            record = read_record(record.result.student.id, folder.name, record.sha256, folder)
        records.append(record)
    return records
