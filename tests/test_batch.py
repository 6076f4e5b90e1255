"""grader batch: discovery, the child pool under limits, resume, SIGKILL safety, gradebook, class report.

Most tests grade with ``fake_grade``, a stand-in task that reads a one-line "behaviour" from each
submission file (an accuracy, or crash / sleep / hog / raise) and writes a schema-1 results dict
checked by the real rubric, so the pool, resume and reducers run for real in child processes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.batch import resume
from grader.batch.classreport import class_context, render_class_html
from grader.batch.run import run_batch
from grader.batch.discover import SLUG_BYTES, SLUG_HASH, discover_submissions, slugify
from grader.batch.executors import LocalExecutor
from grader.batch.gradebook import Record, gradebook_csv
from grader.batch.pool import TreeCaps
from grader.batch.worker import GradeSettings, load_settings_rubric, write_outputs
from grader.data import CLASSES
from grader.errors import GraderError
from grader.results import GradeResult, with_verdict
from tests.conftest import make_image_tree

ROOT = Path(__file__).resolve().parents[1]
FAST = TreeCaps(timeout_s=20.0, memory_mib=1500, poll_s=0.05)


# --- the stand-in grading task (runs in the child) ------------------------------------------------


def synthetic_results(student: str, accuracy: float | None, *, flags=(), error: str | None = None,
                      rubric=None, official: bool = True) -> GradeResult:
    """A grade of ``accuracy`` (None with ``error``: an error grade), scored by ``rubric``
    (default: the homework's)."""
    from grader.evaluate import EvalResult
    from grader.results import ModelFacts, SandboxFacts, Status, Student, SubmissionFacts, Timings, metrics
    from grader.rubric import check, load_rubric

    graded = error is None
    n = len(CLASSES)
    per_class = {c: round(min(1.0, max(0.0, accuracy + (i - 4.5) * 0.02)), 4) for i, c in enumerate(CLASSES)} \
        if graded else {}
    evaluation = EvalResult(
        accuracy=accuracy, accuracy_ci=(accuracy - 0.01, accuracy + 0.01), loss=1.0, top2_accuracy=accuracy,
        ece=0.05, per_class_accuracy=per_class, per_class_precision=per_class,
        per_class_count={c: 1000 for c in CLASSES}, confusion_matrix=[[0] * n for _ in range(n)],
        confused_pairs=[], samples=[], confident_wrong=[], count=10000) if graded else None
    result = GradeResult(
        status=Status.GRADED if graded else Status.ERROR, error=error, grader_version="test",
        created="2024-01-01T00:00:00+00:00", student=Student(student, student),
        submission=SubmissionFacts(path=student, sha256="0" * 64, format="state-dict"),
        dataset={"fingerprint": "f" * 64, "official": official, "source": "tree", "source_kind": "image-tree",
                 "test_count": 10000},
        sandbox=SandboxFacts(True), evaluation=evaluation,
        model=ModelFacts(parameters=1_234_567, latency_ms_per_image=1.0) if graded else ModelFacts(),
        history={"epoch": [1, 2], "train_loss": [1.0, 0.4], "train_acc": [0.6, 0.8]} if graded else None,
        flags=tuple(flags), timings=Timings(0.1, 0.2, 0.3))
    verdict = check(metrics(result), rubric or load_rubric(None), not_graded=error)
    return with_verdict(result, verdict, total_seconds=0.3)


def fake_grade(job) -> dict:
    """Behaviour from the submission's text: ``0.83`` (accuracy), ``error``, ``crash``, ``raise``,
    ``sleep``, ``hog``, ``slow 0.83`` (accuracy after a pause), ``lost`` (exit 255, what
    multiprocessing reports for a lost exit status) or ``lost-once 0.83`` (lost on the first try
    only, remembered in a hidden ``.<file>.tried`` file beside the submission)."""
    path = job.submission / "behaviour.txt" if job.submission.is_dir() else job.submission
    word, *rest = path.read_text().split()
    if word == "lost":
        os._exit(255)
    if word == "lost-once":
        tried = path.with_name(f".{path.name}.tried")
        if not tried.exists():
            tried.write_text("1")
            os._exit(255)
        word = rest[0]
    if word == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if word == "raise":
        raise RuntimeError("a bug in the grader")
    if word == "sleep":
        time.sleep(600)
    if word == "hog":
        hog = []
        for _ in range(40):  # 40 x 50 MiB at most, far over the test cap: the parent must stop it first
            hog.append(b"x" * (50 << 20))
            time.sleep(0.02)
        time.sleep(600)  # hold it: only the parent's memory cap may end this child
    if word == "slow":
        time.sleep(0.4)
        word = rest[0]
    rubric = load_settings_rubric(job.settings)
    if word == "error":
        result = synthetic_results(job.student, None, error="model.pth is not a checkpoint", rubric=rubric)
    else:
        result = synthetic_results(job.student, float(word), rubric=rubric)
    write_outputs(result, job.staging, job.settings, {})
    return {"startup": 0.0, "evaluate": 0.0, "render": 0.0}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_tree(tmp_path_factory) -> Path:
    return make_image_tree(tmp_path_factory.mktemp("data") / "tree", {"train": 1, "test": 1})


@pytest.fixture
def settings(data_tree) -> GradeSettings:
    return GradeSettings(data_path=str(data_tree), partial=True, report=False, sandbox=False)


def make_class(root: Path, behaviours: dict[str, str]) -> Path:
    """One file per student (``<name>.pt`` holding its behaviour); names with a '/' become folders."""
    root.mkdir(parents=True, exist_ok=True)
    for name, behaviour in behaviours.items():
        if "/" in name:
            folder, student = name.split("/")
            (root / folder).mkdir()
            (root / folder / "behaviour.txt").write_text(behaviour)
            (root / folder / "submission.toml").write_text(f'student = "{student}"\n')
        else:
            (root / f"{name}.pt").write_text(behaviour)
    return root


def read_gradebook(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8-sig"))))


def run(subs: Path, out: Path, settings: GradeSettings, **kwargs):
    kwargs.setdefault("limits", FAST)
    kwargs.setdefault("executor", LocalExecutor(2))
    kwargs.setdefault("class_report", False)
    return run_batch(subs, out, settings=settings, task=fake_grade, **kwargs)


# --- discovery -----------------------------------------------------------------------------------


def test_discovery_names_students_from_manifest_or_name(tmp_path):
    subs = make_class(tmp_path / "subs", {"bob": "0.8", "folder1/alice": "0.9"})
    (subs / ".DS_Store").write_text("x")
    (subs / "__MACOSX").mkdir()
    entries = discover_submissions(subs)
    assert [(e.student, e.path.name) for e in entries] == [("alice", "folder1"), ("bob", "bob.pt")]
    assert all(len(e.sha256) == 64 for e in entries)


def test_a_link_to_nothing_still_gives_its_student_a_row_that_says_why(tmp_path):
    from grader.pipeline import grade_one
    from tests.fixtures.make_submissions import tiny_data

    subs = make_class(tmp_path / "subs", {"bob": "0.8"})
    (subs / "carol.pth").symlink_to(tmp_path / "gone.pth")  # unpacked from an archive, target lost
    entries = discover_submissions(subs)
    assert [e.student for e in entries] == ["bob", "carol"] and len(entries[1].sha256) == 64
    result = grade_one(entries[1].path, data=tiny_data(10), sandbox=False)
    assert not result.graded and "carol.pth is a link to" in result.error
    assert "which does not exist" in result.error and "hint: hand in the file itself" in result.error


def test_two_claims_of_one_id_grade_both_and_say_so(tmp_path):
    subs = make_class(tmp_path / "subs", {"alice": "0.8", "x/alice": "0.9"})
    first, second = discover_submissions(subs)
    assert (first.student, first.path.name, first.note) == ("alice", "alice.pt", None)  # its own name is the id
    assert (second.student, second.slug, second.path.name) == ("alice~2", "alice_2", "x")
    assert second.note == "x claims the student id 'alice', which alice.pt also claims; graded as 'alice~2': " \
                          "check who handed in which"
    assert second.note.text("zh") == "x 声明的学号 'alice' 也被 alice.pt 声明了；已按 'alice~2' 评分：请核对这两份作业分别是谁交的"


def test_the_readme_id_copied_by_three_keeps_its_own_folder_and_numbers_the_rest(tmp_path):
    subs = make_class(tmp_path / "subs", {"a_copy/SC24219070": "0.7", "SC24219070/SC24219070": "0.8",
                                          "b_copy/SC24219070": "0.9", "c/SC24219070~2": "0.6"})
    entries = {e.path.name: e for e in discover_submissions(subs)}
    assert {name: e.student for name, e in entries.items()} == {
        "SC24219070": "SC24219070", "a_copy": "SC24219070~3", "b_copy": "SC24219070~4", "c": "SC24219070~2"}
    assert entries["c"].note is None and "graded as 'SC24219070~3'" in entries["a_copy"].note
    assert len({e.slug.lower() for e in entries.values()}) == 4


def test_ids_that_differ_only_in_case_are_two_claims_of_one(tmp_path):
    subs = make_class(tmp_path / "subs", {"Alice": "0.8", "alice": "0.9"})
    assert [e.student for e in discover_submissions(subs)] == ["Alice", "alice~2"]  # sorted by name: "A" < "a"


def test_a_long_id_gets_a_short_slug_that_stays_distinct():
    long_a, long_b = "张" * 89 + "甲", "张" * 89 + "乙"  # 270 bytes of UTF-8 each: over a file name's 255
    slug_a, slug_b = slugify(long_a), slugify(long_b)
    assert slug_a != slug_b and slug_a.startswith("张" * 28)
    assert len(slug_a.encode("utf-8")) <= SLUG_BYTES and len(slug_b.encode("utf-8")) <= SLUG_BYTES
    assert slugify(long_a) == slug_a  # the same id, the same folder, run after run


def test_a_folder_nested_past_the_cap_is_an_entry_with_a_problem_not_a_crash(tmp_path):
    subs = make_class(tmp_path / "subs", {"bob": "0.8"})
    deep = nested_folders(subs / "deep", 1200)
    try:
        entries = discover_submissions(subs)
        assert [e.student for e in entries] == ["bob", "deep"] and entries[0].problem is None
        assert entries[1].problem == f"deep was refused: it nests folders more than 32 deep ({'d/' * 32}d); " \
                                     "nothing in it was graded"
        assert entries[1].sha256 == discover_submissions(subs)[1].sha256  # the same, run after run
    finally:
        remove_nested(subs / "deep", deep)


def test_a_folder_holding_a_fifo_is_a_row_whose_reason_reads_in_chinese(tmp_path):
    from tests.test_report import english_words

    subs = make_class(tmp_path / "subs", {"bob": "0.8"})
    (subs / "carol").mkdir()
    os.mkfifo(subs / "carol" / "model.pth")  # reading it would wait for a writer forever
    problem = {e.student: e for e in discover_submissions(subs)}["carol"].problem
    assert problem == "carol was refused: model.pth is a FIFO, which a hand-in has no use for; nothing in it was graded"
    assert problem.text("zh") == "carol 被拒绝：model.pth 是命名管道，提交内容用不到它；其中的内容都没有评分"
    assert english_words(f"{problem.text('zh')}\n{problem.hint('zh')}", {"carol", "zip"}) == set()


def test_a_link_out_of_the_class_folder_is_named_never_read(tmp_path):
    subs = make_class(tmp_path / "subs", {"bob": "0.8"})
    (tmp_path / "secret").write_bytes(b"0.99")  # would grade 0.99 if it were read
    (subs / "mallory.pt").symlink_to(tmp_path / "secret")
    (subs / "inside.pt").symlink_to(subs / "bob.pt")  # a link within the class folder is followed
    entries = {e.student: e for e in discover_submissions(subs)}
    assert entries["mallory"].problem == ("mallory.pt is a link to something outside the class folder; it was "
                                          "not read (hand in the file itself)")
    assert entries["inside"].problem is None and entries["inside"].sha256 == entries["bob"].sha256


def test_refused_and_renamed_submissions_are_rows_and_the_class_grades(tmp_path, settings):
    from rich.console import Console

    from grader.commands.console import BatchProgress, tally

    subs = make_class(tmp_path / "subs", {"alice": "0.8", "x/alice": "0.9", "bob": "0.7"})
    (subs / "mallory.pt").symlink_to(tmp_path)
    bar = BatchProgress(Console(file=io.StringIO(), width=200))
    summary = run(subs, tmp_path / "out", settings, progress=bar)
    rows = {r["student"]: r for r in read_gradebook(tmp_path / "out")}
    assert {s: (r["status"], r["accuracy"]) for s, r in rows.items()} == {
        "alice": ("graded", "0.8"), "alice~2": ("graded", "0.9"), "bob": ("graded", "0.7"), "mallory": ("error", "")}
    assert rows["alice~2"]["error"].startswith("x claims the student id 'alice'")
    assert "outside the class folder" in rows["mallory"]["error"] and rows["alice"]["error"] == ""
    assert summary.notes == [("alice~2", rows["alice~2"]["error"])]
    assert summary.graded_now == ["alice", "alice~2", "bob", "mallory"]
    assert len(bar.outcomes) == 4 and tally(bar.outcomes)["not-graded"] == 1  # mallory, counted honestly
    again_bar = BatchProgress(Console(file=io.StringIO(), width=200))
    again = run(subs, tmp_path / "out", settings, progress=again_bar)
    assert again.skipped == summary.graded_now and read_gradebook(tmp_path / "out") == list(rows.values())
    assert sorted(again_bar.outcomes) == sorted(bar.outcomes)  # reused rows count as what they were


def nested_folders(top: Path, levels: int) -> list[Path]:
    """``top/d/d/.../d``, ``levels`` folders deep (made one by one: os.makedirs recurses)."""
    made = [top]
    top.mkdir()
    for _ in range(levels - 1):
        made.append(made[-1] / "d")
        made[-1].mkdir()
    return made


def remove_nested(top: Path, made: list[Path]) -> None:
    """Remove what ``nested_folders`` made, deepest first (shutil.rmtree recurses too)."""
    for folder in reversed(made):
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def test_discovery_refuses_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraderError, match="holds no submission"):
        discover_submissions(tmp_path / "empty")


def test_slug_never_leaves_the_output_folder():
    assert slugify("../../etc/passwd") == "_.._etc_passwd"
    assert slugify("..") == "_"
    assert slugify("gradebook.csv") == "_gradebook.csv"
    assert slugify("zhang.wei@uni.edu") == "zhang.wei@uni.edu"


def test_chinese_ids_keep_distinct_folders_and_a_clash_of_slugs_hashes_both(tmp_path):
    assert slugify("张三") == "张三" and slugify("李 四/..") == "李_四_.."
    subs = make_class(tmp_path / "subs", {"张三": "0.8", "李四": "0.9"})
    assert [e.slug for e in discover_submissions(subs)] == ["张三", "李四"]
    subs = make_class(tmp_path / "clash", {"a b": "0.8", "a_b": "0.9"})
    slugs = [e.slug for e in discover_submissions(subs)]
    assert len(set(slugs)) == 2 and all(s.startswith("a_b-") and len(s) == 4 + SLUG_HASH for s in slugs)


@pytest.mark.parametrize("out", [".", "graded"])
def test_an_out_inside_the_submissions_is_refused_before_anything_is_written(tmp_path, settings, out):
    subs = make_class(tmp_path / "subs", {"alice": "0.8", "bob/bob": "0.9"})
    before = sorted(p.relative_to(subs) for p in subs.rglob("*"))
    with pytest.raises(GraderError, match="inside the submissions folder") as err:
        run(subs, subs / out, settings)
    assert "outside" in err.value.hint
    assert sorted(p.relative_to(subs) for p in subs.rglob("*")) == before  # nothing written, nothing replaced


def test_an_out_under_a_file_is_exit_2_with_a_hint(tmp_path, data_tree):
    from click.testing import CliRunner

    from grader.cli import main

    subs = make_class(tmp_path / "subs", {"alice": "0.8"})
    (tmp_path / "file").write_text("")
    for command in (["batch", str(subs)], ["check", str(subs / "alice.pt")]):
        result = CliRunner().invoke(main, [*command, "--out", str(tmp_path / "file" / "out"),
                                           "--data", str(data_tree), "--partial"])
        assert result.exit_code == 2 and "is a file" in result.output and "hint:" in result.output, result.output


def test_content_digest_changes_with_any_file(tmp_path):
    subs = make_class(tmp_path / "subs", {"f/alice": "0.8"})
    before = discover_submissions(subs)[0].sha256
    (subs / "f" / "notes.md").write_text("hello")
    assert discover_submissions(subs)[0].sha256 != before


def test_a_class_folder_of_archives_is_discovered_like_one_of_folders(tmp_path):
    from tests.fixtures.make_archives import tar_folder, zip_like_finder
    from tests.fixtures.make_submissions import write_form

    hw2 = write_form("state-dict", tmp_path / "work" / "HW2")
    subs = tmp_path / "subs"
    subs.mkdir()
    zip_like_finder(hw2, subs / "alice.zip")
    tar_folder(hw2, subs / "bob.tar.gz")
    shutil.copytree(tmp_path / "work", subs / "carol")  # carol/HW2/..., as unzipping leaves it
    (subs / "carol" / "HW2" / "submission.toml").write_text('student = "S2400123"\n')
    (subs / "__MACOSX").mkdir()
    (subs / "Thumbs.db").write_bytes(bytes(8))
    entries = discover_submissions(subs)
    assert [(e.student, e.path.name) for e in entries] == [
        ("S2400123", "carol"), ("alice", "alice.zip"), ("bob", "bob.tar.gz")]
    assert entries[1].sha256 == hashlib.sha256((subs / "alice.zip").read_bytes()).hexdigest()


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_a_class_folder_of_zips_grades_like_one_of_folders(tmp_path, data_tree):
    from tests.fixtures.make_archives import zip_like_finder
    from tests.fixtures.make_submissions import small_net, write_form

    subs = tmp_path / "subs"
    hw2 = write_form("state-dict", subs / "bob" / "HW2", small_net(seed=4))  # a folder, as unzipped
    zip_like_finder(hw2, subs / "alice.zip")  # the same network, zipped
    settings = GradeSettings(data_path=str(data_tree), partial=True, report=False, sandbox=False)
    run_batch(subs, tmp_path / "out", settings=settings, limits=TreeCaps(timeout_s=120.0, memory_mib=3000),
              executor=LocalExecutor(2), class_report=False)
    rows = {r["student"]: r for r in read_gradebook(tmp_path / "out")}
    assert [rows[s]["status"] for s in ("alice", "bob")] == ["graded", "graded"], rows
    assert rows["alice"]["accuracy"] == rows["bob"]["accuracy"] != ""


# --- the batch ------------------------------------------------------------------------------------


CLASS = {"alice": "0.83", "bob": "0.55", "carol": "error", "dave": "crash", "erin": "raise",
         "frank": "sleep", "grace": "hog", "f/heidi": "0.91"}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, data_tree):
    """The whole CLASS graded once (module scope: the limits make it the slowest step)."""
    root = tmp_path_factory.mktemp("class")
    subs = make_class(root / "subs", CLASS)
    settings = GradeSettings(data_path=str(data_tree), partial=True, report=False, sandbox=False)
    # 10 s: a worker's start-up (importing torch) can take several seconds on a loaded 2-core CI
    # machine, and the hog must reach the memory cap before the wall clock runs out
    limits = TreeCaps(timeout_s=10.0, memory_mib=600, poll_s=0.05)
    summary = run(subs, root / "out", settings, limits=limits)
    return subs, root / "out", summary, settings, limits


def test_gradebook_rows_for_good_failing_and_broken_submissions(graded_class):
    subs, out, summary, _, _ = graded_class
    rows = {r["student"]: r for r in read_gradebook(out)}
    assert list(rows) == sorted(rows)  # sorted by student id
    assert set(rows) == {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
    assert rows["alice"]["status"] == "graded" and rows["alice"]["score"] == "3"
    assert rows["alice"]["accuracy"] == "0.83" and rows["alice"]["max_score"] == "3"
    assert rows["alice"]["check:test accuracy above 0.7"] == "1"
    assert rows["bob"]["status"] == "graded" and rows["bob"]["score"] == "2"
    assert rows["bob"]["check:test accuracy above 0.7"] == "0"
    assert rows["carol"]["status"] == "error" and "not a checkpoint" in rows["carol"]["error"]
    assert rows["dave"]["status"] == "crashed" and "SIGSEGV" in rows["dave"]["error"]
    assert rows["erin"]["status"] == "crashed" and "a bug in the grader" in rows["erin"]["error"]
    assert rows["frank"]["status"] == "timeout" and "10 s limit" in rows["frank"]["error"]
    assert rows["grace"]["status"] == "memory" and "600 MiB" in rows["grace"]["error"]
    assert rows["heidi"]["status"] == "graded"  # a folder, id from its submission.toml
    for student in ("dave", "frank", "grace"):
        assert rows[student]["score"] == "0" and rows[student]["accuracy"] == ""
    assert rows["alice"]["sha256"] == discover_submissions(subs)[0].sha256
    assert sorted(summary.graded_now) == sorted(rows) and summary.skipped == []


def test_every_student_gets_results_and_gradescope_files(graded_class):
    from tests.gradescope_format import validate_gradescope

    _, out, _, _, _ = graded_class
    for name in ("alice", "dave", "frank", "grace", "heidi"):
        results = json.loads((out / name / "results.json").read_text())
        assert results["schema_version"] == 1 and results["student"]["id"] == name
        gradescope = json.loads((out / name / "gradescope" / "results.json").read_text())
        assert validate_gradescope(gradescope) == []
    timeout = json.loads((out / "frank" / "results.json").read_text())
    assert timeout["status"] == "error" and all(not c["passed"] for c in timeout["checks"])
    assert not list(out.glob(".batch-tmp-*"))  # no staging folder left behind
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "alice").stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes it, not 0700


def test_no_child_outlives_the_batch(graded_class):
    """The sleeping and hogging children were killed, not left running."""
    mine = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    assert "grade-frank" not in mine.stdout and "grade-grace" not in mine.stdout


def test_resume_skips_unchanged_and_regrades_changed(graded_class, tmp_path):
    subs, out, first, settings, limits = graded_class
    before = (out / "gradebook.csv").read_text()
    again = run(subs, out, settings, limits=limits)
    assert again.graded_now == [] and len(again.skipped) == len(CLASS)
    assert (out / "gradebook.csv").read_text() == before

    (subs / "bob.pt").write_text("0.95")
    third = run(subs, out, settings, limits=limits)
    assert third.graded_now == ["bob"]
    assert {r["student"]: r for r in read_gradebook(out)}["bob"]["score"] == "3"
    (subs / "bob.pt").write_text("0.55")  # restore for the other tests using this module's class
    run(subs, out, settings, limits=limits)


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_retry_failed_grades_timeouts_again(graded_class):
    subs, out, _, settings, limits = graded_class
    again = run(subs, out, settings, limits=limits, retry_failed=True)
    assert sorted(again.graded_now) == ["dave", "erin", "frank", "grace"]


def test_a_changed_rubric_regrades_everything(tmp_path, settings):
    subs = make_class(tmp_path / "subs", {"alice": "0.83", "bob": "0.75"})
    run(subs, tmp_path / "out", settings)
    rubric = tmp_path / "rubric.toml"
    rubric.write_text('[[check]]\nname = "acc"\nmetric = "accuracy"\ncondition = "x > 0.8"\npoints = 5\n')
    from dataclasses import replace

    summary = run(subs, tmp_path / "out", replace(settings, rubric_path=str(rubric)))
    assert summary.graded_now == ["alice", "bob"]
    rows = read_gradebook(tmp_path / "out")
    assert [r["check:acc"] for r in rows] == ["5", "0"]
    assert "check:test accuracy above 0.7" not in rows[0]


def test_same_folder_twice_gives_the_same_gradebook(tmp_path, settings):
    subs = make_class(tmp_path / "subs", {"alice": "0.83", "bob": "error", "carol": "crash"})
    run(subs, tmp_path / "a", settings)
    run(subs, tmp_path / "b", settings, executor=LocalExecutor(1))
    assert (tmp_path / "a" / "gradebook.csv").read_bytes() == (tmp_path / "b" / "gradebook.csv").read_bytes()


def test_interrupted_commit_leaves_old_or_new_folder(tmp_path):
    target = tmp_path / "alice"
    target.mkdir()
    (target / "results.json").write_text("old")
    staging = resume.new_staging(tmp_path, "alice")
    (staging / "results.json").write_text("new")
    resume.commit(staging, target)
    assert (target / "results.json").read_text() == "new"
    leftover = resume.new_staging(tmp_path, "bob")
    assert resume.clean_staging(tmp_path) == 1 and not leftover.exists()


def test_two_batches_on_one_folder_are_refused(tmp_path, settings):
    import fcntl

    subs = make_class(tmp_path / "subs", {"alice": "0.8"})
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / ".batch.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(GraderError, match="another `grader batch`"):
            run(subs, tmp_path / "out", settings)


KILL_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from grader.batch.run import run_batch
from grader.batch.executors import LocalExecutor
from grader.batch.pool import TreeCaps
from grader.batch.worker import GradeSettings
from tests.test_batch import fake_grade
settings = GradeSettings(data_path={data!r}, partial=True, report=False, sandbox=False)
run_batch(Path({subs!r}), Path({out!r}), settings=settings, task=fake_grade, executor=LocalExecutor(2),
          limits=TreeCaps(timeout_s=30, memory_mib=1500, poll_s=0.05), class_report=False)
"""


def _batch_process(subs: Path, out: Path, data: Path) -> subprocess.Popen:
    script = KILL_SCRIPT.format(root=str(ROOT), data=str(data), subs=str(subs), out=str(out))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow  # two batches and a SIGKILL; run with make test-all
def test_sigkill_then_resume_gives_the_uninterrupted_gradebook(tmp_path, data_tree):
    behaviours = {f"s{i:02d}": f"slow 0.{60 + i}" for i in range(12)} | {"zz_broken": "error"}
    subs = make_class(tmp_path / "subs", behaviours)
    reference = _batch_process(subs, tmp_path / "reference", data_tree)
    assert reference.wait(timeout=120) == 0, reference.stderr.read().decode()

    out = tmp_path / "out"
    victim = _batch_process(subs, out, data_tree)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("s*/batch.json"))) < 3:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    done_before = len(list(out.glob("s*/batch.json")))
    assert 3 <= done_before < len(behaviours), "the kill should land in the middle of the batch"
    for results in out.glob("*/results.json"):  # whatever is there is whole
        json.loads(results.read_text())

    resumed = _batch_process(subs, out, data_tree)
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read().decode()
    assert (out / "gradebook.csv").read_bytes() == (tmp_path / "reference" / "gradebook.csv").read_bytes()
    assert not list(out.glob(".batch-tmp-*"))


# --- gradebook and class report (pure) --------------------------------------------------------------


def _records() -> list[Record]:
    return [
        Record("zoe", "zoe", "a" * 64, "graded", None, synthetic_results("zoe", 0.72), {}, "zoe/report.pdf"),
        Record("=cmd()", "_cmd__", "b" * 64, "graded", None, synthetic_results("=cmd()", 0.9)),
        Record("amy", "amy", "c" * 64, "timeout", "took longer than the 600 s limit and was stopped",
               synthetic_results("amy", None, error="took longer")),
    ]


def test_gradebook_csv_is_sorted_and_safe_for_spreadsheets():
    text = gradebook_csv(_records(), ["final training loss below 0.5", "test accuracy above 0.7"])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["student", "status", "score", "max_score", "accuracy",
                       "check:final training loss below 0.5", "check:test accuracy above 0.7",
                       "error", "sha256", "report", "name"]
    assert [r[0] for r in rows[1:]] == ["'=cmd()", "amy", "zoe"]
    assert rows[3][2:5] == ["3", "3", "0.72"] and rows[3][-2:] == ["zoe/report.pdf", "zoe"]
    assert rows[2][1] == "timeout" and rows[2][7].startswith("took longer")


def test_every_text_cell_of_the_gradebook_is_safe_for_spreadsheets():
    record = Record("+1-1", "+1-1", "c" * 64, "error", "-2+3 is not a checkpoint", None, {}, "+1-1/report.pdf")
    row = list(csv.reader(io.StringIO(gradebook_csv([record], []))))[1]
    assert row[0] == "'+1-1" and row[-2] == "'+1-1/report.pdf" and row[-4] == "'-2+3 is not a checkpoint"
    assert row[-1] == "'+1-1"  # no results: the id stands for the name
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_class_report_context_summarises_the_class():
    records = _records() + [Record("bea", "bea", "d" * 64, "graded", None,
                                   synthetic_results("bea", 0.70, flags=["memorisation-suspected"]))]
    ctx = class_context(records, figures=False)
    assert ctx["counts"] == {"total": 4, "graded": 3, "not_graded": 1}
    assert [row["student"] for row in ctx["leaderboard"]] == ["=cmd()", "zoe", "bea"]
    assert ctx["failures"] == [{"student": "amy", "name": "", "status": "timeout",
                                "error": "took longer than the 600 s limit and was stopped"}]
    rates = {c["name"]: (c["passed"], c["total"]) for c in ctx["checks"]}
    assert rates["test accuracy above 0.7"] == (2, 3)  # over the graded only
    assert ctx["per_class"][0]["name"] == CLASSES[0]  # the synthetic per-class accuracy is lowest there
    reviewed = {r["student"]: r for r in ctx["review"]}
    assert "memorisation-suspected" in [f["code"] for f in reviewed["bea"]["flags"]]
    assert "test accuracy above 0.7" in reviewed["bea"]["borderline"]  # 0.70 sits on the 0.7 bound
    assert ctx["unofficial_data"] is False


def test_class_report_says_once_that_the_data_is_unofficial():
    from dataclasses import replace

    flagged = [replace(r, result=r.result.replace(flags=(*r.result.flags, "unofficial-data")))
               for r in _records()]
    ctx = class_context(flagged, figures=False)
    assert ctx["unofficial_data"] is True
    assert [r["student"] for r in ctx["review"]] == []  # not a reason to look at any one student
    html = render_class_html(flagged, "en", figures=False)
    assert html.count("not the official CIFAR-10 release") == 1
    older = [replace(r, result=GradeResult.from_json({**r.result.to_json(), "flags": [],
                                                      "dataset": {**r.result.dataset, "official": False}}))
             for r in _records()]  # results.json from before the flag was derived: the dataset says it
    assert class_context(older, figures=False)["unofficial_data"] is True


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_class_report_html_has_every_section(lang):
    html = render_class_html(_records(), lang, figures=False)
    for section in ("scores", "checks", "confusion", "per-class", "leaderboard", "failures", "needs-a-look"):
        assert f'id="{section}"' in html
    assert "&lt;" not in "=cmd()" and "took longer than the 600 s limit" in html


def test_class_report_writes_html_and_pdf(tmp_path):
    from grader.batch.classreport import write_class_report

    paths = write_class_report(_records(), tmp_path, pdf=True)
    assert [p.name for p in paths] == ["class-report.html", "class-report.pdf"]
    assert paths[1].read_bytes().startswith(b"%PDF") and paths[0].read_text().count('<img src="data:image/') == 3


def test_a_lost_exit_status_is_retried_and_never_a_final_grade(tmp_path, settings):
    """Exit code 255 is how multiprocessing reports a forkserver child whose status it lost: the
    grader's machinery failed, not the submission. Such a child runs once more; lost twice, the row
    says so and a resumed batch grades the student again instead of keeping the crash."""
    subs = make_class(tmp_path / "subs", {"alice": "lost-once 0.83", "bob": "lost"})
    first = run(subs, tmp_path / "out", settings)
    rows = {r["student"]: r for r in read_gradebook(tmp_path / "out")}
    assert rows["alice"]["status"] == "graded" and rows["alice"]["accuracy"] == "0.83"
    assert rows["bob"]["status"] == "crashed" and "lost track" in rows["bob"]["error"]
    assert sorted(first.graded_now) == ["alice", "bob"]
    (subs / "bob.pt").write_text("lost")
    again = run(subs, tmp_path / "out", settings)
    assert again.skipped == ["alice"] and again.graded_now == ["bob"]


def test_exit_255_is_lost_only_for_a_forkserver_child_and_a_finished_child_is_kept(tmp_path):
    from grader.batch.pool import LOST_EXIT, MARKER, _outcome_from_exit

    finished, unfinished = tmp_path / "finished", tmp_path / "unfinished"
    finished.mkdir(), unfinished.mkdir()
    (finished / MARKER).write_text("{}")
    kept = _outcome_from_exit(LOST_EXIT, finished, 1.0, 10.0, lost_exit=LOST_EXIT)
    assert kept.status == "ok" and not kept.infrastructure  # its results are complete: no re-grade
    lost = _outcome_from_exit(LOST_EXIT, unfinished, 1.0, 10.0, lost_exit=LOST_EXIT)
    assert lost.status == "crashed" and lost.infrastructure
    real = _outcome_from_exit(255, unfinished, 1.0, 10.0, lost_exit=None)  # a fresh interpreter's exit(255)
    assert real.status == "crashed" and not real.infrastructure and "code 255" in real.reason


def test_parallel_children_all_report_their_exit(tmp_path, settings, monkeypatch):
    """Regression: Process.start() in one thread polls every other live child, and a forkserver
    child's exit status can be read from its pipe only once, so unsynchronised threads turned
    finished children into "exited with code 255". A slowed status read widens that window."""
    from multiprocessing import forkserver

    read_signed = forkserver.read_signed

    def slow_read_signed(fd):
        time.sleep(0.01)  # the window between "the pipe is readable" and "the status is taken"
        return read_signed(fd)

    monkeypatch.setattr(forkserver, "read_signed", slow_read_signed)
    subs = make_class(tmp_path / "subs", {f"s{i:02d}": f"0.{50 + i}" for i in range(24)})
    limits = TreeCaps(timeout_s=20.0, memory_mib=1500, poll_s=0.001)  # owners poll as often as starts happen
    summary = run(subs, tmp_path / "out", settings, executor=LocalExecutor(6), limits=limits)
    assert [r.student for r in summary.records if r.status != "graded"] == []


# --- dask ---------------------------------------------------------------------------------------------


def test_dask_executor_gives_the_same_gradebook(tmp_path, settings):
    distributed = pytest.importorskip("dask.distributed")
    from grader.batch.executors import DaskExecutor

    subs = make_class(tmp_path / "subs", {"alice": "0.83", "bob": "error", "f/carol": "0.75", "dave": "crash"})
    run(subs, tmp_path / "local", settings)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        run(subs, tmp_path / "dask", settings, executor=DaskExecutor(client=client))
    assert (tmp_path / "dask" / "gradebook.csv").read_bytes() == (tmp_path / "local" / "gradebook.csv").read_bytes()
    assert json.loads((tmp_path / "dask" / "carol" / "results.json").read_text())["accuracy"] == 0.75


def test_dask_without_a_scheduler_is_a_clear_error():
    pytest.importorskip("dask.distributed")
    from grader.batch.run import make_executor

    with pytest.raises(GraderError, match="--scheduler"):
        make_executor("dask", None, None)
    with pytest.raises(GraderError, match="only applies with --executor dask"):
        make_executor("local", "tcp://x:8786", None)


def test_fresh_interpreter_children_where_forking_is_not_allowed(tmp_path, settings, monkeypatch):
    """A Dask worker process is daemonic and may not fork children: the pool starts fresh
    interpreters there, with the same outcomes."""
    from grader.batch import pool

    monkeypatch.setattr(pool, "can_fork_children", lambda: False)
    subs = make_class(tmp_path / "subs", {"alice": "0.83", "dave": "crash", "erin": "raise"})
    run(subs, tmp_path / "out", settings)
    rows = {r["student"]: r for r in read_gradebook(tmp_path / "out")}
    assert rows["alice"]["status"] == "graded"
    assert rows["dave"]["status"] == "crashed" and "SIGSEGV" in rows["dave"]["error"]
    assert rows["erin"]["status"] == "crashed" and "a bug in the grader" in rows["erin"]["error"]
    assert not list((tmp_path / "out" / "alice").glob(".job.pickle"))


def test_workers_get_disjoint_cores_when_there_are_enough():
    from grader.batch.executors import cpu_slots

    cores = sorted(os.sched_getaffinity(0))
    slots = cpu_slots(1)
    assert slots == [tuple(cores)]
    many = cpu_slots(len(cores) + 1)
    assert all(len(s) == 1 for s in many) and {c for s in many for c in s} == set(cores)
    if len(cores) >= 2:
        halves = cpu_slots(2)
        assert set(halves[0]).isdisjoint(halves[1]) and set(halves[0]) | set(halves[1]) == set(cores)


def test_cli_batch_usage_errors_exit_2(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    subs = make_class(tmp_path / "subs", {"alice": "0.8"})
    result = CliRunner().invoke(main, ["batch", str(subs), "--out", str(tmp_path / "out"),
                                       "--scheduler", "tcp://nowhere:8786"])
    assert result.exit_code == 2 and "--executor dask" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "holds no submission" in result.output


def test_the_forkserver_preload_survives_a_module_that_fails_to_load(monkeypatch):
    """weasyprint without Pango raises OSError on import, which would kill the forkserver (it
    forgives only ImportError) and with it the whole batch."""
    import importlib
    import sys

    real = importlib.import_module

    def without_pango(name, *args):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_pango)
    monkeypatch.delitem(sys.modules, "grader.batch.warm", raising=False)
    warm = real("grader.batch.warm")
    assert "grader.pipeline" in sys.modules and "weasyprint" in warm.HEAVY_MODULES


def test_the_forkserver_builds_the_pickle_allow_lists_once_for_every_child(monkeypatch):
    import importlib
    import sys

    from grader.submission import pickle_scan

    pickle_scan.stock_module_names.cache_clear()
    pickle_scan.weights_only_globals.cache_clear()
    monkeypatch.delitem(sys.modules, "grader.batch.warm", raising=False)
    importlib.import_module("grader.batch.warm")
    assert pickle_scan.stock_module_names.cache_info().currsize == 1
    assert pickle_scan.weights_only_globals.cache_info().currsize == 1
    assert "torch.nn.modules.conv.Conv2d" in pickle_scan.stock_module_names()


def test_a_workers_caps_are_the_rubrics_limits_plus_the_graders_margin():
    from grader.batch.pool import LimitMargin, tree_caps
    from grader.limits import Limits

    caps = tree_caps(Limits(wall_seconds=60, memory_mb=2048), LimitMargin(extra_seconds=30, extra_mib=512))
    assert (caps.timeout_s, caps.memory_mib) == (90.0, 2560)
    assert tree_caps(Limits()).timeout_s > Limits().wall_seconds  # start-up and rendering need room too
