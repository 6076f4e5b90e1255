"""What the commands print: one grade's summary, a student's self-check, a batch's progress bar
and summary (stderr for the bar, stdout for the summaries, so a script can still capture them)."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from grader.batch.gradebook import GRADEBOOK_NAME, OUTCOMES, outcome_of
from grader.results import GradeResult, check_condition

# Printed to a file or a pipe, a line is never wrapped: rich would otherwise cut it at 80 columns.
UNWRAPPED_WIDTH = 10_000


def make_console(*, stderr: bool = False):
    """A rich Console on stdout (or stderr): a terminal's own width, or no hard wraps at all when the
    stream is a file or a pipe (a table is as wide as its longest row)."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=UNWRAPPED_WIDTH, soft_wrap=True)


def tally(outcomes: Iterable[str]) -> dict[str, int]:
    """Counts of each of ``OUTCOMES`` (``grader.batch.gradebook.outcome_of``), zeros included."""
    counts = Counter(outcomes)
    return {name: counts.get(name, 0) for name in OUTCOMES}


def counters_text(counts: dict[str, int], *, markup: bool = True) -> str:
    """``12 graded (3 failing a check), 2 not graded, 1 crashed``: graded counts passing and failing
    together, so the three figures add up to the submissions finished."""
    graded = counts["passed"] + counts["failing"]
    parts = [f"{graded} graded ({counts['failing']} failing a check)", f"{counts['not-graded']} not graded",
             f"{counts['crashed']} crashed"]
    if markup:
        parts = [f"[{colour}]{part}[/]" for colour, part in zip(("green", "yellow", "red"), parts)]
    return ", ".join(parts)


class BatchProgress:
    """A rich progress bar with honest counters (graded, failing a check, not graded, crashed) and
    the time left.

    ``start(total, reused)`` once (``reused``: the outcomes of submissions reused from an earlier
    run), then ``advance(outcome)`` per finished submission, then ``stop()``.
    """

    def __init__(self, console=None):
        self.console = console or make_console(stderr=True)
        self._progress = None
        self._task = None
        self.outcomes: list[str] = []

    def start(self, *, total: int, reused: Iterable[str] = ()) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.outcomes = list(reused)
        self._progress = Progress(
            TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counters]}"),
            TextColumn("left"), TimeRemainingColumn(), console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task("grading", total=total, completed=len(self.outcomes),
                                             counters=counters_text(tally(self.outcomes)))

    def advance(self, finished: str) -> None:
        """Count one finished submission, by its outcome (one of ``OUTCOMES``)."""
        if self._progress is None:
            return
        self.outcomes.append(finished)
        self._progress.update(self._task, advance=1, counters=counters_text(tally(self.outcomes)))

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
    """The honest counters, the submissions not graded with their reasons, and where the outputs are."""
    from rich.markup import escape
    from rich.table import Table

    console = console or make_console()
    console.print(f"{len(summary.records)} submissions: {counters_text(tally(map(outcome_of, summary.records)))}"
                  f" ({len(summary.graded_now)} graded now, {len(summary.skipped)} unchanged since the last run,"
                  f" {summary.wall_s:.1f} s)")
    if summary.failed:
        table = Table("student", "status", "reason", title="Not graded or crashed", title_justify="left")
        for rec in summary.failed:
            table.add_row(escape(rec.student), rec.status, escape(rec.error or ""))
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


def check_verdict(result: GradeResult, lang: str = "en") -> str:
    """The self-check's verdict in one line, in ``lang``: ``READY: 3/3 checks pass``, or ``NOT
    READY: ...`` with the first thing to fix (why it was not graded, or the first failing check
    and what it needs)."""
    from grader.report.context import check_detail, check_name, check_row
    from grader.report.i18n import platform_strings

    t = platform_strings(lang)
    if not result.graded:
        return t["cc_not_graded"].format(error=result.student_error_text(lang) or t["cc_cannot_grade"])
    checks = result.verdict.checks
    passed = sum(c.passed for c in checks)
    if passed == len(checks):
        return t["cc_ready"].format(passed=passed, total=len(checks))
    first = next(c for c in checks if not c.passed)
    if first.value is None:
        why = check_detail(first, result, lang)
    elif lang == "en":  # as results.json words it
        why = t["cc_needs"].format(value=f"{first.value:.4g}", condition=check_condition(first))
    else:  # in the report's units: 69.08%, needs 70% < x ≤ 100%
        row = check_row(first, t, lang)
        why = t["cc_needs"].format(value=row["value"], condition=row["threshold"])
    return t["cc_fix_first"].format(passed=passed, total=len(checks), name=check_name(first, lang), why=why)


def print_check_summary(result: GradeResult, report: Path | None, console=None, lang: str = "en") -> None:
    """A student's self-check, in ``lang``: the verdict line first, then accuracy, score, each
    public check with its value (``n/a`` with the reason when there is none), notes, and the
    report's path."""
    from rich.markup import escape
    from rich.table import Table

    from grader.report.i18n import platform_strings

    t = platform_strings(lang)
    console = console or make_console()
    console.print(check_verdict(result, lang), style="bold green" if result.passed else "bold red", markup=False,
                  highlight=False)
    if result.evaluation is not None:
        console.print(t["cc_scores"].format(accuracy=f"{result.evaluation.accuracy * 100:.2f}%",
                                            score=f"{result.verdict.score:g}", max=f"{result.verdict.max_score:g}"))
        table = Table(t["cc_check"], t["cc_result"], t["cc_value"], t["cc_condition"], t["cc_points"])
        for check in result.verdict.checks:
            table.add_row(*_check_cells(check, result, t, lang))
        console.print(table)
        for flag in result.flags:  # the flag's name beside its words for an English reader, as the report does
            named = f" ({flag})" if lang == "en" else ""
            console.print(f"[yellow]{t['cc_note']}[/]: {escape(t.get(f'flag_{flag}', flag))}{named}")
    if report:
        console.print(f"{t['cc_report']}: {escape(str(report))}", highlight=False)


def _check_cells(check, result: GradeResult, t: dict, lang: str) -> tuple[str, ...]:
    """One check's row of the self-check's table (rich markup; the texts escaped)."""
    from rich.markup import escape

    from grader.report.context import check_detail, check_name

    mark = f"[green]{t['cc_passed']}[/]" if check.passed else f"[red]{t['cc_failed']}[/]"
    if check.borderline:
        mark += f" ({t['cc_borderline']})"
    value = t["cc_na"].format(reason=escape(check_detail(check, result, lang))) if check.value is None \
        else f"{check.value:.4g}"
    return (escape(check_name(check, lang)), mark, value,
            escape(check_condition(check)), f"{check.score:g} / {check.max_score:g}")


def format_summary(result: GradeResult, lang: str = "en") -> str:
    """A few lines for the terminal: status, accuracy, each check, score (in ``lang``; in English
    with the TA's own paths and the form the hand-in was read as)."""
    if lang != "en":
        return _said_summary(result, lang)
    who = result.student.id
    if result.evaluation is None:
        return f"{who}: NOT GRADED\n  {result.error}"
    e = result.evaluation
    lo, hi = e.accuracy_ci
    lines = [f"{who}: {result.submission.format}, accuracy {e.accuracy:.4f} "
             f"(95% CI {lo:.4f}-{hi:.4f}), loss {e.loss:.4f}"]
    if result.robustness is not None:
        r = result.robustness
        lines.append(f"  under common corruptions (regenerated CIFAR-10-C, {r.n_per_cell} images per cell): mean "
                     f"accuracy {r.mean_accuracy:.4f} (95% CI {r.mean_accuracy_ci[0]:.4f}-{r.mean_accuracy_ci[1]:.4f})")
    for c in result.verdict.checks:
        mark = "PASS" if c.passed else "FAIL"
        lines.append(f"  [{mark}] {c.name}: {c.detail}  ({c.score:g}/{c.max_score:g})")
    lines.append(f"score {result.verdict.score:g}/{result.verdict.max_score:g}")
    if result.sandbox.warning:
        lines.append(f"WARNING: {result.sandbox.warning}")
    return "\n".join(lines)


def _said_summary(result: GradeResult, lang: str) -> str:
    """``format_summary`` for a reader of ``lang``: the self-check's verdict, then accuracy, each
    check with its detail, and the score, as a student reads them (no folder of the grading machine)."""
    from grader.platforms.gradescope import check_output, summary_text
    from grader.report.i18n import platform_strings

    t = platform_strings(lang)
    lines = [f"{result.student.id}: {check_verdict(result, lang)}"]
    if result.evaluation is not None:
        lines.append("  " + summary_text(result, lang).replace("\n", "\n  "))
        for check in result.verdict.checks:
            mark = t["cc_passed"] if check.passed else t["cc_failed"]
            line, _, detail = check_output(check, result, lang).partition("\n")
            lines.append(f"  [{mark}] {line} ({check.score:g}/{check.max_score:g})")
            if detail:
                lines.append(f"      {detail}")
    if result.sandbox.warning:
        lines.append(f"WARNING: {result.sandbox.warning}")
    return "\n".join(lines)
