"""A submission's training history: per-epoch lists, from the files students write.

    find_history(root, named) -> Path | None     the manifest's file, else the first of HISTORY_NAMES
    load_history(path) -> HistoryFile            never raises: a file that cannot be read says why
    read_history(path) -> {"train_loss": [...], ...}   the same values; GraderError when unreadable
    normalise_history(rows, where=...) -> the same, from already parsed rows
    looks_like_history(name) -> bool             a training log by its name, never a checkpoint

Read: JSON (a dict of lists, a list of per-epoch dicts, JSON lines), CSV (comma, semicolon or tab,
any header case, Excel's UTF-8 BOM) and ``torch.save``/``pickle.dump`` files of lists, numbers
and tensors (``grader.submission.plain_pickle``: opcodes read, nothing unpickled). Keys are
matched through ``ALIASES``; an accuracy series with a value above 1 is in percent and divided by
100. What reading changed is said in ``HistoryFile.notes``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.messages import Message, say
from grader.submission.manifest import resolve_inside
from grader.submission.plain_pickle import LIMITS, RefusedPickle, read_torch_values

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_acc")
CLAIMED_KEYS = HISTORY_KEYS[1:]  # what a rubric checks; an epoch column alone is no history
ACCURACY_KEYS = ("train_acc", "test_acc")
HISTORY_NAMES = ("history.json", "history.csv", "history.pt", "history.pth")

# The alias table. A key is compared lower-cased with everything but letters and digits dropped
# ("Train Loss", "train-loss", "trainLoss" all read "trainloss"), then looked up here: a train
# prefix or none with a loss or accuracy word, a test or validation prefix with an accuracy word.
TRAIN_PREFIXES = ("", "train", "training", "tr")
TEST_PREFIXES = ("test", "testing", "val", "valid", "validation", "eval")
LOSS_WORDS = ("loss", "losses")
ACC_WORDS = ("acc", "accs", "accuracy", "accuracies")
ALIASES = {
    **{word: "epoch" for word in ("epoch", "epochs", "ep")},
    **{p + w: "train_loss" for p in TRAIN_PREFIXES for w in LOSS_WORDS},
    **{p + w: "train_acc" for p in TRAIN_PREFIXES for w in ACC_WORDS},
    **{p + w: "test_acc" for p in TEST_PREFIXES for w in ACC_WORDS},
}
ALIAS_EXAMPLES = "loss, acc, accuracy, Train Loss, training_loss, train_accuracy, val_acc, test_accuracy, Epoch"
_HISTORY_LIKE = re.compile(r"history|^(logs?|metrics)([^a-z]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class HistoryFile:
    """A history file handed in, as read.

    Attributes:
        name: its name in the submission folder.
        values: per-epoch lists under ``HISTORY_KEYS``; None when it could not be read.
        notes: what reading changed, one sentence each (keys read under another name, a
            percentage divided by 100).
        error: why it could not be read, with what to do; None when it was read.
        error_detail: ``error`` as a catalogue message (``grader.messages``), to say it in
            another language; None when it has none.
    """

    name: str
    values: dict | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    error_detail: Message | None = None


def looks_like_history(name: str) -> bool:
    """Whether a file's name says it is a training log (``history.pt``, ``train_history.pth``,
    ``log.pt``, ``metrics.pt``), which is never taken for the checkpoint."""
    return bool(_HISTORY_LIKE.search(Path(name).name))


def find_history(root: Path, named: str | None) -> Path | None:
    """The history of the submission folder ``root``: the file the manifest names (present or not),
    else the first of ``HISTORY_NAMES`` there, else None.

    Raises:
        GraderError: when the name leads out of the folder.
    """
    if named:
        return resolve_inside(root, named, "history")
    for name in HISTORY_NAMES:
        if (root / name).is_file():
            return resolve_inside(root, name, "history")
    return None


def load_history(path: Path, name: str | None = None) -> HistoryFile:
    """Read ``path``; a file that cannot be read is returned with ``error`` set, never raised.

    Args:
        path: the history file.
        name: how to name it in notes and errors [default: its file name].
    """
    name = name or path.name
    try:
        values, notes = _read(path, name)
    except GraderError as exc:
        if exc.detail is not None:  # the error with its hint, as one message
            error = say("history.failed", error=exc.detail) if exc.hint else exc.detail
            return HistoryFile(name, error=error, error_detail=exc.detail)
        return HistoryFile(name, error=f"{exc.message}; {exc.hint}" if exc.hint else exc.message)
    except OSError as exc:  # no permission, an I/O error: the student's file, not a grader bug
        error = say("history.unreadable", file=name, reason=str(exc.strerror or exc))
        return HistoryFile(name, error=error, error_detail=error)
    return HistoryFile(name, values, tuple(notes))


def read_history(path: Path) -> dict:
    """Per-epoch lists under ``HISTORY_KEYS`` from any form this module reads.

    Raises:
        GraderError: for a missing or malformed file, non-numeric values, or none of the keys.
    """
    return _read(path, path.name)[0]


def normalise_history(rows: object, *, where: str) -> dict:
    """``{"train_loss": [...], ...}`` from a dict of lists or a list of per-epoch dicts.

    Raises:
        GraderError: naming ``where`` and the keys found, when none of them is a history key.
    """
    return _normalise(rows, where)[0]


# --- reading -------------------------------------------------------------------------------


def _read(path: Path, name: str) -> tuple[dict, list[str]]:
    if not path.is_file():
        raise GraderError(say("history.missing", file=name))
    size = path.stat().st_size
    if size > LIMITS.file_bytes:
        raise GraderError(say("history.too_large", file=name, size=size))
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") or head[:1] == b"\x80":
        try:
            rows = read_torch_values(path)
        except RefusedPickle as exc:
            raise GraderError(say("history.refused_pickle", file=name, reason=exc.args[0])) from None
    else:
        rows = _parse_text(path.read_bytes(), name)
    return _normalise(rows, name)


def _parse_text(data: bytes, name: str) -> object:
    """JSON, JSON lines or CSV, told apart by the first character."""
    try:
        text = data.decode("utf-8-sig")  # -sig: Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # a locale code page: the names that matter are ASCII
    stripped = text.lstrip()
    try:
        if stripped[:1] in ("{", "["):
            return _parse_json(stripped)
        return _parse_csv(text)
    except (ValueError, csv.Error) as exc:
        raise GraderError(say("history.unparsable", file=name, reason=str(exc))) from None
    except RecursionError:
        raise GraderError(say("history.too_deep", file=name)) from None


def _parse_json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise
    return [json.loads(line) for line in text.splitlines() if line.strip()]  # JSON lines: one epoch each


def _parse_csv(text: str) -> list[dict]:
    header = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header.count)
    rows = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    return [r for r in rows if any(v not in (None, "") for k, v in r.items() if k is not None)]


# --- normalising ---------------------------------------------------------------------------


def _normalise(rows: object, where: str) -> tuple[dict, list[str]]:
    columns = _columns(rows, where)
    chosen, notes = _match_keys(columns, where)
    if not any(key in chosen for key in CLAIMED_KEYS):
        found = ", ".join(str(k)[:40] for k in list(columns)[:12]) or "nothing"
        raise GraderError(say("history.no_keys", file=where, found=found, claimed="/".join(CLAIMED_KEYS),
                              aliases=ALIAS_EXAMPLES))
    history: dict[str, list] = {}
    for key in HISTORY_KEYS:
        if key in chosen:
            history[key], note = _series(columns[chosen[key]], key, chosen[key], where)
            notes += [note] if note else []
    return history, notes


def _columns(rows: object, where: str) -> dict:
    """A dict of per-epoch values from a dict of lists or a list of per-epoch dicts; a dict one
    level deeper (``{"train": {"loss": [...]}}``) is read as ``train_loss``."""
    if isinstance(rows, list):
        if not all(isinstance(r, dict) for r in rows):
            raise GraderError(say("history.list_of_non_objects", file=where))
        keys = list(dict.fromkeys(k for r in rows for k in r))
        rows = {k: [r.get(k) for r in rows] for k in keys}
    if not isinstance(rows, dict):
        raise GraderError(say("history.not_lists", file=where))
    columns = {}
    for key, value in rows.items():
        if isinstance(value, dict):
            columns.update({f"{key}_{inner}": v for inner, v in value.items()})
        else:
            columns[key] = value
    return columns


def _match_keys(columns: dict, where: str) -> tuple[dict[str, object], list[str]]:
    """History key -> the key it is read from: the key itself when written so, else the first alias."""
    targets = {key: ALIASES.get(re.sub(r"[^a-z0-9]", "", str(key).lower())) for key in columns}
    chosen: dict[str, object] = {}
    for key, target in targets.items():
        if target and (target not in chosen or key == target):
            chosen[target] = key
    renamed = tuple(say("note.history_as", written=_shown(written), key=key)
                    for key, written in chosen.items() if written != key and key != "epoch")
    notes = [say("note.history_renamed", file=where, renamed=renamed)] if renamed else []
    notes += [say("note.history_ignored", file=where, key=_shown(key), chosen=_shown(chosen[target]), target=target)
              for key, target in targets.items()
              if target and chosen[target] != key]
    return chosen, notes


def _series(values: object, key: str, written: object, where: str) -> tuple[list, str | None]:
    """One key's numbers; an accuracy in percent divided by 100 (with the note that says so)."""
    if not isinstance(values, (list, tuple)):
        values = [values]
    numbers, percent_sign = [], False
    for value in values:
        number, sign = _number(value)
        if number is None:
            raise GraderError(say("history.not_a_number", file=where, key=_shown(written), value=repr(str(value)[:40])))
        numbers.append(number)
        percent_sign |= sign
    if not all(math.isfinite(v) for v in numbers):
        raise GraderError(say("history.not_finite", file=where, key=_shown(written)))
    if key == "epoch":
        return [int(v) for v in numbers], None
    if key in ACCURACY_KEYS and (percent_sign or any(v > 1 for v in numbers)):
        top = max(numbers)
        return [v / 100 for v in numbers], say("note.history_percent", file=where, key=_shown(written), top=f"{top:g}")
    return numbers, None


def _shown(key: object) -> str:
    """A key of the student's file, for a note or a message: cut to 40 characters."""
    text = str(key)
    return text if len(text) <= 40 else text[:40] + "..."


def _number(value: object) -> tuple[float | None, bool]:
    """A number, and whether it was written with a percent sign; (None, False) if not a number."""
    while isinstance(value, (list, tuple)) and len(value) == 1:  # a 1-element tensor, [[0.5]]
        value = value[0]
    if isinstance(value, str):
        text = value.strip()
        sign = text.endswith("%")
        text = text.rstrip("%").strip()
        if text.count(",") == 1 and "." not in text:  # a decimal comma (a European Excel's 0,55)
            text = text.replace(",", ".")
        try:
            return float(text), sign
        except ValueError:
            return None, False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value), False) if abs(value) < 1e300 else (math.inf, False)  # an int too big for a float
    return None, False
