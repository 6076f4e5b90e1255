"""What a student handed in: find the checkpoint, name its form, read the manifest, check it cheaply.

    inspect_submission(path) -> Submission

Everything here runs in the grading process, so nothing is unpickled or imported: the form comes
from file names, magic bytes, zip listings and a scan of pickle opcodes (``pickletools`` reads the
opcodes without executing them). The child process (``grader.runner.child``) does the loading.

The parts: ``manifest`` (submission.toml, its [input] table and entry), ``forms`` (which file is
the checkpoint and which form it takes), ``history`` (the per-epoch log), ``precheck`` (cheap
safety checks on the checkpoint's bytes) and ``pickle_scan`` (what a pickle names, with the
allow-lists of ``allowlists``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.messages import rewritten, say
from grader.hashing import sha256_file
from grader.submission.archive import ARCHIVE_LIMITS, ArchiveLimits, archive_kind, graded_folder, hand_in_stem, \
    is_junk, unpack, walk_folder
from grader.submission.fence import FENCE_LIMITS, FenceLimits, run_fenced
from grader.submission.forms import (FORMS, NEEDS_CODE, TORCH_SUFFIXES, WEIGHT_SUFFIXES, detect_form,
                                     find_weights)
from grader.submission.history import (HISTORY_KEYS, HistoryFile, find_history, load_history, normalise_history,
                                       read_history)
from grader.submission.manifest import (DEFAULT_ENTRY, INPUT_KEYS, MANIFEST_KEYS, MANIFEST_NAME, parse_entry,
                                        parse_input, read_manifest, resolve_inside)
from grader.submission.model_code import (TA_ORIGIN, ClassBinding, ModelCode, bind_classes, find_model_code,
                                          own_names)
from grader.submission.pickle_scan import is_torchvision_model
from grader.submission.precheck import LIMITS, PrecheckLimits, check_file, refusal
from grader.submission.rules import IntakeRules

__all__ = [
    "DEFAULT_ENTRY", "FORMS", "HISTORY_KEYS", "INPUT_KEYS", "MANIFEST_KEYS", "MANIFEST_NAME", "NEEDS_CODE",
    "TORCH_SUFFIXES", "WEIGHT_SUFFIXES", "Submission", "detect_form", "find_weights", "inspect_submission",
    "normalise_history", "parse_entry", "parse_input", "read_history", "read_manifest", "sha256_file",
]


@dataclass(frozen=True)
class Submission:
    """A submission, inspected but not loaded.

    Attributes:
        path: what was handed in (file, folder or archive), resolved.
        weights: the checkpoint file the child loads.
        form: one of ``FORMS``.
        sha256: hex digest of ``weights``; of the archive, for an archive (it names the hand-in).
        files: names of the files handed in, relative to ``folder`` (sorted), archiver litter left out.
        manifest: the parsed submission.toml, or {}.
        entry: ``(file, callable name)`` that builds the network, for forms that need code; else None.
        input: ``{"scale", "mean", "std"}`` from the manifest, or None to use the form's default
            (the checkpoint's own for a run folder, the homework's ToTensor convention otherwise).
        history: per-epoch lists (any of ``HISTORY_KEYS``), or None.
        history_file: the history file handed in, as read (its notes, or why it could not be
            read: a failed claim, which fails only the checks that need it), or None.
        student: ``{"id", "name"}``.
        folder: the folder whose files are graded, and all the sandboxed child may read: ``path``
            or the single folder it wraps, or where an archive was unpacked; None for a file.
        scratch: the private (0700) temporary folder an archive was unpacked into (and notebooks'
            definitions written to), which ``close`` (or leaving a ``with`` block) removes.
        classes: the student's own classes a whole pickled network names, bound to the code that
            defines them (``model_code.bind_classes``); the child imports and checks them.
        code_files: code outside ``folder`` the child must read (the TA's model code, notebooks'
            definitions as modules).
    """

    path: Path
    weights: Path
    form: str
    sha256: str
    files: list[str]
    manifest: dict = field(default_factory=dict)
    entry: tuple[Path, str] | None = None
    input: dict | None = None
    history: dict | None = None
    student: dict = field(default_factory=dict)
    history_file: HistoryFile | None = None
    folder: Path | None = None
    scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False, compare=False)
    classes: tuple[ClassBinding, ...] = ()
    code_files: tuple[Path, ...] = ()

    def __enter__(self) -> Submission:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch folder (an unpacked archive, notebooks' definitions)."""
        if self.scratch is not None:
            self.scratch.cleanup()

    def describe(self) -> dict:
        """The ``submission`` object of results.json (``input`` filled in later by the child)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "format": self.form,
            "files": self.files,
            "manifest": self.manifest,
            "input": self.input,
        }


def inspect_submission(path: str | Path, *, limits: PrecheckLimits = LIMITS, rules: IntakeRules = IntakeRules(),
                       archive_limits: ArchiveLimits = ARCHIVE_LIMITS, fence: FenceLimits = FENCE_LIMITS) -> Submission:
    """Find the checkpoint in ``path``, detect its form, parse the manifest and history.

    A folder that only wraps another folder is entered (``graded_folder``). An archive of files
    (zip, tar, tar.gz, told from a checkpoint by its bytes: ``archive.archive_kind``) is unpacked
    into a private scratch folder and graded as the folder it holds; the Submission owns that
    folder: use it in a ``with`` block (or call ``close``) once the child has run. A folder (or
    what an archive holds) is walked first without following links (``archive.walk_folder``).

    The whole inspection runs in a forked child under ``fence``'s caps on CPU time, memory and
    wall clock (``grader.submission.fence``): no file handed in can make this process run long
    or grow, whatever parser it reaches.

    Args:
        path: a checkpoint file, a folder (optionally holding ``submission.toml``), or an archive.
        limits: the caps on the checkpoint (size, pickle size, entries, storages).
        rules: the class-wide intake rules (the rubric's ``[submission]`` table).
        archive_limits: the caps on an archive (entries, bytes, compression ratio).
        fence: the caps on the inspection as a whole.

    Returns:
        the inspected Submission.

    Raises:
        GraderError: for a missing or ambiguous checkpoint, a bad manifest, a history named outside
            the folder, an unknown or corrupt file, a pickle that names anything outside the
            allow-list, missing code, a link that leaves the hand-in, a cap of the fence broken.
            A history that cannot be read is recorded, not raised.
    """
    given = Path(path)
    scratch = _scratch()  # made here, so that it is removed here however the inspection ends
    try:
        found = run_fenced(lambda: _inspect_hand_in(given, Path(scratch.name).resolve(), limits=limits, rules=rules,
                                                    archive_limits=archive_limits),
                           what=say("fence.inspecting", file=given.name), allowed=_RESULT_CLASSES, limits=fence)
    except BaseException:
        scratch.cleanup()
        raise
    if any(Path(scratch.name).iterdir()):  # an unpacked archive, notebooks' definitions
        return dataclasses.replace(found, scratch=scratch)
    scratch.cleanup()
    return found


# The classes an inspection's result holds, which are all its fenced child may send back.
_RESULT_CLASSES = frozenset({
    ("grader.submission", "Submission"), ("grader.submission.history", "HistoryFile"),
    ("grader.submission.model_code", "ClassBinding"), ("pathlib", "PosixPath"),
    *(("datetime", name) for name in ("datetime", "date", "time", "timezone", "timedelta")),  # TOML dates
})


def _inspect_hand_in(given: Path, scratch: Path, *, limits: PrecheckLimits, rules: IntakeRules,
                     archive_limits: ArchiveLimits) -> Submission:
    """``inspect_submission``'s work, in its fenced child; ``scratch`` is the empty private folder
    to unpack an archive into and write notebooks' definitions to."""
    if given.is_symlink() and not given.exists():
        raise GraderError(say("hand_in.dangling_link", file=given.name, target=os.readlink(given)))
    path = given.resolve()
    if not path.exists():
        raise GraderError(say("hand_in.missing", file=str(path)))
    student = None
    if path.is_dir():
        _refuse_unsafe_folder(path, path.name)
        folder = graded_folder(path)
        packed = _lone_archive(folder)
        if packed is None:
            return _inspect(path, folder, limits=limits, rules=rules, scratch=scratch)
        (path, kind), student = packed, path.name  # an upload kept as it came (PrairieLearn's student/hw2.zip)
    else:
        kind = archive_kind(path)
        if kind is None:
            return _inspect(path, None, limits=limits, rules=rules, scratch=scratch)
    unpacked = scratch / "hand-in"  # the child is shown this, never /tmp
    try:
        unpacked.mkdir()
        unpack(path, unpacked, kind, limits=archive_limits)
        _refuse_unsafe_folder(unpacked, path.name)
        return _inspect(path, graded_folder(unpacked), limits=limits, rules=rules, scratch=scratch, student=student)
    except GraderError as exc:  # named inside the archive, not in a scratch folder nobody knows
        raise GraderError(rewritten(exc.message, str(unpacked), path.name),
                          exc.hint.replace(str(unpacked), path.name)) from None


def _lone_archive(folder: Path) -> tuple[Path, str] | None:
    """The archive that is ``folder``'s only entry (archiver litter aside), and its kind; None when
    the folder holds anything else."""
    inside = [p for p in folder.iterdir() if not is_junk(p.name)]
    if len(inside) != 1 or inside[0].is_symlink() or not inside[0].is_file():
        return None
    kind = archive_kind(inside[0])
    return None if kind is None else (inside[0], kind)


def _refuse_unsafe_folder(folder: Path, name: str) -> None:
    """Refuse a folder with a link out of it, a device, or folders nested past the cap, before
    anything in it is read (``archive.walk_folder``)."""
    problem = walk_folder(folder).problem
    if problem:
        raise GraderError(say("hand_in.unsafe_folder", file=name, why=problem))


def _scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="grader-hand-in-")  # 0700: other users stay out


def _inspect(path: Path, folder: Path | None, *, limits: PrecheckLimits, rules: IntakeRules,
             scratch: Path, student: str | None = None) -> Submission:
    """``inspect_submission`` of the hand-in ``path`` whose files lie in ``folder`` (None: a file);
    ``student``: the id when the manifest gives none [default: the name of ``path``]."""
    root = folder or path.parent
    manifest = read_manifest(root / MANIFEST_NAME) if folder else {}
    weights = find_weights(folder or path, manifest, rules)
    size = weights.stat().st_size
    if size == 0:
        raise GraderError(say("weights.empty", file=weights.name))
    if size > limits.file_bytes:
        raise GraderError(say("weights.too_large", file=weights.name, size=f"{size / 2**20:.0f}",
                              limit=f"{limits.file_bytes / 2**20:.0f}"))
    codes = find_model_code(folder, entry_file(root, manifest) if folder else None, rules.model_code, scratch)
    own = own_names(codes)  # the student's classes a whole pickled network may name
    check = check_file(weights, limits, own=own)  # zip bombs, lying storages, legacy pickles
    form = detect_form(weights, check, limits=limits, own=own)  # its refusals say more, so they come first
    if check.problems:
        raise refusal(weights, check.problems)

    entry, classes = None, ()
    if form in NEEDS_CODE:
        entry = _entry(root, folder, manifest, codes, rules, form=form, weights=weights)
    elif form == "pickled-module":
        named = [g for scan in check.pickles.values() for g in scan.globals if g in own or is_torchvision_model(g)]
        classes = tuple(bind_classes(named, codes)[0])
    found = find_history(root, manifest.get("history")) if folder else None
    history = load_history(found, str(found.relative_to(root))) if found else None  # unreadable: recorded
    files = _listing(folder) if folder else [path.name]
    student = manifest.get("student", "").strip() or student or (path.name if path.is_dir() else hand_in_stem(path))
    return Submission(
        path=path, folder=folder, weights=weights, form=form, files=files,
        sha256=sha256_file(path if folder is not None and path.is_file() else weights),  # an archive: itself
        manifest=manifest, entry=entry, input=manifest.get("input"), history=history and history.values,
        student={"id": student, "name": manifest.get("name", "").strip() or student}, history_file=history,
        classes=classes, code_files=_code_files(folder, entry, classes),
    )


def entry_file(root: Path, manifest: dict) -> Path | None:
    """The file the manifest's entry (default ``model.py``) names in ``root``, None when malformed."""
    file_name = (manifest.get("entry") or DEFAULT_ENTRY).partition(":")[0]
    try:
        return resolve_inside(root, file_name, "entry") if file_name.endswith(".py") else None
    except GraderError:
        return None


def _entry(root: Path, folder: Path | None, manifest: dict, codes: list[ModelCode], rules: IntakeRules, *,
           form: str, weights: Path) -> tuple[Path, str]:
    """The code that builds the network for weights alone: the folder's model.py (or its entry),
    else a notebook in the folder, else the TA's model code; a bare checkpoint gets only the TA's."""
    ta = next((c for c in codes if c.origin.startswith(TA_ORIGIN)), None)
    if folder is not None:
        named = entry_file(root, manifest)
        if manifest.get("entry") or (named is not None and named.is_file()) or not codes:
            return parse_entry(root, manifest.get("entry"), form=form, weights=weights)
        code = next((c for c in codes if c is not ta), ta)  # a notebook in the folder, else the TA's
    elif rules.model_code is None:
        raise GraderError(say("weights.alone", file=weights.name, form=form))
    else:
        code = ta
    if code is None:
        raise GraderError(say("weights.ta_code_unreadable", file=weights.name, form=form,
                              code=rules.model_code.name))
    return code.path, DEFAULT_ENTRY.partition(":")[2]


def _code_files(folder: Path | None, entry: tuple[Path, str] | None,
                classes: tuple[ClassBinding, ...]) -> tuple[Path, ...]:
    """The code files outside the hand-in's folder that the child must read (the TA's model code,
    notebooks' definitions written out)."""
    files = {Path(b.file) for b in classes if b.file} | ({entry[0]} if entry else set())
    return tuple(sorted(f for f in files if folder is None or folder not in f.parents))


def _listing(folder: Path) -> list[str]:
    """The files in ``folder``, relative to it and sorted, archiver litter left out."""
    names = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(n for n in names if not is_junk(n))
