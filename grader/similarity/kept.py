"""What one grade keeps for the class's similarity step, and the files it lives in.

    Kept().take_weights(checkpoint); Kept().take_logits(logits)    during the grade (never raise)
    write_kept(folder, kept, result) -> [paths]                    beside results.json
    read_kept(folder) -> Held | None
    read_weights(folder) -> [np.ndarray] | None                    for weight matching

Files, in each student's output folder: ``logits.npy`` (n, classes) float16, the test set's logits in
the dataset's order; ``similarity.json`` (the student's id, the checkpoint's digest, the data's
fingerprint, and the weight fingerprint or why the weights were not read);
``weights.npz`` (the tensors as float16, in file order, up to ``KEEP_ELEMENTS``) for weight matching.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader import atomic
from grader.similarity.fingerprint import WeightPrint, fingerprint
from grader.similarity.tensors import Unreadable, read_tensors

LOGITS_NAME, PRINT_NAME, WEIGHTS_NAME = "logits.npy", "similarity.json", "weights.npz"
KEEP_ELEMENTS = 8_000_000  # weights kept for matching (16 MB as float16); the homework net has 1.5 M
NO_FORM = "its weights are read only by loading the network ({why}); it is compared by behaviour alone"


@dataclass
class Kept:
    """A grade's similarity evidence: filled by the grading pipeline, written by its caller.

    Attributes:
        logits: (n, classes) float16 logits on the test set, dataset order; None when the network
            did not run. They come from the child, where student code may run.
        print: the weight fingerprint, read by the grading process from the checkpoint's bytes.
        tensors: the weights (float16, file order) for matching; None over ``KEEP_ELEMENTS``.
        note: why the weights were not read.
    """

    logits: np.ndarray | None = None
    print: WeightPrint | None = None
    tensors: list[np.ndarray] | None = None
    note: str | None = None

    def take_weights(self, checkpoint: Path, own: frozenset[str] = frozenset()) -> None:
        """Fingerprint ``checkpoint`` (``own``: the student's classes its pickle may name); a
        checkpoint that cannot be read so gets a note, never an error."""
        try:
            tensors = read_tensors(Path(checkpoint), own=own)
        except Unreadable as exc:
            self.note = NO_FORM.format(why=exc)
            return
        except Exception as exc:  # noqa: BLE001 - a fingerprint must never fail a grade
            self.note = NO_FORM.format(why=f"{Path(checkpoint).name} could not be read: {type(exc).__name__}")
            return
        self.print = fingerprint(tensors)
        if sum(t.size for t in tensors) <= KEEP_ELEMENTS:
            self.tensors = [t.astype(np.float16) for t in tensors]

    def take_logits(self, logits: np.ndarray) -> None:
        self.logits = np.asarray(logits, dtype=np.float16)


@dataclass(frozen=True)
class Held:
    """What a student's folder keeps (see the module's docstring); None for what is missing."""

    student: str
    sha256: str
    data: str | None
    print: WeightPrint | None
    note: str | None
    logits: np.ndarray | None


def write_kept(folder: Path, kept: Kept, result) -> list[Path]:
    """Write ``kept``'s files into ``folder`` (atomically), naming ``result``'s student, digest and
    data; returns their paths."""
    folder = Path(folder)
    facts = {"student": result.student.id, "sha256": result.submission.sha256,
             "data": (result.dataset or {}).get("fingerprint"),
             "fingerprint": kept.print.to_json() if kept.print else None, "note": kept.note}
    paths = [atomic.write_json(folder / PRINT_NAME, facts)]
    if kept.logits is not None:
        paths.append(atomic.write_bytes(folder / LOGITS_NAME, _npy(kept.logits)))
    if kept.tensors is not None:
        buf = io.BytesIO()
        np.savez(buf, *kept.tensors)
        paths.append(atomic.write_bytes(folder / WEIGHTS_NAME, buf.getvalue()))
    return paths


def read_kept(folder: Path) -> Held | None:
    """What ``folder`` keeps, or None when it keeps nothing (not graded, or graded before
    grader kept similarity evidence)."""
    folder = Path(folder)
    try:
        found = json.loads((folder / PRINT_NAME).read_text(encoding="utf-8"))
        weights = WeightPrint.from_json(found["fingerprint"]) if found.get("fingerprint") else None
        student, sha256 = str(found["student"]), str(found.get("sha256") or "")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        logits = np.load(folder / LOGITS_NAME, allow_pickle=False)
    except (OSError, ValueError):
        logits = None
    return Held(student, sha256, found.get("data"), weights, found.get("note"), logits)


def read_weights(folder: Path) -> list[np.ndarray] | None:
    """The kept weights of ``folder`` as float32, in file order; None when none were kept."""
    try:
        with np.load(Path(folder) / WEIGHTS_NAME, allow_pickle=False) as held:
            return [held[f"arr_{i}"].astype(np.float32) for i in range(len(held.files))]
    except (OSError, ValueError, KeyError):
        return None


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
