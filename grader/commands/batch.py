"""`grader batch`: grade a class folder with a progress bar, then print the summary."""

from __future__ import annotations

from pathlib import Path

from grader.commands.exits import Exit


def batch_command(*, submissions_dir: str, out_dir: str, rubric: str | None = None, jobs: int | None = None,
                  data_path: str | None = None, lang: str = "en", executor: str = "local",
                  scheduler: str | None = None, no_sandbox: bool = False, partial: bool = False,
                  retry_failed: bool = False, no_pdf: bool = False, model_code: str | None = None,
                  compare_with: tuple[str, ...] = (), no_bom: bool = False) -> Exit:
    """`grader batch`. OK once the gradebook is written, whatever the students' grades."""
    from grader.batch.run import make_executor, run_batch
    from grader.batch.worker import GradeSettings
    from grader.commands.console import print_batch_summary, progress_bar
    from grader.commands.similarity import check_compared

    settings = GradeSettings(data_path=data_path, rubric_path=rubric, lang=lang, sandbox=not no_sandbox,
                             partial=partial, pdf=not no_pdf,
                             model_code=str(Path(model_code).resolve()) if model_code else None)
    check_compared(tuple(Path(d) for d in compare_with))  # before any student is graded
    pool = make_executor(executor, scheduler, jobs)
    with progress_bar() as progress:
        summary = run_batch(Path(submissions_dir), Path(out_dir), settings=settings, executor=pool,
                            retry_failed=retry_failed, progress=progress,
                            compare_with=tuple(Path(d) for d in compare_with), bom=not no_bom)
    print_batch_summary(summary, Path(out_dir))
    return Exit.OK
