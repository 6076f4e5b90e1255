"""The grading secret: the memorisation probe's subset and the child's order are not public."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from grader.errors import GraderError
from grader.integrity.memorisation import MemorisationProbe, probe_images
from grader.integrity.secret import ENV, KEY_BYTES, KEY_NAME, grading_secret, seed_from
from tests.fixtures.make_submissions import tiny_data


def test_the_probed_subset_depends_on_the_secret_and_only_on_it(monkeypatch):
    data = tiny_data(200, seed=1)
    probe = MemorisationProbe(subset_size=20)
    monkeypatch.setenv(ENV, "course A")
    first, copies = probe_images(data, probe)
    again, copies_again = probe_images(data, probe)
    assert (first == again).all() and (copies == copies_again).all()  # the same secret: the same draw
    monkeypatch.setenv(ENV, "course B")
    other, other_copies = probe_images(data, probe)
    assert set(first) != set(other)  # anyone without the secret cannot tell which images are probed
    assert len(other) == 20 and not (other_copies == copies).all()


def test_seeds_separate_their_parts():
    assert seed_from("ab", "c") != seed_from("a", "bc")


def test_without_the_variable_each_machine_keeps_its_own_key(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    key = grading_secret()
    path = tmp_path / "cache" / KEY_NAME
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # readable by its owner only
    assert grading_secret() == key  # made once, then reused
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "elsewhere"))
    assert grading_secret() != key  # another machine (cache), another key
    path.write_bytes(b"short")
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(GraderError, match="damaged"):
        grading_secret()


def test_graders_starting_together_agree_on_one_key(tmp_path):
    code = "from grader.integrity.secret import grading_secret; print(grading_secret().hex())"
    env = {"GRADER_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(4)]
    keys = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert len(keys) == 1 and len(keys.pop()) == 2 * KEY_BYTES


def test_a_planted_or_linked_key_is_refused(monkeypatch, tmp_path):
    import os

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path))
    path = tmp_path / KEY_NAME
    path.write_bytes(b"A" * KEY_BYTES)
    os.chmod(path, 0o666)  # anyone could have written it
    with pytest.raises(GraderError, match="not a private file of this user"):
        grading_secret()
    path.unlink()
    path.symlink_to("/dev/zero")  # would never end, or be anybody's
    with pytest.raises(GraderError, match="cannot read the grading secret"):
        grading_secret()


def test_an_unusable_secret_stops_grading_before_any_student(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import grader.commands.grading as grading_commands
    from grader.cli import main
    from tests.fixtures.make_submissions import write_form

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / KEY_NAME).mkdir()  # a folder where the key should be
    monkeypatch.setattr(grading_commands, "load_cifar10", lambda _path, **_options: tiny_data(20))
    folder = write_form("pickled-module", tmp_path / "s")
    ran = CliRunner().invoke(main, ["grade", str(folder), "--out", str(tmp_path / "out"), "--no-sandbox"])
    assert ran.exit_code == 2 and "grading secret" in ran.output and "hint:" in ran.output
    assert not (tmp_path / "out" / "results.json").exists()  # not recorded as the student's error
