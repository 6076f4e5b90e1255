"""The class's similarity step over graded folders: read what each grade kept, find the pairs,
write ``similarity.csv``.

    run_similarity(out_dir, labels=..., data=..., compare_with=[...]) -> ClassSimilarity
    similarity_csv(found) -> str                                      pure

Reads only the files each grade kept (``grader.similarity.kept``), never a submission, so it runs
the same right after ``grader batch`` and later over its output. Costly evidence is cached in
``OUT/.similarity-cache.json`` by both checkpoints' digests.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from grader import atomic
from grader.batch.gradebook import number_cell, text_cell
from grader.errors import GraderError
from grader.report.i18n import similarity_strings
from grader.similarity.kept import PRINT_NAME, Held, read_kept, read_weights
from grader.similarity.rank import THRESHOLDS, Found, Member, Thresholds, find_pairs
from grader.similarity.words import evidence_text, who

CSV_NAME = "similarity.csv"
CACHE_NAME = ".similarity-cache.json"
COLUMNS = ("student_a", "from_a", "student_b", "from_b", "kind", "score", "unusual", "evidence")
OTHER_DATA = "graded on other data than this batch ({data}); compared by weights only"


@dataclass(frozen=True)
class ClassSimilarity:
    """One similarity run: what it found, over how many of this batch's students, and the CSV."""

    found: Found
    students: int
    path: Path


def run_similarity(out_dir: Path, *, labels: np.ndarray, data: str, compare_with: tuple[Path, ...] = (),
                   thresholds: Thresholds = THRESHOLDS) -> ClassSimilarity:
    """Compare every student graded into ``out_dir`` with each other and with ``compare_with``'s.

    Args:
        labels: the test labels the logits were computed on (dataset order).
        data: that test set's fingerprint; a folder graded on other data is compared by weights only.
        compare_with: other graded folders (a reference solution's, earlier terms' batch outputs),
            labelled by their path in every row; never compared among themselves.
    Raises:
        GraderError: a ``compare_with`` folder that holds no kept evidence.
    """
    out_dir = Path(out_dir)
    held = [(folder, item, "") for folder, item in collect(out_dir)]
    for other in compare_with:
        found = collect(Path(other))
        if not found:
            raise GraderError(f"{other} holds no graded student folder with {PRINT_NAME}",
                              "pass a `grader batch` output folder (this grader keeps logits.npy and "
                              f"{PRINT_NAME} beside each results.json)")
        held += [(folder, item, str(other)) for folder, item in found]
    members = [_member(item, origin, data) for _, item, origin in held]
    predictions = _predictions([item for _, item, _ in held], data, len(labels))
    cache = _read_cache(out_dir, thresholds)
    weights = functools.lru_cache(maxsize=16)(lambda i: read_weights(held[i][0]))  # a member in many pairs
    found = find_pairs(members, predictions, labels, weights=weights, cache=cache, thresholds=thresholds)
    path = atomic.write_text(out_dir / CSV_NAME, "\ufeff" + similarity_csv(found))
    atomic.write_json(out_dir / CACHE_NAME, {"thresholds": asdict(thresholds), "pairs": found.cache})
    return ClassSimilarity(found, sum(1 for m in members if not m.origin), path)


def collect(folder: Path) -> list[tuple[Path, Held]]:
    """The student folders under ``folder`` (or ``folder`` itself) that kept similarity evidence."""
    folders = [folder] if (folder / PRINT_NAME).is_file() else sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [(p, item) for p in folders if (item := read_kept(p)) is not None]


def similarity_csv(found: Found) -> str:
    """The flagged pairs, one row each, in ``COLUMNS`` (evidence in English). Pure."""
    t = similarity_strings("en")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in found.pairs:
        writer.writerow([text_cell(p.a.key), text_cell(who(p.a, t) or "this batch"), text_cell(p.b.key),
                         text_cell(who(p.b, t) or "this batch"), p.kind, number_cell(p.score, 4),
                         number_cell(p.evidence.z, 2), text_cell(evidence_text(p, t, found.median))])
    return buf.getvalue()


def _member(item: Held, origin: str, data: str) -> Member:
    note = item.note
    if item.data and item.data != data and item.logits is not None:
        note = "; ".join(filter(None, (note, OTHER_DATA.format(data=item.data[:12]))))
    return Member(item.student, origin, item.sha256, item.print, note)


def _predictions(items: list[Held], data: str, n: int) -> np.ndarray | None:
    """(s, n) predicted classes; -1 rows for a member without logits on this test set."""
    rows = np.full((len(items), n), -1, dtype=np.int16)
    usable = False
    for row, item in zip(rows, items):
        if item.logits is not None and item.logits.shape[:1] == (n,) and item.data in (data, None):
            row[:] = np.argmax(item.logits, axis=1)
            usable = True
    return rows if usable else None


def _read_cache(out_dir: Path, thresholds: Thresholds) -> dict:
    """The pairs' costly evidence from the last run, if it used the same thresholds."""
    try:
        held = json.loads((out_dir / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(held, dict) or held.get("thresholds") != asdict(thresholds):
        return {}
    pairs = held.get("pairs")
    return pairs if isinstance(pairs, dict) else {}
