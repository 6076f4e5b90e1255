"""Archives handed in: told from checkpoints by their bytes, unpacked privately, graded as the folder
they hold (hostile archives: tests/hostile/test_archives.py)."""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch

from grader.errors import GraderError
from grader.hashing import sha256_file
from grader.submission import inspect_submission
from grader.messages import error_text
from grader.submission.archive import (FolderLimits, archive_kind, graded_folder, hand_in_stem, walk_folder,
                                      zip_name)
from tests.fixtures.make_archives import tar_folder, zip_like_finder, zip_like_windows
from tests.fixtures.make_submissions import small_net, tiny_data, write_form
from tests.test_report import english_words


@pytest.fixture
def scratch_root(tmp_path, monkeypatch) -> Path:
    """Where inspect_submission makes its scratch folders in this test (tempfile's default)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_finder_zip_grades_as_the_folder_it_holds(tmp_path, scratch_root):
    folder = write_form("state-dict", tmp_path / "HW2", small_net(seed=1))
    zipped = zip_like_finder(folder, tmp_path / "alice.zip")
    with inspect_submission(zipped) as sub:
        assert sub.form == "state-dict" and sub.path == zipped.resolve()
        assert sub.sha256 == sha256_file(zipped)  # the hand-in, not a file unpacked from it
        assert sub.student == {"id": "alice", "name": "alice"}
        assert sub.files == ["model.py", "weights.pth"]  # no __MACOSX/, ._weights.pth, .DS_Store
        assert sub.folder.name == "HW2" and sub.entry[0] == sub.folder / "model.py"
        assert (sub.folder / "weights.pth").read_bytes() == (folder / "weights.pth").read_bytes()
        scratch = Path(sub.scratch.name)
        assert scratch.parent == scratch_root and stat.S_IMODE(scratch.stat().st_mode) == 0o700
        assert stat.S_IMODE(sub.weights.stat().st_mode) == 0o644  # the child reads it in place
        assert not any(p.name.startswith("._") or p.name == "__MACOSX" for p in scratch.rglob("*"))
    assert list(scratch_root.iterdir()) == []  # leaving the block removed it


def test_a_windows_zip_with_gbk_names_keeps_its_chinese_names(tmp_path, scratch_root):
    folder = tmp_path / "作业2"
    folder.mkdir()
    torch.save(small_net(), folder / "我的模型.pth")
    zipped = zip_like_windows(folder, tmp_path / "李雷.zip")
    assert all(not info.flag_bits & 0x800 for info in zipfile.ZipFile(zipped).infolist())
    with inspect_submission(zipped) as sub:
        assert sub.weights.name == "我的模型.pth" and sub.folder.name == "作业2"
        assert sub.form == "pickled-module" and sub.student["id"] == "李雷"


@pytest.mark.parametrize("raw, name", [
    ("作业2/模型.pth".encode("gbk"), "作业2/模型.pth"),          # Chinese Windows
    ("模型.pth".encode("utf-8"), "模型.pth"),                    # Info-ZIP on macOS/Linux, unflagged
    (b"caf\x82/r\x8esum\x82.pth", "café/rÄsumé.pth"),           # neither: cp437, as the format says
])
def test_unflagged_zip_names_are_read_as_their_writer_meant(raw, name):
    info = zipfile.ZipInfo(raw.decode("cp437"))  # what zipfile itself makes of the raw bytes
    assert zip_name(info) == name


def test_nested_single_folders_are_entered_junk_aside(tmp_path, scratch_root):
    folder = write_form("state-dict", tmp_path / "outer" / "HW2_final")
    (tmp_path / "outer" / "Thumbs.db").write_bytes(b"\0" * 16)
    (tmp_path / "outer" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    zipped = zip_like_finder(tmp_path / "outer", tmp_path / "carol.zip", top="carol")  # carol/outer...
    with inspect_submission(zipped) as sub:
        assert sub.folder.name == "HW2_final" and sub.files == ["model.py", "weights.pth"]
    # the same, handed in as a folder (what unzipping a Finder zip leaves, __MACOSX beside it)
    (tmp_path / "outer" / "__MACOSX" / "HW2_final").mkdir(parents=True)
    sub = inspect_submission(tmp_path / "outer")
    assert sub.folder == folder.resolve() and sub.entry[0] == sub.folder / "model.py"
    assert sub.scratch is None and sub.student["id"] == "outer"
    assert graded_folder(folder) == folder  # two files: nothing to enter


@pytest.mark.parametrize("name, mode", [("bob.tar.gz", "w:gz"), ("bob.tgz", "w:gz"), ("bob.tar", "w")])
def test_tar_and_tar_gz_hand_ins(tmp_path, scratch_root, name, mode):
    folder = write_form("state-dict", tmp_path / "hw2")
    archive = tar_folder(folder, tmp_path / name, mode)
    assert archive_kind(archive) == "tar"
    with inspect_submission(archive) as sub:
        assert sub.form == "state-dict" and sub.files == ["model.py", "weights.pth"]
        assert sub.student["id"] == "bob" and sub.sha256 == sha256_file(archive)
    assert list(scratch_root.iterdir()) == []


def test_model_best_pth_tar_that_torch_saved_is_a_checkpoint(tmp_path, scratch_root):
    path = tmp_path / "model_best.pth.tar"
    torch.save(small_net(), path)
    assert archive_kind(path) is None
    sub = inspect_submission(path)
    assert sub.form == "pickled-module" and sub.weights == path.resolve() and sub.folder is None
    assert sub.scratch is None and sub.sha256 == sha256_file(path) and list(scratch_root.iterdir()) == []
    legacy = tmp_path / "legacy.pth.tar"
    torch.save(small_net().state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert archive_kind(legacy) is None  # torch's legacy format: a pickle, not a tar


@pytest.mark.parametrize("writer", ["torch.save", "jit", "export"])
def test_every_torch_zip_is_a_checkpoint_not_an_archive(tmp_path, writer):
    form = {"torch.save": "pickled-module", "jit": "torchscript", "export": "exported"}[writer]
    folder = write_form(form, tmp_path / "s")
    assert [archive_kind(p) for p in folder.iterdir()] == [None]


def test_a_truncated_zip_says_so(tmp_path):
    zipped = zip_like_finder(write_form("state-dict", tmp_path / "hw2"), tmp_path / "dave.zip")
    zipped.write_bytes(zipped.read_bytes()[:-100])  # the upload stopped short of the directory
    with pytest.raises(GraderError, match="dave.zip is not a readable zip archive"):
        inspect_submission(zipped)


def test_an_error_inside_an_archive_names_the_archive_not_the_scratch(tmp_path, scratch_root):
    folder = write_form("state-dict", tmp_path / "hw2")
    (folder / "model.py").unlink()
    (folder / "submission.toml").write_text('weights = "missing.pth"\n')
    zipped = zip_like_finder(folder, tmp_path / "erin.zip")
    with pytest.raises(GraderError) as info:
        inspect_submission(zipped)
    assert "no such file in erin.zip/hw2" in info.value.message and str(scratch_root) not in str(info.value)
    assert list(scratch_root.iterdir()) == []


def test_a_folder_holding_only_an_archive_grades_as_that_archive(tmp_path, scratch_root):
    """PrairieLearn keeps an uploaded zip as it came (student/hw2.zip): the folder is graded as the
    archive it holds, not refused for holding no checkpoint; the student is still the folder."""
    upload = tmp_path / "student"
    upload.mkdir()
    zipped = zip_like_finder(write_form("state-dict", tmp_path / "hw2", small_net(seed=1)), upload / "hw2.zip")
    (upload / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # litter counts nowhere
    with inspect_submission(upload) as sub:
        assert sub.form == "state-dict" and sub.path == zipped.resolve() and sub.sha256 == sha256_file(zipped)
        assert "model.py" in sub.files and sub.student["id"] == "student"
    (tmp_path / "hw2" / "submission.toml").write_text('weights = "missing.pth"\n')  # an error inside
    zip_like_finder(tmp_path / "hw2", upload / "hw2.zip")
    with pytest.raises(GraderError) as info:
        inspect_submission(upload)
    assert "no such file in hw2.zip/hw2" in info.value.message and str(scratch_root) not in str(info.value)
    assert list(scratch_root.iterdir()) == []
    (upload / "notes.txt").write_text("see the zip")  # not alone: a folder as before
    with pytest.raises(GraderError, match="no checkpoint in"):
        inspect_submission(upload)


def test_student_names_drop_archive_suffixes():
    assert [hand_in_stem(Path(n)) for n in ("a.tar.gz", "b.tgz", "c.zip", "d.pth", "model_best.pth.tar")] \
        == ["a", "b", "c", "d", "model_best.pth"]


def test_a_folder_holding_a_fifo_is_refused_in_words_a_student_reads_in_chinese(tmp_path):
    """A FIFO would block whoever reads it: the walk refuses the folder before anything is read."""
    folder = write_form("state-dict", tmp_path / "hw2")
    os.mkfifo(folder / "weights.pipe")
    with pytest.raises(GraderError) as info:
        inspect_submission(folder)
    error = info.value.detail
    assert error == "hw2 was refused: weights.pipe is a FIFO, which a hand-in has no use for; nothing in it was graded"
    assert error.text("zh") == "hw2 被拒绝：weights.pipe 是命名管道，提交内容用不到它；其中的内容都没有评分"
    assert english_words(error_text(error, str(info.value), "zh"), {"zip"}) == set()


@pytest.mark.parametrize("limits, english, zh", [
    (FolderLimits(depth=2), "it nests folders more than 2 deep (a/b/c)", "文件夹嵌套超过 2 层（a/b/c）"),
    (FolderLimits(entries=3), "it holds more than 3 files and folders (the cap)", "其中的文件和文件夹超过了上限 3 个"),
])
def test_the_caps_of_a_folder_walk_are_said_in_both_languages(tmp_path, limits, english, zh):
    (tmp_path / "a" / "b" / "c" / "d").mkdir(parents=True)
    problem = walk_folder(tmp_path, limits).problem
    assert problem == english and problem.text("zh") == zh


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_zip_grades_in_the_sandbox_to_the_accuracy_of_its_folder(tmp_path, monkeypatch):
    from grader.pipeline import grade_one
    from grader.sandbox import check_available

    try:
        check_available()
    except GraderError as exc:
        pytest.skip(f"no sandbox here: {exc}")
    made, make = [], tempfile.TemporaryDirectory  # in the real /tmp: the sandbox's uid must reach it

    def recorded(*args, **kwargs):
        made.append(make(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "TemporaryDirectory", recorded)
    data = tiny_data(40)
    folder = write_form("state-dict", tmp_path / "HW2", small_net(seed=3))
    zipped = zip_like_finder(folder, tmp_path / "frank.zip")
    from_zip = grade_one(zipped, data=data, sandbox=True)
    from_folder = grade_one(folder, data=data, sandbox=True)
    assert from_zip.graded and from_folder.graded, (from_zip.error, from_folder.error)
    assert from_zip.evaluation.accuracy == from_folder.evaluation.accuracy
    assert from_zip.sandbox.enabled and from_zip.student.id == "frank"
    assert from_zip.submission.path == str(zipped.resolve()) and from_zip.submission.sha256 == sha256_file(zipped)
    assert from_zip.submission.files == ("model.py", "weights.pth")
    unpacked = [Path(d.name) for d in made if Path(d.name).name.startswith("grader-hand-in-")]
    assert unpacked and not any(p.exists() for p in unpacked)  # the grade removed what it unpacked
