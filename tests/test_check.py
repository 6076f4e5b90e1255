"""grader check: a student's self-check with the rubric's public checks, run for real on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from tests.conftest import make_image_tree

RUBRIC = """
[[check]]
name = "test accuracy above 0.05"
metric = "accuracy"
condition = "x > 0.05"

[[check]]
name = "hidden: parameters below 10"
metric = "parameters"
condition = "x < 10"
public = false
"""


@pytest.fixture(scope="module")
def homework_submission(tmp_path_factory):
    import torch

    from grader.models import build

    root = tmp_path_factory.mktemp("check")
    torch.manual_seed(0)
    torch.save(build("homework_net"), root / "alice.pth")
    return root / "alice.pth", make_image_tree(root / "data", {"train": 1, "test": 3})


@pytest.mark.slow  # ~10 s alone, 30 s on a loaded 2-core machine: a real sandboxed child
def test_check_grades_with_public_checks_only(homework_submission, tmp_path):
    submission, data = homework_submission
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC)
    out = tmp_path / "mine"
    result = CliRunner().invoke(main, ["check", str(submission), "--out", str(out), "--rubric", str(rubric),
                                       "--data", str(data), "--partial"])
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "graded", results["error"]
    assert [c["name"] for c in results["checks"]] == ["test accuracy above 0.05"]  # the private one is gone
    assert "hidden" not in result.output
    assert "test accuracy above 0.05" in result.output and "accuracy" in result.output
    passed = results["checks"][0]["passed"]
    verdict = "READY: 1/1 checks pass" if passed else "NOT READY: 0/1 checks pass; fix first: test accuracy above 0.05"
    assert result.stdout.splitlines()[0].startswith(verdict)  # the first line on stdout
    assert result.exit_code == (0 if passed else 1), result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf", "results.json"]


def test_check_keeps_the_other_files_of_its_folder(homework_submission, tmp_path):
    _, data = homework_submission
    broken = tmp_path / "bob.pth"
    broken.write_bytes(b"not a checkpoint at all")
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["check", str(broken), "--out", str(tmp_path), "--data", str(data),
                                       "--partial", "--no-sandbox"])
    assert result.exit_code == 2, result.output
    assert (tmp_path / "notes.txt").read_text() == "mine" and broken.read_bytes().startswith(b"not a")
    assert (tmp_path / "results.json").is_file()


def test_self_check_summary_shows_each_condition_once_and_explains_notes():
    from rich.console import Console

    from grader.commands.console import print_check_summary
    from grader.results import check_condition
    from grader.rubric import CheckResult
    from tests.test_batch import synthetic_results

    result = synthetic_results("alice", 0.83, official=False)
    console = Console(record=True, width=200)
    print_check_summary(result, Path("out/alice/report.pdf"), console=console)
    text = console.export_text()
    assert "x < 0.5 " in text and "x < 0.5 0.5" not in text
    assert "0.7 < x <= 1" in text and "[0.7, 1.0]" not in text
    assert "not the official CIFAR-10 release (unofficial-data)" in text
    alone = CheckResult("loss", "loss", "<", 0.5, True, 0.4, 1.0, 1.0, False, "")
    assert check_condition(alone) == "< 0.5"  # an operator alone: its bound follows


def test_check_of_an_ungradable_submission_is_exit_2_as_grade(homework_submission, tmp_path):
    _, data = homework_submission
    broken = tmp_path / "bob.pth"
    broken.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "mine"
    result = CliRunner().invoke(main, ["check", str(broken), "--out", str(out), "--data", str(data), "--partial",
                                       "--no-sandbox"])
    assert result.exit_code == 2, result.output  # not 1: nothing was checked, the file must be fixed first
    assert json.loads((out / "results.json").read_text())["status"] == "error"
    assert result.stdout.splitlines()[0].startswith("NOT READY: not graded: ")  # the verdict comes first
    assert "unknown format" in result.stdout.splitlines()[0]
