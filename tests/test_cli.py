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
    assert "Exit codes: 0 success, 1 rubric failed, 2 usage or input error." in result.output


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
