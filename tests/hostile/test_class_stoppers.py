"""Submissions that used to stop a whole `grader batch`, through the real command: an id of 90
Chinese characters (its staging folder's name was too long: nobody graded), a folder nested 1,200
levels deep (RecursionError in discovery: exit 3), two submissions claiming the README's example
id (exit 2: nobody graded). Each is now a gradebook row that says what is wrong, and the rest of
the class grades."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_image_tree
from tests.fixtures.make_submissions import small_net, write_form

GRADER = [sys.executable, "-m", "grader"]
LONG_ID = "李雷韩梅梅" * 18  # 90 characters, 270 bytes of UTF-8: over a file name's 255
README_ID = "SC24219070"
DEPTH = 1200


def nested(top: Path, levels: int) -> list[Path]:
    """``top/d/d/.../d``, ``levels`` folders (made one at a time: os.makedirs recurses)."""
    made = [top]
    top.mkdir()
    for _ in range(levels - 1):
        made.append(made[-1] / "d")
        made[-1].mkdir()
    return made


# A whole class graded by a batch: run with make test-all.
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("stoppers")
    root.chmod(0o755)  # the sandbox's uid must be able to reach what it is shown
    subs = root / "subs"
    subs.mkdir()
    write_form("state-dict", subs / "alice", small_net(seed=1))
    write_form("state-dict", subs / "long-id", small_net(seed=2))
    (subs / "long-id" / "submission.toml").write_text(f'student = "{LONG_ID}"\n', encoding="utf-8")
    for folder, seed in ((README_ID, 3), ("copied-readme", 4)):  # both copied the README's manifest
        write_form("state-dict", subs / folder, small_net(seed=seed))
        (subs / folder / "submission.toml").write_text(f'student = "{README_ID}"\n')
    deep = nested(subs / "deep", DEPTH)
    write_form("state-dict", deep[-1], small_net(seed=5))
    data = make_image_tree(root / "data", {"train": 1, "test": 4})
    rubric = root / "rubric.toml"
    rubric.write_text('[limits]\nwall_seconds = 60\nmemory_mb = 2048\n\n'
                      '[[check]]\nname = "accuracy"\nmetric = "accuracy"\ncondition = "x >= 0"\n')
    out = root / "out"
    try:
        done = subprocess.run([*GRADER, "batch", str(subs), "--out", str(out), "--jobs", "2", "--data", str(data),
                               "--partial", "--rubric", str(rubric), "--no-pdf"],
                              capture_output=True, text=True, timeout=900)
    finally:
        for folder in reversed(deep):  # deepest first: pytest's own clean-up recurses
            for file in folder.iterdir():
                file.unlink()  # the deepest folder's files; the folders above are empty by now
            folder.rmdir()
    rows = {}
    if (out / "gradebook.csv").exists():
        with open(out / "gradebook.csv", newline="", encoding="utf-8-sig") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
    return {"done": done, "rows": rows, "out": out}


def test_the_batch_finishes_and_the_class_is_graded(graded):
    assert graded["done"].returncode == 0, graded["done"].stdout + graded["done"].stderr
    assert sorted(graded["rows"]) == sorted(["alice", LONG_ID, README_ID, f"{README_ID}~2", "deep"])
    assert graded["rows"]["alice"]["status"] == "graded"


def test_a_long_id_grades_in_a_short_folder(graded):
    row = graded["rows"][LONG_ID]
    assert row["status"] == "graded", row["error"]
    folder = row["report"].split("/")[0]
    assert len(folder.encode("utf-8")) <= 96 and folder.startswith("李雷韩梅梅")
    assert (graded["out"] / folder / "results.json").is_file()


def test_a_folder_nested_too_deep_is_an_error_row(graded):
    row = graded["rows"]["deep"]
    assert row["status"] == "error" and row["score"] == "0"
    assert row["error"].startswith("deep was refused: it nests folders more than 32 deep"), row["error"]


def test_two_claims_of_one_id_are_both_graded_and_the_second_is_flagged(graded):
    kept, second = graded["rows"][README_ID], graded["rows"][f"{README_ID}~2"]
    assert kept["status"] == second["status"] == "graded", (kept["error"], second["error"])
    assert kept["error"] == ""  # the folder named SC24219070 keeps the id
    assert second["error"] == (f"copied-readme claims the student id '{README_ID}', which {README_ID} also claims; "
                               f"graded as '{README_ID}~2': check who handed in which")
    assert kept["report"].split("/")[0] != second["report"].split("/")[0]
    assert f"check {README_ID}~2: copied-readme claims" in graded["done"].stdout
