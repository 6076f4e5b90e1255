"""Links out of the class folder or out of a submission, through a real `grader batch`: a class-folder
entry linking to the grader's own secret key file (whose first 8 bytes once reached gradebook.csv,
the report and the Gradescope file through an "unknown format (starts with b'...')" message), and
a submission's manifest, model code, history or notebook linking to a host file (whose keys were
read and shown). None is followed; each is an error row naming the link; no byte of the key or
of the host file reaches any file the batch writes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from tests.conftest import make_image_tree
from tests.fixtures.make_submissions import small_net, write_form

GRADER = [sys.executable, "-m", "grader"]
HOST_TOKEN = "tok-8c1f0e7d2b"  # in a host file no submission may read
LINKED = {  # student -> (file inside the submission that is a link to the host file)
    "eve": "submission.toml",
    "trudy": "model.py",
    "oscar": "history.json",
    "peggy": "training.ipynb",
}


# A whole class graded by a batch: run with make test-all.
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("links")
    root.chmod(0o755)  # the sandbox's uid must be able to reach what it is shown
    cache = root / "cache"
    cache.mkdir(mode=0o700)
    key = os.urandom(32)
    fd = os.open(cache / "grading-secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key)
    os.close(fd)
    host = root / "host"
    host.mkdir()
    (host / "config.toml").write_text(f'api_token = "{HOST_TOKEN}"\nstudent = "{HOST_TOKEN}"\n')

    subs = root / "subs"
    subs.mkdir()
    write_form("state-dict", subs / "alice", small_net(seed=1))
    (subs / "mallory.pth").symlink_to(cache / "grading-secret")
    for student, name in LINKED.items():
        write_form("state-dict", subs / student, small_net(seed=2))
        target = subs / student / name
        target.unlink(missing_ok=True)
        target.symlink_to(host / "config.toml")
    data = make_image_tree(root / "data", {"train": 1, "test": 4})
    rubric = root / "rubric.toml"
    rubric.write_text('[limits]\nwall_seconds = 60\nmemory_mb = 2048\n\n'
                      '[[check]]\nname = "accuracy"\nmetric = "accuracy"\ncondition = "x >= 0"\n')
    out = root / "out"
    env = {k: v for k, v in os.environ.items() if k != "GRADER_SECRET"} | {"GRADER_CACHE": str(cache)}
    done = subprocess.run([*GRADER, "batch", str(subs), "--out", str(out), "--jobs", "2", "--data", str(data),
                           "--partial", "--rubric", str(rubric), "--no-pdf"], capture_output=True, text=True,
                          timeout=900, env=env)
    rows = {}
    if (out / "gradebook.csv").exists():
        with open(out / "gradebook.csv", newline="", encoding="utf-8-sig") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
    return {"done": done, "rows": rows, "out": out, "key": key}


def test_the_class_is_graded_and_each_link_is_an_error_row(graded):
    assert graded["done"].returncode == 0, graded["done"].stdout + graded["done"].stderr
    assert sorted(graded["rows"]) == sorted(["alice", "mallory", *LINKED])
    assert graded["rows"]["alice"]["status"] == "graded"


def test_a_class_folder_link_to_the_secret_key_is_named_not_read(graded):
    row = graded["rows"]["mallory"]
    assert row["status"] == "error" and row["score"] == "0"
    assert row["error"] == ("mallory.pth is a link to something outside the class folder; it was not read "
                            "(hand in the file itself)")


@pytest.mark.parametrize("student", sorted(LINKED))
def test_a_link_inside_a_submission_to_a_host_file_is_refused_unread(graded, student):
    row = graded["rows"][student]
    assert row["status"] == "error", row
    assert row["error"].startswith(f"{student} was refused: '{LINKED[student]}' points outside the submission "
                                   "folder"), row["error"]


def test_no_byte_of_the_key_or_the_host_file_is_in_any_output(graded):
    key = graded["key"]
    needles = [key, key[:8], key.hex().encode(), key[:8].hex().encode(), repr(key[:8]).encode(),
               repr(key[:8])[2:-1].encode(), HOST_TOKEN.encode(), b"api_token"]
    written = [p for p in graded["out"].rglob("*") if p.is_file()]
    assert len(written) > 10  # gradebook, class report, each student's results, report and Gradescope file
    for path in written:
        data = path.read_bytes()
        assert not [n for n in needles if n in data], path
    for stream in (graded["done"].stdout, graded["done"].stderr):
        assert HOST_TOKEN not in stream and key.hex() not in stream and repr(key[:8])[2:-1] not in stream
