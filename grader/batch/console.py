"""What the batch and check commands print: a rich progress bar and short summaries (stderr for
the bar, stdout for the summary, so a script can still capture the summary)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from grader.batch.gradebook import GRADEBOOK_NAME, Record


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
    unrendered = [r for r in summary.records if r.report_error]
    if unrendered:
        console.print(f"[yellow]warning[/]: {len(unrendered)} report(s) could not be drawn (the grades stand); "
                      f"first, {unrendered[0].student}: {unrendered[0].report_error}")
    console.print(f"gradebook: {out_dir / GRADEBOOK_NAME}")
    for path in summary.outputs[1:]:
        console.print(f"class report: {path}")


def print_check_summary(record: Record, out_dir: Path, console=None) -> None:
    """A student's self-check: accuracy, score, each public check passed or failed, the report."""
    from rich.console import Console
    from rich.table import Table

    from grader.report.i18n import strings
    from grader.results import check_condition

    console = console or Console()
    r = record.results
    if record.status != "graded":
        console.print(f"[bold red]Not graded[/]: {record.error}")
    else:
        console.print(f"accuracy [bold]{r['accuracy'] * 100:.2f}%[/]   "
                      f"score [bold]{r.get('score', 0):g} / {r.get('max_score', 0):g}[/]")
        table = Table("check", "result", "value", "needs", "points")
        for check in r.get("checks") or []:
            mark = "[green]passed[/]" if check.get("passed") else "[red]FAILED[/]"
            if check.get("borderline"):
                mark += " (borderline)"
            value = check.get("value")
            table.add_row(check["name"], mark, "n/a" if value is None else f"{value:.4g}", check_condition(check),
                          f"{check.get('score', 0):g} / {check.get('max_score', 0):g}")
        console.print(table)
        described = strings("en")
        for flag in r.get("flags") or []:
            console.print(f"[yellow]note[/]: {described.get(f'flag_{flag}', flag)} ({flag})")
    if record.report:
        console.print(f"report: {out_dir.parent / record.report}")
