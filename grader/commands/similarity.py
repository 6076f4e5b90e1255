"""`grader similarity`: compare the students of a finished batch again, and print the flagged pairs."""

from __future__ import annotations

from pathlib import Path

import click

from grader.commands.exits import Exit
from grader.errors import GraderError


def similarity_command(*, batch_out: str, compare_with: tuple[str, ...] = (), data_path: str | None = None,
                       partial: bool = False) -> Exit:
    """`grader similarity`: write BATCH_OUT/similarity.csv and print its pairs. OK whatever it finds.

    Raises:
        GraderError: a folder with no kept evidence, or a data source other than the batch's.
    """
    from grader.data import load_cifar10
    from grader.similarity.outputs import collect, run_similarity
    from grader.similarity.words import evidence_text, who
    from grader.report.i18n import similarity_strings

    out = Path(batch_out)
    check_compared((out, *map(Path, compare_with)))
    data = load_cifar10(data_path, expect_full=not partial)
    graded_on = {item.data for _, item in collect(out) if item.data}
    if graded_on and data.fingerprint not in graded_on:
        raise GraderError(f"{batch_out} was graded on other data (fingerprint {sorted(graded_on)[0][:12]}...) than "
                          f"{data.source} ({data.fingerprint[:12]}...)",
                          "pass --data with the source the batch was graded on (or set GRADER_DATA to it)")
    similar = run_similarity(out, labels=data.test_labels, data=data.fingerprint,
                             compare_with=tuple(Path(d) for d in compare_with))
    found, t = similar.found, similarity_strings("en")
    pairs = similar.students * (similar.students - 1) // 2
    click.echo(f"{len(found.pairs)} pair(s) flagged among {similar.students} students ({pairs} pairs, "
               f"{found.candidates} examined closely)")
    for p in found.pairs:
        a = f"{p.a.key} ({who(p.a, t)})" if p.a.origin else p.a.key
        b = f"{p.b.key} ({who(p.b, t)})" if p.b.origin else p.b.key
        click.echo(f"  {a} ~ {b}: {p.kind}, score {p.score:.2f}: {evidence_text(p, t, found.median)}")
    click.echo(f"wrote {similar.path}")
    return Exit.OK


def check_compared(folders: tuple[Path, ...]) -> None:
    """Refuse a folder that holds no graded student folder with kept similarity evidence.

    Raises:
        GraderError: naming the folder and what to pass instead.
    """
    from grader.similarity.kept import PRINT_NAME
    from grader.similarity.outputs import collect

    for folder in folders:
        if not folder.is_dir() or not collect(folder):
            raise GraderError(f"{folder} holds no graded student folder with {PRINT_NAME}",
                              "pass the --out folder of a `grader batch` run (each student's folder keeps "
                              f"logits.npy and {PRINT_NAME}; a batch graded by an older grader has none: "
                              "run it again)")
