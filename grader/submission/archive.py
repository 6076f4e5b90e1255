"""Archives handed in (zip, tar, tar.gz), recognised by their bytes and unpacked safely.

    archive_kind(path) -> "zip" | "tar" | None      None: a checkpoint (or something else), not files
    unpack(path, into, kind) -> into                every entry checked, then written under ``into``
    graded_folder(folder) -> Path                   past the single folders that wrap a hand-in
    is_junk(relative) -> bool                       what archivers and file managers leave behind
    zip_entry_count(path, cap) -> int               a zip's entries, counted before zipfile lists them
    walk_folder(folder) -> FolderWalk               a hand-in folder's files, no link followed

A torch checkpoint is a zip too (``torch.save``, TorchScript, ``torch.export``), and
``model_best.pth.tar`` is usually one (zip or legacy pickle): the suffix decides nothing. A zip is a
checkpoint when its entries are the ones torch writes (``<name>/data.pkl``, ``<name>/data/0``,
``<name>/version``, ``<name>/archive_format``, ...), a tar is one of files when its header says
``ustar``, and a gzip stream is one when it holds such a tar.

Nothing an archive holds is trusted: an entry with an absolute path, a ``..`` part, a link, a
device or a FIFO refuses the whole archive, and the caps on entries, bytes and compression ratio
stop a bomb before it fills the disk. Files are written with ``O_EXCL | O_NOFOLLOW``, 0644, never
executable; folders 0755, so the sandboxed child can read them (the caller's scratch folder above
them is private, 0700).
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from grader.errors import GraderError
from grader.messages import Message, say
from grader.limits import GiB, MiB, format_bytes


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on one archive handed in.

    Attributes:
        entries: files, folders and anything else listed, counted before any is written.
        total_bytes: all files unpacked, in bytes (a 1 GiB checkpoint with its code and notebook).
        ratio: unpacked over packed bytes, per zip entry and over a tar.gz's whole stream; weights
            pack about 1.1:1, source text 3-5:1, a bomb 1000:1.
        ratio_floor_bytes: an entry (or stream) below this many unpacked bytes is never refused for
            its ratio: a blank 100 KiB file packs 1000:1 and harms nobody.
    """

    entries: int = 10_000
    total_bytes: int = 2 * GiB
    ratio: int = 100
    ratio_floor_bytes: int = 1 * MiB


ARCHIVE_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class FolderLimits:
    """Caps on a folder handed in (or unpacked from an archive), walked before anything in it is read.

    Attributes:
        depth: folders inside folders below it (a project with its virtualenv is about 12 deep;
            Python's own walks of a tree fail somewhere past 300).
        entries: files, folders and links.
    """

    depth: int = 32
    entries: int = 100_000


FOLDER_LIMITS = FolderLimits()
# Litter of archivers and file managers: never a file of the hand-in, never a checkpoint.
JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", ".ipynb_checkpoints", "desktop.ini"})
APPLE_DOUBLE = "._"  # macOS resource forks: ._model.pth beside model.pth
_TORCH_ENTRY = re.compile(r"(?:[^/]+/)?data\.pkl|[^/]+/(?:archive_format|byteorder|version|\.data/[^/]+|data/\d+)")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a first entry, or the end of an empty archive
_GZIP_MAGIC = b"\x1f\x8b"
_TAR_MAGIC_AT = 257  # "ustar" in a POSIX or GNU tar header
_ZIP_UTF8 = 0x800  # general purpose flag bit 11: the name is UTF-8
_ZIP_ENCRYPTED = 0x1
_COPY_CHUNK = 1 * MiB


def archive_kind(path: Path) -> str | None:
    """``"zip"`` or ``"tar"`` for an archive of files, None for anything else (a torch checkpoint
    in zip or legacy form, safetensors, a corrupt file): what the bytes are, whatever the suffix.

    Raises:
        GraderError: a file named ``.zip`` whose zip directory cannot be read.
    """
    with path.open("rb") as f:
        head = f.read(_TAR_MAGIC_AT + 8)
    if head.startswith(_ZIP_MAGIC):
        return "zip" if _is_archive_zip(path) else None
    if head.startswith(_GZIP_MAGIC):
        head = _gunzip_head(path, _TAR_MAGIC_AT + 8)
    return "tar" if head[_TAR_MAGIC_AT:_TAR_MAGIC_AT + 5] == b"ustar" else None


def _is_archive_zip(path: Path) -> bool:
    if zip_entry_count(path, ARCHIVE_LIMITS.entries) > ARCHIVE_LIMITS.entries:
        return True  # unpack refuses it by its count, before zipfile lists it
    try:
        with zipfile.ZipFile(path) as archive:
            return not any(_TORCH_ENTRY.fullmatch(name) for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if path.name.lower().endswith(".zip"):
            raise GraderError(say("archive.unreadable_zip", file=path.name, reason=str(exc))) from None
        return False  # a truncated checkpoint: the pre-check says so in its own words


def _gunzip_head(path: Path, n: int) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read(n)
    except (OSError, EOFError, zlib.error):  # not gzip after all, or cut short
        return b""


def hand_in_stem(path: Path) -> str:
    """The name of a hand-in without its suffix: ``alice.tar.gz`` -> ``alice``, ``bob.pth`` -> ``bob``."""
    if path.name.lower().endswith(".tar.gz") and len(path.name) > len(".tar.gz"):
        return path.name[:-len(".tar.gz")]
    return path.stem


def is_junk(relative: str | PurePosixPath) -> bool:
    """Whether a path inside a hand-in is archiver or file-manager litter (any part of it)."""
    return any(part in JUNK_NAMES or part.startswith(APPLE_DOUBLE) for part in PurePosixPath(relative).parts)


def graded_folder(folder: Path) -> Path:
    """``folder``, or the folder it wraps: a folder whose only entry, junk aside, is a folder
    (``hw2.zip`` -> ``hw2/`` -> ``HW2_final/``) is entered, as many times as it wraps."""
    while True:
        inside = [p for p in folder.iterdir() if not is_junk(p.name)]
        if len(inside) != 1 or inside[0].is_symlink() or not inside[0].is_dir():
            return folder
        folder = inside[0]


def unpack(path: Path, into: Path, kind: str, *, limits: ArchiveLimits = ARCHIVE_LIMITS) -> Path:
    """Unpack the archive at ``path`` into the existing empty folder ``into``; junk is left out.

    Args:
        kind: ``archive_kind(path)``.

    Returns:
        ``into``.

    Raises:
        GraderError: naming the entry at fault: an absolute path, a ``..`` part, a link, a device,
            a FIFO, an encrypted or corrupt entry, or a cap exceeded. Files already written stay
            under ``into``, which the caller removes.
    """
    if kind == "zip":
        _unpack_zip(path, into, limits)
    elif kind == "tar":
        _unpack_tar(path, into, limits)
    else:
        raise ValueError(f"not an archive kind: {kind!r}")
    _make_readable(into)
    return into


def _make_readable(folder: Path) -> None:
    """Folders 0755 and files 0644 whatever the umask: the sandboxed child reads them in place
    (the private scratch folder above keeps other users out). The tree holds no links."""
    for root, _, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


@dataclass(frozen=True)
class FolderWalk:
    """A folder handed in, as walked without following a link.

    Attributes:
        files: relative POSIX paths of its regular files and its links to regular files inside it,
            sorted; as far as the walk went when it stopped at a problem.
        links: the relative paths among ``files`` that are links.
        problem: why the folder cannot be graded safely (nested too deep, too many entries, a link
            that leaves it or leads to a folder, a device, FIFO or socket), a catalogue message, or
            None. It names the entry by its path inside the folder, never the target or its bytes.
    """

    files: tuple[str, ...]
    links: frozenset[str] = frozenset()
    problem: Message | None = None


def walk_folder(folder: Path, limits: FolderLimits = FOLDER_LIMITS) -> FolderWalk:
    """Walk ``folder`` with ``lstat`` alone, from a list of folders to visit: no link is followed, no recursion.

    A link is kept only when it leads to a regular file inside ``folder`` (``model.pth ->
    runs/best.pth``); one that leaves the folder, leads nowhere or to a folder is a problem, as is
    anything that is neither file, folder nor link, a folder nested deeper than ``limits.depth``
    or more than ``limits.entries`` entries. The walk stops at the first problem.
    """
    root = os.path.realpath(folder)
    files: list[str] = []
    links: set[str] = set()
    pending: list[tuple[str, int]] = [("", 0)]
    count = 0
    while pending:
        relative, depth = pending.pop()
        try:
            with os.scandir(os.path.join(root, relative)) as listing:
                children = sorted(entry.name for entry in listing)
        except OSError as exc:
            return FolderWalk(tuple(sorted(files)), frozenset(links),
                              say("walk.unlistable", name=_shown(relative), reason=str(exc.strerror)))
        for name in children:
            count += 1
            path = f"{relative}/{name}" if relative else name
            problem = None
            if count > limits.entries:
                problem = say("walk.too_many", cap=limits.entries)
            else:
                problem = _walk_entry(root, path, depth, limits, files, links, pending)
            if problem:
                return FolderWalk(tuple(sorted(files)), frozenset(links), problem)
    return FolderWalk(tuple(sorted(files)), frozenset(links))


def _walk_entry(root: str, path: str, depth: int, limits: FolderLimits, files: list[str], links: set[str],
                pending: list[tuple[str, int]]) -> Message | None:
    """File one entry of ``walk_folder``: its problem, or None."""
    full = os.path.join(root, path)
    try:
        mode = os.lstat(full).st_mode
    except OSError as exc:
        return say("walk.unreadable", name=_shown(path), reason=str(exc.strerror))
    if stat.S_ISDIR(mode):
        if depth + 1 > limits.depth:
            return say("walk.too_deep", depth=limits.depth, name=_shown(path))
        pending.append((path, depth + 1))
    elif stat.S_ISREG(mode):
        files.append(path)
    elif stat.S_ISLNK(mode):
        target = os.path.realpath(full)
        if os.path.commonpath([root, target]) != root or target == root:
            return say("walk.link_out", name=_shown(path))
        if not os.path.isfile(target) or os.path.islink(target):
            return say("walk.link_nowhere", name=_shown(path))
        files.append(path)
        links.add(path)
    else:
        return say("walk.file_kind", name=_shown(path), kind=_file_type(stat.S_IFMT(mode)))
    return None


def _shown(relative: str, limit: int = 120) -> str:
    """A path inside a hand-in, for a message: its tail when long (a folder 1,200 levels deep)."""
    relative = relative or "."
    return relative if len(relative) <= limit else "..." + relative[-limit:]


def zip_entry_count(path: Path, cap: int) -> int:
    """How many entries the zip at ``path`` lists, counted up to ``cap + 1`` from the headers of
    its central directory, before ``zipfile`` builds an object for each (2 s per 100,000: the
    count must come first). A file with no readable end record counts 0 (zipfile says why).
    """
    with path.open("rb") as f:
        located = _central_directory(f)
        if located is None:
            return 0
        start, size = located
        count, offset = 0, 0
        while offset + _CENTRAL_HEADER <= size and count <= cap:
            f.seek(start + offset)
            header = f.read(_CENTRAL_HEADER)
            if len(header) < _CENTRAL_HEADER or not header.startswith(b"PK\x01\x02"):
                break
            name, extra, comment = (int.from_bytes(header[i:i + 2], "little") for i in (28, 30, 32))
            offset += _CENTRAL_HEADER + name + extra + comment
            count += 1
    return count


_CENTRAL_HEADER = 46  # bytes of one central directory header before its name, extra and comment
_END_RECORD = 22      # bytes of the end of central directory record before its comment


def _central_directory(f: BinaryIO) -> tuple[int, int] | None:
    """(where the central directory starts, its size in bytes) as zipfile finds them: from the end
    record (after a comment of up to 64 KiB), or its zip64 form."""
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    tail_size = min(file_size, _END_RECORD + 0xFFFF + 20 + 56)
    f.seek(file_size - tail_size)
    tail = f.read(tail_size)
    at = len(tail) - _END_RECORD if tail[-_END_RECORD:].startswith(b"PK\x05\x06") else tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END_RECORD:
        return None
    size = int.from_bytes(tail[at + 12:at + 16], "little")
    end = file_size - tail_size + at  # the end record's own position
    locator = tail[at - 20:at] if at >= 20 else b""
    if locator.startswith(b"PK\x06\x07"):  # zip64: the sizes live in a record of their own
        record_at = end - 20 - 56
        f.seek(max(record_at, 0))
        record = f.read(56)
        if record_at >= 0 and record.startswith(b"PK\x06\x06"):
            size = int.from_bytes(record[40:48], "little")
            end = record_at
    return max(end - size, 0), size


# --- zip -----------------------------------------------------------------------------------------

def _unpack_zip(path: Path, into: Path, limits: ArchiveLimits) -> None:
    _check_count(path, zip_entry_count(path, limits.entries), limits)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_count(path, len(infos), limits)
            names = [_checked_zip_entry(path, info, limits) for info in infos]  # all before any write
            total, packed = sum(i.file_size for i in infos), sum(i.compress_size for i in infos)
            if total > limits.total_bytes:
                raise _refused(path, say("archive.unpacks_to", size=format_bytes(total),
                                         cap=format_bytes(limits.total_bytes)))
            if packed > path.stat().st_size:  # entries that share their bytes: a bomb's trick
                raise _refused(path, say("archive.overlap", declared=format_bytes(packed),
                                         size=format_bytes(path.stat().st_size)))
            for info, name in zip(infos, names):
                if name is not None:
                    with archive.open(info) as source:
                        _write_entry(path, into, name, info.is_dir(), source, info.file_size)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, zlib.error, ValueError, OSError) as exc:
        raise GraderError(say("archive.corrupt", file=path.name, reason=type(exc).__name__)) from None


def _checked_zip_entry(path: Path, info: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    """The entry's safe relative name, None to leave it out (junk, the root); or a refusal."""
    name = _safe_name(path, zip_name(info))
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise GraderError(say("archive.zip_link", file=path.name, name=name))
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refused(path, say("archive.entry_kind", name=name, kind=_file_type(kind)))
    if info.flag_bits & _ZIP_ENCRYPTED:
        raise GraderError(say("archive.encrypted", file=path.name, name=name))
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_floor_bytes and ratio > limits.ratio:
        raise _refused(path, say("archive.entry_ratio", name=name, ratio=f"{ratio:.0f}",
                                 size=format_bytes(info.file_size), cap=limits.ratio))
    return None if name == "" or is_junk(name) else name


def zip_name(info: zipfile.ZipInfo) -> str:
    """An entry's name as its writer meant it: UTF-8 when flagged or when the bytes are valid UTF-8
    (Info-ZIP on macOS and Linux writes UTF-8 unflagged), else GBK as Chinese Windows writes it,
    else cp437 as the format says."""
    if info.flag_bits & _ZIP_UTF8:
        return info.filename
    return _decoded(info.orig_filename.encode("cp437"))  # zipfile decoded the bytes as cp437: undo it


def _decoded(raw: bytes) -> str:
    for encoding in ("utf-8", "gbk"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")  # every byte is a character: never fails


# --- tar -----------------------------------------------------------------------------------------

def _unpack_tar(path: Path, into: Path, limits: ArchiveLimits) -> None:
    """A tar is read once, as a stream (a tar.gz cannot be listed without inflating it); each
    member is checked before its bytes are read, so a refusal may leave earlier files in ``into``."""
    packed, count, total = max(path.stat().st_size, 1), 0, 0
    try:
        with tarfile.open(path, "r|*", encoding="utf-8", errors="surrogateescape") as archive:
            for member in archive:
                count += 1
                _check_count(path, count, limits)
                name = _checked_tar_member(path, member)
                total += member.size
                _check_tar_total(path, name, total, packed, limits)
                if name is None:
                    continue
                source = archive.extractfile(member) if member.isreg() else None
                _write_entry(path, into, name, member.isdir(), source, member.size)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise GraderError(say("archive.corrupt", file=path.name, reason=str(exc))) from None


def _checked_tar_member(path: Path, member: tarfile.TarInfo) -> str | None:
    name = _safe_name(path, _decoded(member.name.encode("utf-8", "surrogateescape")))  # undo tarfile's
    if member.issym() or member.islnk():
        raise GraderError(say("archive.tar_symlink" if member.issym() else "archive.tar_hardlink", file=path.name,
                              name=name, target=member.linkname))
    if member.issparse() or not (member.isreg() or member.isdir()):
        what = _file_type(_TAR_TYPES.get(member.type, -1)) if not member.issparse() else say("kind.sparse")
        raise _refused(path, say("archive.entry_kind", name=name, kind=what))
    return None if name == "" or is_junk(name) else name


_TAR_TYPES = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}


def _check_tar_total(path: Path, name: str | None, total: int, packed: int, limits: ArchiveLimits) -> None:
    if total > limits.total_bytes:
        raise _refused(path, say("archive.tar_too_large", cap=format_bytes(limits.total_bytes), name=str(name)))
    if total > limits.ratio_floor_bytes and total > limits.ratio * packed:
        raise _refused(path, say("archive.tar_ratio", name=str(name), ratio=f"{total / packed:.0f}",
                                 size=format_bytes(total), cap=limits.ratio))


# --- both ----------------------------------------------------------------------------------------

def _safe_name(path: Path, name: str) -> str:
    """``name`` as a relative POSIX path inside the hand-in ("" for the root itself), or a refusal."""
    parts = name.replace("\\", "/").split("/")  # old Windows tools write backslashes
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise GraderError(say("archive.absolute", file=path.name, name=name))
    if ".." in parts:
        raise GraderError(say("archive.climbs", file=path.name, name=name))
    if "\0" in name:
        raise _refused(path, say("archive.nul_name", name=repr(name)))
    return "/".join(part for part in parts if part not in ("", "."))


def _check_count(path: Path, count: int, limits: ArchiveLimits) -> None:
    if count > limits.entries:
        raise GraderError(say("archive.too_many_entries", file=path.name, cap=limits.entries))


def _write_entry(path: Path, into: Path, name: str, is_dir: bool, source: BinaryIO | None, size: int) -> None:
    """Write one checked entry under ``into``: never over another file, never through a link."""
    target = into / name
    try:
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if is_dir:
            target.mkdir(mode=0o755, exist_ok=True)
            return
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except (FileExistsError, NotADirectoryError):
        raise _refused(path, say("archive.twice", name=name)) from None
    except OSError as exc:  # a name too long for the file system, say
        raise _refused(path, say("archive.cannot_write", name=name, reason=str(exc.strerror))) from None
    written = 0
    with os.fdopen(fd, "wb") as out:
        while source is not None and (chunk := source.read(_COPY_CHUNK)):
            written += len(chunk)
            if written > size:  # the reader stops at the declared size; this is the second fence
                raise _refused(path, say("archive.longer_than_declared", name=name, size=size))
            try:
                out.write(chunk)
            except OSError as exc:  # the scratch disk is full, say
                raise GraderError(say("archive.unpack_failed", file=path.name, name=name,
                                      reason=str(exc.strerror))) from None


def _file_type(kind: int) -> Message:
    """What a file of type ``kind`` (``stat.S_IFMT``) is, in words: "a FIFO", ..."""
    return say({stat.S_IFCHR: "kind.character_device", stat.S_IFBLK: "kind.block_device", stat.S_IFIFO: "kind.fifo",
                stat.S_IFSOCK: "kind.socket"}.get(kind, "kind.other"))


def _refused(path: Path, why: Message) -> GraderError:
    return GraderError(say("archive.refused", file=path.name, why=why))
