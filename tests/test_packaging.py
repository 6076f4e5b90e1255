"""`pip install .` (not only editable) ships every module and the templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = out.glob("cifar10_grader-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_has_every_module(wheel_names):
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "grader").rglob("*.py")}
    assert modules - wheel_names == set(), "every package folder needs an __init__.py"


def test_wheel_ships_the_templates(wheel_names):
    templates = {
        "grader/templates/" + p.relative_to(ROOT / "templates").as_posix()
        for p in (ROOT / "templates").rglob("*")
        if p.is_file() and p.suffix in {".j2", ".html", ".css"}
    }
    assert templates <= wheel_names


def test_wheel_has_the_console_script(wheel_names):
    entry_points = [n for n in wheel_names if n.endswith("entry_points.txt")]
    assert entry_points, "no entry_points.txt in the wheel"
