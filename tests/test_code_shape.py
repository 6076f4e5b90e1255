"""The package stays readable: no function longer than a reader holds in mind at once."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
MAX_FUNCTION_LINES = 80


def function_lengths() -> dict[str, int]:
    """``file:function`` -> lines from its first decorator to its last line, for every function."""
    lengths = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lengths[f"{path.relative_to(PACKAGE.parent)}:{node.name}"] = node.end_lineno - start + 1
    return lengths


def test_no_function_is_longer_than_80_lines():
    lengths = function_lengths()
    assert len(lengths) > 300  # the walk found the package
    too_long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not too_long, f"split these: {too_long}"
