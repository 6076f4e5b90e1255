"""Find the submissions in a class folder and name each one's student.

    discover_submissions(folder) -> list[Entry]

One entry per student: every file, archive or sub-folder directly inside ``folder`` (hidden
names and archiver litter such as ``__MACOSX`` skipped). The student id is ``student`` from the
sub-folder's ``submission.toml`` (in the folder it wraps, if it only wraps one), else the folder
name, else the file name without its suffix (``alice.pt``, ``alice.zip``, ``alice.tar.gz`` ->
``alice``), the same rule as ``grader.submission``; an archive is unpacked only when it is
graded. Nothing is loaded; only bytes are hashed.

No one submission stops the class. One that cannot be read safely (a link out of the class
folder, a folder nested past ``archive.FolderLimits.depth``, a link inside it that leaves it, a
device) is an Entry with a ``problem``, which the batch records as that student's error without
grading. Two that claim one id: the one whose own name is the id keeps it (else the first by
name), the others are graded as ``id~2``, ``id~3``, ... with a ``note`` saying so. Output folder
names (slugs) stay short and distinct: a long one is cut and given a hash of the whole id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.hashing import sha256_file
from grader.messages import say
from grader.submission import MANIFEST_NAME, read_manifest
from grader.submission.archive import JUNK_NAMES, graded_folder, hand_in_stem, is_junk, walk_folder

RESERVED_SLUGS = {"gradebook.csv", "class-report.html", "class-report.pdf"}  # the batch's own outputs
# Characters kept in an output folder name: letters and digits of any script (Chinese names stay
# distinct) and ._@+-; anything else becomes "_" so that a student id from a manifest can never
# name a path outside OUT.
_UNSAFE = re.compile(r"[^\w.@+-]")
# A slug's length in UTF-8 bytes, kept well under a file name's 255 with the batch's staging
# prefix and suffix around it (.batch-tmp-<slug>-old-XXXXXXXX): 32 Chinese characters fit.
SLUG_BYTES = 96
SLUG_HASH = 10  # hex digits of the id's sha256 that end a cut or clashing slug
DUPLICATE_MARK = "~"  # the second submission claiming id X is graded as X~2


@dataclass(frozen=True)
class Entry:
    """One student's submission, found but not inspected.

    Attributes:
        path: the file or folder handed in.
        student: the student id (from the manifest or the name), as written in the gradebook;
            ``<id>~2``, ... for a second claim of an id.
        slug: ``student`` made safe, short and distinct as a folder name under OUT.
        sha256: hex digest of the whole submission's content (every file's relative path and
            bytes, for a folder), so any change to any file is seen by ``resume``.
        problem: why it cannot be graded (a link out of the class folder, ...), or None.
        note: what the TA should know about a graded row (an id claimed twice), or None.
    """

    path: Path
    student: str
    slug: str
    sha256: str
    problem: str | None = None
    note: str | None = None


def discover_submissions(folder: str | Path) -> list[Entry]:
    """List the submissions in ``folder``, sorted by student id; ids and slugs are distinct.

    Raises:
        GraderError: when ``folder`` is not a folder or holds no submission.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GraderError(f"{folder} is not a folder", "pass the folder holding one file or sub-folder per student")
    root = folder.resolve()
    entries = [_entry(path, root) for path in sorted(folder.iterdir()) if not _skipped(path)]
    if not entries:
        raise GraderError(f"{folder} holds no submission",
                          "put one checkpoint file, archive or sub-folder per student in it")
    return sorted(_distinct_slugs(_distinct_ids(entries)), key=lambda e: e.student)


def student_id(path: Path) -> str:
    """The student id of the submission at ``path``: manifest ``student``, else its name."""
    if path.is_dir():
        try:
            manifest = read_manifest(graded_folder(path) / MANIFEST_NAME)
        except (GraderError, OSError):
            manifest = {}  # grading reports the bad manifest; the name still identifies the row
        student = str(manifest.get("student", "")).strip()
        return _printable(student or path.name)
    return _printable(hand_in_stem(path))


def _printable(name: str) -> str:
    """A name as text that can be written: bytes of a file name that are not UTF-8 read as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def slugify(student: str) -> str:
    """``student`` as a safe folder name: unsafe characters -> ``_``, no leading dots, at most
    ``SLUG_BYTES`` (a longer one is cut and ends in a hash of the whole id)."""
    slug = _UNSAFE.sub("_", student).lstrip(".") or "_"
    slug = "_" + slug if slug.lower() in RESERVED_SLUGS else slug
    return slug if len(slug.encode("utf-8")) <= SLUG_BYTES else _hashed(slug, student)


def _hashed(slug: str, student: str) -> str:
    """``slug`` cut to leave room for ``-`` and a hash of ``student``, and ending in them."""
    room = SLUG_BYTES - SLUG_HASH - 1
    cut = slug.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{cut}-{hashlib.sha256(student.encode('utf-8')).hexdigest()[:SLUG_HASH]}"


def content_sha256(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's sorted (relative path, file digest) list, archiver
    litter left out; of the target's name, for a link to nothing (graded as an error, so that the
    student has a row)."""
    return _content(path)[0]


def _content(path: Path) -> tuple[str, str | None]:
    """(``content_sha256``, why the folder cannot be graded or None). A folder is walked without
    following links (``archive.walk_folder``); a link inside it is hashed as its target's name
    (the target is hashed under its own path), and the walk's problem, if any, is hashed too."""
    if path.is_symlink() and not path.exists():
        return hashlib.sha256(b"broken link\0" + os.fsencode(os.readlink(path))).hexdigest(), None
    if path.is_file():
        return sha256_file(path), None
    walk = walk_folder(path)
    digest = hashlib.sha256()
    for relative in walk.files:
        if is_junk(relative):
            continue
        digest.update(relative.encode("utf-8", "surrogateescape") + b"\0")
        if relative in walk.links:
            digest.update(b"link\0" + os.fsencode(os.readlink(path / relative)))
        else:
            digest.update(bytes.fromhex(sha256_file(path / relative)))
    if walk.problem:
        digest.update(b"problem\0" + walk.problem.encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), walk.problem


def _skipped(path: Path) -> bool:
    """Hidden files, the litter of archivers and file managers, and what is neither a file, a folder
    nor a link (a link to nothing stays: its student gets a row saying so, not silence)."""
    if path.name.startswith(".") or path.name in JUNK_NAMES:
        return True
    return not (path.is_file() or path.is_dir() or path.is_symlink())


def _entry(path: Path, root: Path) -> Entry:
    """The Entry of ``path`` in the class folder ``root``: a link that leaves the class folder is
    never followed (it could lead to any file of the grading machine, its own secret key
    included), only named."""
    if path.is_symlink() and not _inside(os.path.realpath(path), root):
        digest = hashlib.sha256(b"link out\0" + os.fsencode(os.readlink(path))).hexdigest()
        return Entry(path, _printable(hand_in_stem(path)), "", digest,
                     problem=say("batch.link_out", file=path.name))
    digest, problem = _content(path)
    if problem:
        problem = say("hand_in.unsafe_folder", file=path.name, why=problem)
    return Entry(path, student_id(path), "", digest, problem=problem)


def _inside(target: str, root: Path) -> bool:
    root_text = str(root)
    return target != root_text and os.path.commonpath([root_text, target]) == root_text


def _distinct_ids(entries: list[Entry]) -> list[Entry]:
    """Entries whose ids are distinct in any case (a case-insensitive file system would merge
    their folders): of those that claim one id, the one whose own name is the id keeps it (else
    the first by name), and the others become ``id~2``, ``id~3``, ... with a note for the TA."""
    claims: dict[str, list[Entry]] = {}
    for entry in entries:
        claims.setdefault(entry.student.lower(), []).append(entry)
    taken = set(claims)
    out = []
    for group in claims.values():
        group = sorted(group, key=lambda e: (not _named_as(e), e.path.name))
        out.append(group[0])
        number = 2
        for entry in group[1:]:
            while f"{entry.student}{DUPLICATE_MARK}{number}".lower() in taken:  # someone's own id: skip it
                number += 1
            renamed = f"{entry.student}{DUPLICATE_MARK}{number}"
            taken.add(renamed.lower())
            note = say("batch.id_claimed_twice", file=entry.path.name, student=repr(entry.student),
                       other=group[0].path.name, renamed=repr(renamed))
            out.append(dataclasses.replace(entry, student=renamed, note=note))
    return out


def _named_as(entry: Entry) -> bool:
    """Whether the submission's own file or folder name is its id (``SC24219070/`` claiming
    ``SC24219070``, as opposed to a copy of someone's submission.toml)."""
    return hand_in_stem(entry.path) == entry.student or entry.path.name == entry.student


def _distinct_slugs(entries: list[Entry]) -> list[Entry]:
    """Entries with their slugs: ``slugify`` of the id, and where two would share one (in any
    case), each of those ends in a hash of its own id instead."""
    slugs = {id(e): slugify(e.student) for e in entries}
    counts: dict[str, int] = {}
    for slug in slugs.values():
        counts[slug.lower()] = counts.get(slug.lower(), 0) + 1
    used: set[str] = set()
    out = []
    for entry in sorted(entries, key=lambda e: e.student):
        slug = slugs[id(entry)]
        if counts[slug.lower()] > 1:
            slug = _hashed(slug, entry.student)
        while slug.lower() in used:  # only if two hashes collide: keep going, deterministically
            slug = _hashed(slug, slug)
        used.add(slug.lower())
        out.append(dataclasses.replace(entry, slug=slug))
    return out

