"""grader.commands.train.train_command and `grader train`: trains, resumes, refuses, grades its run folder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.errors import GraderError
from grader.commands.train import train_command
from grader.train.checkpoint import read_run
from tests.conftest import make_image_tree


def cli(*args):
    args = list(args) if "--report" in args else [*args, "--no-report"]  # grading is tested once
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False)


def test_cli_trains_resumes_and_refuses_to_overwrite(tree, tmp_path):
    out = tmp_path / "bob"
    result = cli("--recipe", "homework", "--data", str(tree), "--partial", "--epochs", "2",
                 "--subset", "20", "--out", str(out), "--device", "cpu", "--time-budget", "0")
    assert result.exit_code == 0, result.output
    assert "time budget reached" in result.output
    assert "resume" in read_run(out)
    again = cli("--data", str(tree), "--partial", "--out", str(out))
    assert again.exit_code == 2 and "already holds a run" in again.output
    resumed = cli("--resume", str(out), "--data", str(tree), "--partial", "--device", "cpu")
    assert resumed.exit_code == 0, resumed.output
    ckpt = read_run(out)
    assert ckpt["history"]["epoch"] == [1, 2] and "resume" not in ckpt
    assert ckpt["recipe"]["name"] == "homework" and ckpt["dataset"]["train_subset"] == 20
    done = cli("--resume", str(out), "--data", str(tree), "--partial")
    assert done.exit_code == 2 and "complete" in done.output
    done = cli("--resume", str(out), "--data", str(tree), "--partial", "--epochs", "1")
    assert done.exit_code == 2 and "complete" in done.output  # not "pass --epochs above 2", which fails too


def test_cli_refuses_a_subset_too_large_and_an_out_under_a_file_before_training(tree, tmp_path, monkeypatch):
    import grader.train

    def never(*args, **kwargs):
        raise AssertionError("trained although the run could not be kept")

    monkeypatch.setattr(grader.train, "train", never)
    too_many = cli("--data", str(tree), "--partial", "--subset", "1000", "--out", str(tmp_path / "a"))
    assert too_many.exit_code == 2 and "more than the 40 training images" in too_many.output
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("")
    nowhere = cli("--data", str(tree), "--partial", "--subset", "20", "--out", str(tmp_path / "file" / "run"))
    assert nowhere.exit_code == 2 and "is a file" in nowhere.output and "hint:" in nowhere.output


@pytest.mark.slow  # a run, a sandboxed grade and a PDF; run with make test-all
def test_a_finished_run_is_graded_with_its_report(tree, tmp_path):
    out = tmp_path / "dora"
    result = cli("--recipe", "homework", "--data", str(tree), "--partial", "--epochs", "1",
                 "--subset", "20", "--out", str(out), "--device", "cpu", "--report")
    assert result.exit_code == 0, result.output
    graded = json.loads((out / "results.json").read_text())
    assert graded["status"] == "graded", graded["error"]
    assert graded["submission"]["format"] == "run-folder"
    assert graded["history"]["train_loss"] == read_run(out)["history"]["train_loss"]
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "dora" in (out / "report.html").read_text()


def test_cli_says_when_the_gpu_recipe_runs_on_a_cpu(tree, tmp_path):
    # --time-budget 0: the note comes before training, so no step of the full-size network is needed
    result = cli("--recipe", "fast-gpu", "--data", str(tree), "--partial", "--epochs", "1",
                 "--subset", "20", "--out", str(tmp_path / "g"), "--device", "cpu", "--time-budget", "0")
    assert result.exit_code == 0, result.output
    assert "sized for a GPU" in result.output and read_run(tmp_path / "g")["recipe"]["optimizer"] == "muon"


def test_cli_resume_of_a_folder_without_checkpoint_exits_2(tmp_path):
    result = cli("--resume", str(tmp_path))
    assert result.exit_code == 2 and "checkpoint.pt" in result.output


def test_train_command_rejects_other_data_on_resume(tree, tmp_path):
    out = tmp_path / "carol"
    code = train_command(recipe="homework", out_dir=str(out), data_path=str(tree), partial=True, epochs=2,
                         subset=20, device="cpu", time_budget=0, quiet=True)
    assert code == 0
    other = make_image_tree(tmp_path / "other", {"train": 2, "test": 1}, seed=9)
    with pytest.raises(GraderError, match="other data"):
        train_command(resume=str(out), data_path=str(other), partial=True, quiet=True)


def test_a_cpu_without_native_bf16_is_told_it_trains_in_float32(tree, tmp_path, monkeypatch):
    import grader.commands.train as command

    monkeypatch.setattr(command, "bf16_pays", lambda device: False)
    result = cli("--recipe", "fast", "--data", str(tree), "--partial", "--out", str(tmp_path / "f"),
                 "--device", "cpu", "--time-budget", "0")
    assert result.exit_code == 0, result.output
    assert "no native bfloat16" in result.output and "float32" in result.output
    homework = cli("--recipe", "homework", "--data", str(tree), "--partial", "--out", str(tmp_path / "h"),
                   "--device", "cpu", "--time-budget", "0")
    assert "bfloat16" not in homework.output  # a float32 recipe has nothing to be told
