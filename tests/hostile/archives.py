"""Generators for hostile archives handed in: each writes one attack beside an honest-looking
``hw2/model.pth``, so that only the attack can be the reason for a refusal."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

HONEST = ("hw2/model.pth", b"\x80\x02weights")  # never loaded: every archive here is refused first


def zip_with(path: Path, name: str, data: bytes = b"evil", *, mode: int | None = None) -> Path:
    """A zip holding HONEST and an entry ``name``; ``mode`` sets its Unix type and permission
    bits in the external attributes (``stat.S_IFLNK | 0o777`` makes it a symlink to ``data``)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(*HONEST)
        info = zipfile.ZipInfo(name, (2024, 10, 1, 12, 0, 0))
        if mode is not None:
            info.create_system = 3  # Unix: unzip honours the mode bits
            info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


def zip_bomb(path: Path, mib: int = 64) -> Path:
    """``mib`` MiB of zeros deflated into about ``mib`` KiB: 1000:1."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(*HONEST)
        with archive.open("hw2/data.bin", "w", force_zip64=True) as out:
            zeros = bytes(1 << 20)
            for _ in range(mib):
                out.write(zeros)
    return path


def tar_with(path: Path, name: str, kind: bytes, *, linkname: str = "", size: int = 0,
             mode: str = "w:gz") -> Path:
    """A tar holding HONEST and a member ``name`` of tarfile type ``kind`` (SYMTYPE, LNKTYPE,
    CHRTYPE, FIFOTYPE, REGTYPE); a REGTYPE member of ``size`` bytes is zeros."""
    with tarfile.open(path, mode) as archive:
        honest = tarfile.TarInfo(HONEST[0])
        honest.size = len(HONEST[1])
        archive.addfile(honest, io.BytesIO(HONEST[1]))
        member = tarfile.TarInfo(name)
        member.type, member.linkname, member.mode = kind, linkname, 0o644
        if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            member.devmajor, member.devminor = 1, 3  # /dev/null's numbers
        member.size = size if kind == tarfile.REGTYPE else 0
        archive.addfile(member, _Zeros(size) if member.size else None)
    return path


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in blocks (a tar bomb is written without holding it in memory)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


SYMLINK = stat.S_IFLNK | 0o777
