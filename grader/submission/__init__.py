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

import os

from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.hashing import sha256_file
from grader.submission.forms import (FORMS, NEEDS_CODE, TORCH_SUFFIXES, WEIGHT_SUFFIXES, detect_form,
                                     find_weights)
from grader.submission.history import HISTORY_KEYS, normalise_history, read_history
from grader.submission.manifest import (DEFAULT_ENTRY, INPUT_KEYS, MANIFEST_KEYS, MANIFEST_NAME, parse_entry,
                                        parse_input, read_manifest, resolve_inside)
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
        path: what was handed in (file or folder), resolved.
        weights: the checkpoint file the child loads.
        form: one of ``FORMS``.
        sha256: hex digest of ``weights``.
        files: names of the files handed in, relative to ``path`` (sorted).
        manifest: the parsed submission.toml, or {}.
        entry: ``(file, callable name)`` that builds the network, for forms that need code; else None.
        input: ``{"scale", "mean", "std"}`` from the manifest, or None to use the form's default
            (the checkpoint's own for a run folder, the homework's ToTensor convention otherwise).
        history: per-epoch lists (any of ``HISTORY_KEYS``), or None.
        student: ``{"id", "name"}``.
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


def inspect_submission(path: str | Path, *, limits: PrecheckLimits = LIMITS,
                       rules: IntakeRules = IntakeRules()) -> Submission:
    """Find the checkpoint in ``path``, detect its form, parse the manifest and history.

    Args:
        path: a checkpoint file, or a folder (optionally holding ``submission.toml``).
        limits: the caps on the checkpoint (size, pickle size, entries, storages).
        rules: the class-wide intake rules (the rubric's ``[submission]`` table).

    Returns:
        the inspected Submission.

    Raises:
        GraderError: for a missing or ambiguous checkpoint, a bad manifest or history, an unknown
            or corrupt file, a pickle that names anything outside the allow-list, missing code.
    """
    given = Path(path)
    if given.is_symlink() and not given.exists():
        raise GraderError(f"{given.name} is a link to {os.readlink(given)}, which does not exist",
                          "hand in the file itself (an archive can keep a link and lose what it pointed to)")
    path = given.resolve()
    if not path.exists():
        raise GraderError(f"{path} does not exist", "pass the file or folder the student handed in")
    root = path if path.is_dir() else path.parent
    manifest = read_manifest(root / MANIFEST_NAME) if path.is_dir() else {}
    weights = find_weights(path, manifest)
    size = weights.stat().st_size
    if size == 0:
        raise GraderError(f"{weights.name} is empty (0 bytes)", "save the network again and re-submit")
    if size > limits.file_bytes:
        raise GraderError(f"{weights.name} is {size / 2**20:.0f} MiB, over the "
                          f"{limits.file_bytes / 2**20:.0f} MiB limit", "hand in only the trained network")
    check = check_file(weights, limits)  # zip bombs, storages that claim more than they hold, legacy pickles
    form = detect_form(weights, check, limits=limits)  # its refusals say more, so they come first
    if check.problems:
        raise refusal(weights, check.problems)

    entry = None
    if form in NEEDS_CODE:
        entry = parse_entry(root, manifest.get("entry"), form=form, weights=weights)
    history = None
    history_name = manifest.get("history")
    if history_name:
        history = read_history(resolve_inside(root, history_name, "history"))
    elif path.is_dir():
        for name in ("history.json", "history.csv"):
            if (root / name).is_file():
                history = read_history(resolve_inside(root, name, "history"))
                break
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if path.is_dir() \
        else [path.name]
    student = manifest.get("student", "").strip() or (path.name if path.is_dir() else path.stem)
    return Submission(
        path=path, weights=weights, form=form, sha256=sha256_file(weights), files=files,
        manifest=manifest, entry=entry, input=manifest.get("input"), history=history,
        student={"id": student, "name": manifest.get("name", "").strip() or student},
    )
