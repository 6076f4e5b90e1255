"""Hostile archives: each is refused whole, with a message naming the entry, and nothing lands on
the host outside the grade's scratch folder, which is removed."""

from __future__ import annotations

import re
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.submission import inspect_submission
from grader.submission.archive import ArchiveLimits
from tests.hostile.archives import SYMLINK, tar_with, zip_bomb, zip_with


@pytest.fixture
def host(tmp_path, monkeypatch) -> Path:
    """The host as the grade sees it: scratch folders are made in ``host/tmp``."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


def refused(path: Path, host: Path, **options) -> GraderError:
    """inspect_submission's refusal of ``path``, once no scratch folder is left behind."""
    with pytest.raises(GraderError) as info:
        inspect_submission(path, **options)
    assert list((host / "tmp").iterdir()) == []
    assert f"{path.name} was refused" in info.value.message and info.value.hint
    return info.value


def landed(host: Path) -> list[Path]:
    """Anything an attack wrote on the host: every file but the archives the test made."""
    return [p for p in host.rglob("*") if p.is_file() and not p.name.startswith("attack")]


def test_a_zip_bomb_is_refused_before_a_byte_is_inflated(host, monkeypatch):
    path = zip_bomb(host / "attack.zip")

    def never(*args, **kwargs):
        raise AssertionError("a member of the bomb was read")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    error = refused(path, host)
    assert "entry hw2/data.bin unpacks" in error.message and "100:1 cap" in error.message
    assert landed(host) == []


def test_a_tar_gz_bomb_is_refused_by_its_header(host):
    path = tar_with(host / "attack.tar.gz", "hw2/data.bin", tarfile.REGTYPE, size=32 << 20)
    assert path.stat().st_size < 100_000
    assert "by entry hw2/data.bin it unpacks" in refused(path, host).message
    assert landed(host) == []


@pytest.mark.parametrize("name, says", [
    ("../../evil.py", "entry ../../evil.py climbs out of the archive with '..'"),
    ("hw2/../../../evil.py", "climbs out of the archive"),
    ("__MACOSX/../../evil.py", "climbs out of the archive"),  # litter is checked too
    ("..\\..\\evil.py", "climbs out of the archive"),  # an old Windows tool's separators
    ("/ABSOLUTE/evil.py", "has an absolute path"),
    ("C:/Users/evil.py", "has an absolute path"),
])
def test_entries_that_leave_the_folder_are_refused(host, name, says):
    name = name.replace("/ABSOLUTE", str(host / "abs"))
    error = refused(zip_with(host / "attack.zip", name), host)
    assert says in error.message and "nothing in it was graded" in error.message
    assert landed(host) == [] and not (host / "abs").exists()


def test_a_zip_symlink_entry_is_refused(host):
    path = zip_with(host / "attack.zip", "hw2/weights.pth", b"/etc/passwd", mode=SYMLINK)
    assert "entry hw2/weights.pth is a symbolic link" in refused(path, host).message
    assert landed(host) == []


@pytest.mark.parametrize("kind, says", [
    (tarfile.SYMTYPE, "entry hw2/weights.pth is a symbolic link to /etc/passwd"),
    (tarfile.LNKTYPE, "entry hw2/weights.pth is a hard link to /etc/passwd"),
    (tarfile.CHRTYPE, "entry hw2/weights.pth is a character device"),
    (tarfile.BLKTYPE, "entry hw2/weights.pth is a block device"),
    (tarfile.FIFOTYPE, "entry hw2/weights.pth is a FIFO"),
])
def test_tar_links_devices_and_fifos_are_refused(host, kind, says):
    path = tar_with(host / "attack.tar.gz", "hw2/weights.pth", kind, linkname="/etc/passwd")
    assert says in refused(path, host).message
    assert landed(host) == []


def test_a_tar_entry_climbing_out_is_refused_by_name(host):
    path = tar_with(host / "attack.tar", "../../evil.py", tarfile.REGTYPE, size=10, mode="w")
    assert "entry ../../evil.py climbs out" in refused(path, host).message
    assert landed(host) == []


def test_an_entry_named_twice_is_refused(host):
    path = host / "attack.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("hw2/model.py", b"honest")
        archive.writestr("hw2/model.py", b"the other one")
    assert "entry hw2/model.py appears twice" in refused(path, host).message


def test_the_caps_on_entries_and_bytes(host):
    path = host / "attack.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(12):
            archive.writestr(f"hw2/{i}.txt", bytes(100))
    assert "more than 10 entries" in refused(path, host, archive_limits=ArchiveLimits(entries=10)).message
    assert "unpacks to 1.17 KiB, over the 1000 B cap" in refused(
        path, host, archive_limits=ArchiveLimits(total_bytes=1000)).message


def test_entries_that_share_their_bytes_are_refused(host):
    """The overlapping-entries bomb: many directory records pointing at one stored payload."""
    path = host / "attack.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hw2/data.bin", bytes(4096))
    data = path.read_bytes()
    directory = data.index(b"PK\x01\x02")
    record = data[directory:data.index(b"PK\x05\x06")]
    copies = b"".join(record.replace(b"hw2/data.bin", f"hw2/d{i:03}.bin".encode()) for i in range(50))
    end = bytearray(data[data.index(b"PK\x05\x06"):])
    end[8:12] = (50).to_bytes(2, "little") * 2  # entries on this disk, in all
    end[12:16] = len(copies).to_bytes(4, "little")  # the directory's size
    path.write_bytes(data[:directory] + copies + bytes(end))
    assert len(zipfile.ZipFile(path).infolist()) == 50
    assert "its entries overlap" in refused(path, host).message
    assert landed(host) == []


# --- what a student reads in Chinese ---------------------------------------------------------------


def _fifo_tar(host: Path) -> Path:
    return tar_with(host / "attack.tar.gz", "hw2/weights.pth", tarfile.FIFOTYPE)


def _many_entries(host: Path) -> Path:
    with zipfile.ZipFile(host / "attack.zip", "w") as archive:
        for i in range(12):
            archive.writestr(f"hw2/{i}.txt", bytes(100))
    return host / "attack.zip"


@pytest.mark.parametrize("build, limits, english, zh", [
    (lambda host: zip_bomb(host / "attack.zip", mib=2), ArchiveLimits(),
     "attack.zip was refused: entry hw2/data.bin unpacks {n} times its packed size (2 MiB), over the 100:1 cap "
     "(a zip bomb?); nothing in it was graded",
     "attack.zip 被拒绝：其中的 hw2/data.bin 解压后是压缩大小的 {n} 倍（2 MiB），超过了 100:1 的上限（是 zip 炸弹吗？）；"
     "其中的内容都没有评分"),
    (lambda host: tar_with(host / "attack.tar.gz", "hw2/data.bin", tarfile.REGTYPE, size=2 << 20), ArchiveLimits(),
     "attack.tar.gz was refused: by entry hw2/data.bin it unpacks", "attack.tar.gz 被拒绝：解压到其中的 hw2/data.bin 时，"),
    (_fifo_tar, ArchiveLimits(),
     "attack.tar.gz was refused: entry hw2/weights.pth is a FIFO, which a hand-in has no use for; nothing in it was "
     "graded", "attack.tar.gz 被拒绝：其中的 hw2/weights.pth 是命名管道，提交内容用不到它；"),
    (_many_entries, ArchiveLimits(entries=10), "attack.zip was refused: it has more than 10 entries (the cap); nothing "
     "in it was graded", "attack.zip 被拒绝：其中的条目超过了上限 10 个；其中的内容都没有评分"),
    (_many_entries, ArchiveLimits(total_bytes=1000), "attack.zip was refused: it unpacks to 1.17 KiB, over the 1000 B "
     "cap; nothing in it was graded", "attack.zip 被拒绝：解压后有 1.17 KiB，超过了 1000 B 的上限；"),
])
def test_a_refused_archive_is_said_in_chinese_and_its_english_is_kept(host, build, limits, english, zh):
    from tests.test_report import english_words

    error = refused(build(host), host, archive_limits=limits)
    assert re.match(_pattern(english), error.message) and error.detail is error.message  # the English, as it was
    said = error.detail.text("zh")
    assert re.match(_pattern(zh), said)
    assert english_words(f"{said}\n{error.detail.hint('zh')}", {"MiB", "KiB", "zip", "tar"}) == set()


def _pattern(text: str) -> str:
    """``text`` as a regular expression in which ``{n}`` stands for any number (a compression ratio)."""
    return re.escape(text).replace(re.escape("{n}"), r"\d+")
