"""What the commands print: one grade's summary, a student's self-check, a batch's progress bar
and summary (stderr for the bar, stdout for the summaries, so a script can still capture them)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.batch.gradebook import GRADEBOOK_NAME
from grader.results import GradeResult, check_condition


class BatchProgress:
    """A rich progress bar with done / failed counts and the time left.

    ``start(total, done)`` once (``done``: submissions reused from an earlier run), then
    ``advance(ok)`` per finished submission, then ``stop()``.
    """

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._progress = None
        self._task = None
        self.failed = 0

    def start(self, *, total: int, done: int = 0) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[ok]} done[/] [red]{task.fields[failed]} failed[/]"),
            TextColumn("left"), TimeRemainingColumn(), console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task("grading", total=total, completed=done, ok=done, failed=0)

    def advance(self, *, ok: bool) -> None:
        if self._progress is None:
            return
        if not ok:
            self.failed += 1
        task = self._progress.tasks[0]
        self._progress.update(self._task, advance=1, ok=task.fields["ok"] + (1 if ok else 0), failed=self.failed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@contextmanager
def progress_bar(console=None) -> Iterator[BatchProgress]:
    """A live progress bar for a batch, closed however the batch ends."""
    bar = BatchProgress(console)
    try:
        yield bar
    finally:
        bar.stop()


def print_batch_summary(summary, out_dir: Path, console=None) -> None:
    """Counts by status, the failures with their reasons, and where the outputs are."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    counts: dict[str, int] = {}
    for rec in summary.records:
        counts[rec.status] = counts.get(rec.status, 0) + 1
    console.print(f"{len(summary.records)} submissions: "
                  + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                  + f" ({len(summary.graded_now)} graded now, {len(summary.skipped)} unchanged since the last run,"
                  f" {summary.wall_s:.1f} s)")
    if summary.failed:
        table = Table("student", "status", "reason", title="Not graded", title_justify="left")
        for rec in summary.failed:
            table.add_row(rec.student, rec.status, rec.error or "")
        console.print(table)
    for student, note in summary.notes:  # an id claimed twice: graded under another key
        console.print(f"[yellow]check[/] {escape(student)}: {escape(note)}")
    unrendered = [r for r in summary.records if r.report_error]
    if unrendered:
        console.print(f"[yellow]warning[/]: {len(unrendered)} report(s) could not be drawn (the grades stand); "
                      f"first, {unrendered[0].student}: {unrendered[0].report_error}")
    console.print(f"gradebook: {out_dir / GRADEBOOK_NAME}")
    for path in summary.outputs[1:]:
        console.print(f"{'similar pairs' if path.suffix == '.csv' else 'class report'}: {path}")


def print_check_summary(result: GradeResult, report: Path | None, console=None) -> None:
    """A student's self-check: accuracy, score, each public check passed or failed, the report."""
    from rich.console import Console
    from rich.table import Table

    from grader.report.i18n import strings

    console = console or Console()
    if result.evaluation is None:
        console.print(f"[bold red]Not graded[/]: {result.error}")
    else:
        console.print(f"accuracy [bold]{result.evaluation.accuracy * 100:.2f}%[/]   "
                      f"score [bold]{result.verdict.score:g} / {result.verdict.max_score:g}[/]")
        table = Table("check", "result", "value", "needs", "points")
        for check in result.verdict.checks:
            mark = "[green]passed[/]" if check.passed else "[red]FAILED[/]"
            if check.borderline:
                mark += " (borderline)"
            value = "n/a" if check.value is None else f"{check.value:.4g}"
            table.add_row(check.name, mark, value, check_condition(check), f"{check.score:g} / {check.max_score:g}")
        console.print(table)
        described = strings("en")
        for flag in result.flags:
            console.print(f"[yellow]note[/]: {described.get(f'flag_{flag}', flag)} ({flag})")
    if report:
        console.print(f"report: {report}")


def format_summary(result: GradeResult) -> str:
    """A few lines for the terminal: status, accuracy, each check, score."""
    who = result.student.id
    if result.evaluation is None:
        return f"{who}: NOT GRADED\n  {result.error}"
    e = result.evaluation
    lo, hi = e.accuracy_ci
    lines = [f"{who}: {result.submission.format}, accuracy {e.accuracy:.4f} "
             f"(95% CI {lo:.4f}-{hi:.4f}), loss {e.loss:.4f}"]
    for c in result.verdict.checks:
        mark = "PASS" if c.passed else "FAIL"
        lines.append(f"  [{mark}] {c.name}: {c.detail}  ({c.score:g}/{c.max_score:g})")
    lines.append(f"score {result.verdict.score:g}/{result.verdict.max_score:g}")
    if result.sandbox.warning:
        lines.append(f"WARNING: {result.sandbox.warning}")
    return "\n".join(lines)
