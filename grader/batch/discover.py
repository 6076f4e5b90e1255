"""Find the submissions in a class folder and name each one's student.

    discover_submissions(folder) -> list[Entry]

One entry per student: every file, archive or sub-folder directly inside ``folder`` (hidden
names and archiver litter such as ``__MACOSX`` skipped). The student id is ``student`` from the
sub-folder's ``submission.toml`` (in the folder it wraps, if it only wraps one), else the folder
name, else the file name without its suffix (``alice.pt``, ``alice.zip``, ``alice.tar.gz`` ->
``alice``), the same rule as ``grader.submission``; an archive is unpacked only when it is
graded. Nothing is loaded; only bytes are hashed.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.hashing import sha256_file
from grader.submission import MANIFEST_NAME, read_manifest
from grader.submission.archive import JUNK_NAMES, graded_folder, hand_in_stem, is_junk

RESERVED_SLUGS = {"gradebook.csv", "class-report.html", "class-report.pdf"}  # the batch's own outputs
# Characters kept in an output folder name: letters and digits of any script (Chinese names stay
# distinct) and ._@+-; anything else becomes "_" so that a student id from a manifest can never
# name a path outside OUT.
_UNSAFE = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True)
class Entry:
    """One student's submission, found but not inspected.

    Attributes:
        path: the file or folder handed in.
        student: the student id (from the manifest or the name), as written in the gradebook.
        slug: ``student`` made safe as a folder name under OUT.
        sha256: hex digest of the whole submission's content (every file's relative path and
            bytes, for a folder), so any change to any file is seen by ``resume``.
    """

    path: Path
    student: str
    slug: str
    sha256: str


def discover_submissions(folder: str | Path) -> list[Entry]:
    """List the submissions in ``folder``, sorted by student id.

    Raises:
        GraderError: when ``folder`` is not a folder, holds no submission, or two submissions
            claim the same student id (or ids that map to the same folder name).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GraderError(f"{folder} is not a folder", "pass the folder holding one file or sub-folder per student")
    entries = [_entry(path) for path in sorted(folder.iterdir()) if not _skipped(path)]
    if not entries:
        raise GraderError(f"{folder} holds no submission",
                          "put one checkpoint file, archive or sub-folder per student in it")
    _refuse_duplicates(entries)
    return sorted(entries, key=lambda e: e.student)


def student_id(path: Path) -> str:
    """The student id of the submission at ``path``: manifest ``student``, else its name."""
    if path.is_dir():
        try:
            manifest = read_manifest(graded_folder(path) / MANIFEST_NAME)
        except GraderError:
            manifest = {}  # grading reports the bad manifest; the name still identifies the row
        student = str(manifest.get("student", "")).strip()
        return student or path.name
    return hand_in_stem(path)


def slugify(student: str) -> str:
    """``student`` as a safe folder name: unsafe characters -> ``_``, no leading dots."""
    slug = _UNSAFE.sub("_", student).lstrip(".") or "_"
    return "_" + slug if slug.lower() in RESERVED_SLUGS else slug


def content_sha256(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's sorted (relative path, file digest) list, archiver
    litter left out; of the target's name, for a link to nothing (graded as an error, so that the
    student has a row)."""
    if path.is_symlink() and not path.exists():
        return hashlib.sha256(b"broken link\0" + os.fsencode(os.readlink(path))).hexdigest()
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not is_junk(p.relative_to(path))):
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        digest.update(bytes.fromhex(sha256_file(file)))
    return digest.hexdigest()


def _skipped(path: Path) -> bool:
    """Hidden files, the litter of archivers and file managers, and what is neither a file, a folder
    nor a link (a link to nothing stays: its student gets a row saying so, not silence)."""
    if path.name.startswith(".") or path.name in JUNK_NAMES:
        return True
    return not (path.is_file() or path.is_dir() or path.is_symlink())


def _entry(path: Path) -> Entry:
    student = student_id(path)
    return Entry(path=path, student=student, slug=slugify(student), sha256=content_sha256(path))


def _refuse_duplicates(entries: list[Entry]) -> None:
    for attr in ("student", "slug"):
        seen: dict[str, Entry] = {}
        for entry in entries:
            key = getattr(entry, attr).lower()  # case-insensitive file systems would merge them
            first = seen.setdefault(key, entry)
            if first is entry:
                continue
            if attr == "student":
                raise GraderError(
                    f"{first.path.name} and {entry.path.name} both belong to student {entry.student!r}",
                    "give each a distinct `student` in its submission.toml, or rename one")
            raise GraderError(
                f"{first.path.name} (student {first.student!r}) and {entry.path.name} (student "
                f"{entry.student!r}) would share the output folder {entry.slug!r}",
                "give one a distinct `student` in its submission.toml, or rename one")
