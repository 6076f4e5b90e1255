"""Which file is the checkpoint, and which form it takes, from names and bytes alone.

    find_weights(path, manifest, rules) -> Path
    detect_form(weights, check) -> one of FORMS
    import_time_work(source) -> [Statement]         what model.py runs when it is imported

Nothing is unpickled: the form comes from the suffix, magic bytes, the zip listing and the
pre-check's scan of the pickle's opcodes; a file in torch's legacy (non-zip) format takes the
form its main pickle names, as a zip's ``data.pkl`` does.
"""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from grader.errors import GraderError
from grader.messages import say
from grader.submission.archive import is_junk
from grader.submission.history import looks_like_history
from grader.submission.manifest import resolve_inside
from grader.submission.model_code import SCRIPT_MODULES
from grader.submission.pickle_scan import PickleScan, allowed_global, is_torchvision_model, stock_module_names
from grader.submission.precheck import (LEGACY_PICKLE, LIMITS, FileCheck, PrecheckLimits, entry_problems,
                                        is_data_pickle, refusal)
from grader.submission.rules import IntakeRules

TORCH_SUFFIXES = (".pt", ".pth", ".th", ".bin", ".ckpt", ".tar", ".pkl")
WEIGHT_SUFFIXES = TORCH_SUFFIXES + (".safetensors", ".pt2", ".onnx")
FORMS = ("pickled-module", "state-dict", "safetensors", "torchscript", "exported", "onnx", "run-folder")
NEEDS_CODE = {"state-dict", "safetensors"}


def find_weights(path: Path, manifest: dict, rules: IntakeRules = IntakeRules()) -> Path:
    """The checkpoint: ``path`` itself when a file; in a folder, the manifest's ``weights``, a run
    folder's checkpoint.pt, the only candidate, or the one candidate the rubric's ``weights`` picks.

    Candidates are the files with a ``WEIGHT_SUFFIXES`` suffix, less hidden files, archiver litter
    (``archive.is_junk``) and training logs (``history.looks_like_history``, or the manifest's
    ``history``).

    Raises:
        GraderError: the manifest names no such file; no candidate; or several and nothing picks
            one (the message lists them and gives the line that picks one).
    """
    if path.is_file():
        return path
    if "weights" in manifest:
        weights = resolve_inside(path, manifest["weights"], "weights")
        if not weights.is_file():
            raise GraderError(say("weights.no_such_file", name=manifest["weights"], folder=str(path)))
        return weights
    if (path / "checkpoint.pt").is_file():  # a run folder written by `grader train`
        return resolve_inside(path, "checkpoint.pt", "weights")
    candidates = _candidates(path, manifest.get("history"))
    if not candidates:
        raise GraderError(say("weights.none", folder=str(path), suffixes=", ".join(WEIGHT_SUFFIXES)))
    if len(candidates) == 1:
        return resolve_inside(path, candidates[0], "weights")
    return resolve_inside(path, _chosen(path, candidates, rules.weights), "weights")


def _candidates(folder: Path, history: str | None) -> list[str]:
    """The relative names of the files in ``folder`` that may be the checkpoint, sorted."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.suffix.lower() in WEIGHT_SUFFIXES and p.is_file())
    history = PurePosixPath(history).as_posix() if history else None
    return [n for n in names if not is_junk(n) and not any(part.startswith(".") for part in n.split("/"))
            and not looks_like_history(n) and n != history]


def _chosen(folder: Path, candidates: list[str], pattern: str | None) -> str:
    """The one candidate the rubric's ``weights`` matches (``_matches_rubric``)."""
    matched = [n for n in candidates if pattern and _matches_rubric(n, pattern)]
    if len(matched) == 1:
        return matched[0]
    shown = {"folder": str(folder), "names": ", ".join(candidates), "pick": (matched or candidates)[0]}
    if not pattern:
        raise GraderError(say("weights.several", **shown))
    if not matched:
        raise GraderError(say("weights.several_rubric_none", **shown, pattern=pattern))
    raise GraderError(say("weights.several_rubric", **shown, pattern=pattern, matches=", ".join(matched)))


def _matches_rubric(name: str, pattern: str) -> bool:
    """Whether the relative ``name`` matches the rubric's ``weights`` pattern: from the right, part
    by part, as ``Path.match``, in any case. ``*.pth`` is any .pth file; ``models/HW2_CNN.pth`` is
    that file in a models folder at any depth, or at the top of a hand-in that was that folder."""
    parts = PurePosixPath(name.lower()).parts
    return PurePosixPath(*parts).match("/".join(PurePosixPath(pattern.lower()).parts[-len(parts):]))


def detect_form(weights: Path, check: FileCheck, *, limits: PrecheckLimits = LIMITS,
                own: frozenset[str] = frozenset()) -> str:
    """Name the form of ``weights`` from its suffix, magic bytes and (for torch pickles) its globals.

    Args:
        weights: the checkpoint.
        check: the pre-check of ``weights``, whose pickle scans are reused (not read again).
        own: the globals the student's own code defines (``model_code``), allowed besides the stock ones.

    Raises:
        GraderError: for an unknown or corrupt file, or a pickle naming a global outside the allow-list.
    """
    suffix = weights.suffix.lower()
    with weights.open("rb") as f:
        head = f.read(16)
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors" or _looks_like_safetensors(head):
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return _zip_form(weights, check, limits, own)
    if head[:1] == b"\x80":
        return _legacy_form(weights, check)
    raise GraderError(say("form.unknown", file=weights.name))


def _looks_like_safetensors(head: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON object."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 1 << 28


def _zip_form(weights: Path, check: FileCheck, limits: PrecheckLimits, own: frozenset[str]) -> str:
    try:
        with zipfile.ZipFile(weights) as archive:
            problems = entry_problems(archive, weights.stat().st_size, limits)
            if problems:  # a zip bomb: testzip() below would inflate it in this process
                raise refusal(weights, problems)
            names = archive.namelist()
            bad = archive.testzip()  # CRC of every member: catches truncation and bit rot
            if bad is not None:
                raise GraderError(say("form.bad_checksum", file=weights.name, member=bad))
            if any(n.endswith("archive_format") for n in names) and any("/models/" in n for n in names):
                return "exported"
            if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
                return "torchscript"
            pickles = [n for n in names if is_data_pickle(n)]
            if len(pickles) != 1:
                raise GraderError(say("form.zip_not_checkpoint", file=weights.name))
            info = archive.getinfo(pickles[0])
            if info.file_size > limits.pickle_bytes:
                raise GraderError(say("form.pickle_too_large", file=weights.name, size=info.file_size))
    except zipfile.BadZipFile:  # its own words ("File is not a zip file") say no more
        raise GraderError(say("form.truncated", file=weights.name)) from None
    scan = check.pickles.get(pickles[0])
    if scan is None:  # the pre-check could not read it, and says why
        raise refusal(weights, check.problems)
    return _pickle_form(weights, scan, own)


def _legacy_form(weights: Path, check: FileCheck) -> str:
    """Name the form of a file in torch's legacy format, which the pre-check read in full."""
    scan = check.pickles.get(LEGACY_PICKLE)
    if scan is None or check.problems:  # a bare pickle, a truncated file, a forbidden global
        raise refusal(weights, check.problems)
    return _pickle_form(weights, scan)


def _pickle_form(weights: Path, scan: PickleScan, own: frozenset[str] = frozenset()) -> str:
    """Classify a torch.save pickle by the globals and strings it names, refusing foreign globals."""
    if scan.error:
        raise GraderError(say("form.pickle_unreadable", file=weights.name, reason=scan.error))
    foreign = sorted({g for g in scan.globals if not allowed_global(g, own=own)})
    script = [g for g in foreign if g.partition(".")[0] in SCRIPT_MODULES and g.count(".") == 1]
    if script:  # a class of the student's own that no code handed in defines
        raise GraderError(say("form.missing_class", file=weights.name, pickled=script[0],
                              name=script[0].rpartition(".")[2]))
    if foreign:
        raise GraderError(say("form.foreign_globals", file=weights.name, names=", ".join(foreign[:5])))
    if any(g in stock_module_names() or g in own or is_torchvision_model(g) for g in scan.globals):
        return "pickled-module"
    if "grader-checkpoint" in scan.strings:
        return "run-folder"
    return "state-dict"


# model.py, read as text: what it runs when imported (the child imports it, where a download has
# no network and a training loop runs into the wall clock).
MAIN_GUARD = 'if __name__ == "__main__":'
SOURCE_BYTES = 4 << 20  # a model.py larger than this is not read for hints
_BLOCKS = (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)  # run at import, whatever is inside


class Statement(NamedTuple):
    """A top-level statement of a Python file: its first and last line, and its text shortened."""

    line: int
    end: int
    text: str


def import_time_work(source: str) -> list[Statement]:
    """The top-level statements of ``source`` that do work when it is imported: loops, ``with``
    blocks, calls, and assignments or branches that call something, outside ``MAIN_GUARD``.

    Definitions, imports, docstrings, assignments of constants, ``raise`` and ``assert`` do none.
    Loops, ``with`` blocks and bare calls come first (they are what trains or downloads), then the
    rest, each group in line order; [] when ``source`` is not Python.
    """
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError):
        return []
    busy = [node for node in body if _does_work(node)]
    first = [n for n in busy if isinstance(n, (*_BLOCKS, ast.Expr))]
    return [_statement(n, source) for n in first + [n for n in busy if n not in first]]


def import_time_statements(work: list[Statement]) -> tuple:
    """The first three statements of ``work`` for a message that names them (``line 3: `...```)."""
    return tuple(say("code.statement", line=s.line, text=s.text) for s in work[:3])


def read_import_time_work(file: Path) -> list[Statement]:
    """``import_time_work`` of a file; [] when it cannot be read or is too large to read."""
    try:
        if file.stat().st_size > SOURCE_BYTES:
            return []
        return import_time_work(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return []


def _does_work(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                         ast.Pass, ast.Global, ast.Nonlocal)):
        return False
    if isinstance(node, ast.Expr):
        return not isinstance(node.value, ast.Constant)  # a docstring does nothing
    if isinstance(node, ast.If) and _is_main_guard(node.test):
        return any(_does_work(n) for n in node.orelse)
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return node.value is not None and _calls(node.value)
    if isinstance(node, (ast.If, ast.Try)):
        parts = [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                 *(n for handler in getattr(node, "handlers", []) for n in handler.body)]
        return (isinstance(node, ast.If) and _calls(node.test)) or any(_does_work(n) for n in parts)
    return isinstance(node, _BLOCKS)


def _calls(node: ast.AST) -> bool:
    return any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)) for n in ast.walk(node))


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _statement(node: ast.stmt, source: str) -> Statement:
    text = (ast.get_source_segment(source, node) or "").splitlines()
    first = text[0].strip() if text else type(node).__name__
    return Statement(node.lineno, node.end_lineno or node.lineno,
                     f"`{first[:70]}{'...' if len(first) > 70 or len(text) > 1 else ''}`")
