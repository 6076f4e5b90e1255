"""The CLI through click's CliRunner: help, version, exit codes, and `grader data`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grader import __version__
from grader.cli import main


@pytest.fixture
def cli():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize(
    "command", [[], ["data"], ["data", "info"], ["data", "prepare"], ["train"], ["grade"],
                ["check"], ["report"], ["batch"], ["gradescope"]],
)
def test_every_command_has_help_with_exit_codes(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Exit codes: 0 success, 1 rubric failed, 2 usage or input error, 3 grader bug, 130 interrupted." \
        in " ".join(result.output.split())


@pytest.mark.parametrize("raised, code, words", [
    (KeyboardInterrupt(), 130, "interrupted"),
    (OSError(28, "No space left on device", "/out/report.pdf"), 2, "No space left on device (/out/report.pdf)"),
    (BrokenPipeError(32, "Broken pipe"), 2, "Broken pipe"),
])
def test_ctrl_c_and_the_machines_trouble_are_not_grader_bugs(tmp_path, monkeypatch, raised, code, words):
    import grader.commands.grading as grading_commands

    def fail(**options):
        raise raised

    monkeypatch.setattr(grading_commands, "grade_command", fail)
    (tmp_path / "model.pth").write_bytes(b"weights")
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "model.pth"), "--out", str(tmp_path / "o")])
    assert result.exit_code == code and words in result.output
    assert "Traceback" not in result.output and "bug in grader" not in result.output


def test_a_crash_of_grader_itself_is_exit_3_never_1(cli, tmp_path, monkeypatch):
    import grader.commands.grading as grading_commands

    def crash(**options):
        raise KeyError("schema")

    monkeypatch.setattr(grading_commands, "grade_command", crash)
    (tmp_path / "model.pth").write_bytes(b"weights")
    result = CliRunner().invoke(main, ["grade", str(tmp_path / "model.pth"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3  # 1 would read as "the rubric failed" to a script
    assert "KeyError" in result.output and "bug in grader" in result.output and "Traceback" in result.output


def test_data_info_prints_counts_and_identity(cli, image_tree):
    result = cli("data", "info", "--data", image_tree, "--partial")
    assert result.exit_code == 0, result.output
    assert "image-tree" in result.output and "fingerprint" in result.output
    assert "airplane" in result.output and "truck" in result.output
    assert result.output.rstrip().splitlines()[-1].split() == ["total", "30", "20"]


def test_data_info_json(cli, image_tree):
    result = cli("data", "info", "--data", image_tree, "--partial", "--json")
    info = json.loads(result.output)
    assert info["counts"]["test"]["per_class"] == [2] * 10
    assert info["official"] is False and len(info["fingerprint"]) == 64


def test_data_prepare_then_env_var(cli, image_tree, monkeypatch):
    assert cli("data", "prepare", "--data", image_tree, "--partial").exit_code == 0
    monkeypatch.setenv("GRADER_DATA", str(image_tree))
    result = cli("data", "info", "--partial")
    assert result.exit_code == 0 and "$GRADER_DATA" in result.output


def test_bad_data_is_exit_2_with_a_hint(cli, tmp_path):
    result = cli("data", "info", "--data", tmp_path / "missing.tar.gz")
    assert result.exit_code == 2
    assert "not found" in result.output and "hint:" in result.output
    assert "Traceback" not in result.output


def test_wrong_count_is_exit_2(cli, image_tree):
    result = cli("data", "info", "--data", image_tree)
    assert result.exit_code == 2 and "--partial" in result.output


def test_unknown_option_is_exit_2(cli):
    assert cli("data", "info", "--bogus").exit_code == 2


# --- bad output places and hand-edited input: exit 2 with a hint, before any work -------------------


def test_grade_accepts_partial_data_and_refuses_an_out_under_a_file_before_grading(cli, image_tree, tmp_path,
                                                                                    monkeypatch):
    import grader.commands.grading as grading_commands

    def never(*args, **kwargs):
        raise AssertionError("graded although --out cannot be written")

    monkeypatch.setattr(grading_commands, "grade_one", never)
    (tmp_path / "model.pth").write_bytes(b"weights")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    result = cli("grade", tmp_path / "model.pth", "--out", tmp_path / "notes.txt" / "out", "--data", image_tree,
                 "--partial")
    assert result.exit_code == 2, result.output
    assert "notes.txt" in result.output and "is a file" in result.output and "hint:" in result.output
    assert "Traceback" not in result.output


def test_report_of_a_hand_edited_results_json_is_exit_2(cli, tmp_path):
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "results_graded.json"
    results = json.loads(fixture.read_text(encoding="utf-8"))
    edited = tmp_path / "results.json"
    edited.write_text(json.dumps({**results, "accuracy": "high"}), encoding="utf-8")
    result = cli("report", edited, "--out", tmp_path / "r", "--no-pdf")
    assert result.exit_code == 2 and "wrong type" in result.output and "hint:" in result.output
    assert not (tmp_path / "r").exists()
    (tmp_path / "file").write_text("")
    result = cli("report", fixture, "--out", tmp_path / "file" / "r", "--no-pdf")
    assert result.exit_code == 2 and "is a file" in result.output


def test_grade_with_no_pdf_writes_the_html_report_only(tmp_path, monkeypatch):
    import grader.commands.grading as grading_commands
    from tests.fixtures.make_submissions import tiny_data, write_form

    monkeypatch.setattr(grading_commands, "load_cifar10", lambda _path, **_options: tiny_data(20))
    folder = write_form("pickled-module", tmp_path / "s")
    ran = CliRunner().invoke(main, ["grade", str(folder), "--out", str(tmp_path / "o"), "--no-sandbox", "--no-pdf"])
    assert ran.exit_code in (0, 1), ran.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.html", "results.json"]
