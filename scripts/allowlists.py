"""Write grader/submission/allowlists.py from the installed torch.

    .venv/bin/python scripts/allowlists.py

Run it after changing the pinned torch version; tests/test_pickle_scan.py fails until the shipped
lists equal the installed torch's own.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from grader.submission.pickle_scan import torch_stock_module_names, torch_weights_only_globals

TARGET = Path(__file__).resolve().parents[1] / "grader" / "submission" / "allowlists.py"


def render(version: str, stock: frozenset[str], weights_only: frozenset[str]) -> str:
    def names(values: frozenset[str]) -> str:
        return "".join(f"    {name!r},\n" for name in sorted(values))

    return (f'"""The pre-check\'s allow-lists as torch {version} defines them: written by\n'
            'scripts/allowlists.py, read by grader.submission.pickle_scan (only under that torch), kept\n'
            'equal to torch\'s own by tests/test_pickle_scan.py. Do not edit by hand."""\n\n'
            f"TORCH_VERSION = {version!r}\n\n"
            f"STOCK_MODULES = frozenset({{\n{names(stock)}}})\n\n"
            f"WEIGHTS_ONLY_GLOBALS = frozenset({{\n{names(weights_only)}}})\n")


if __name__ == "__main__":
    TARGET.write_text(render(metadata.version("torch"), torch_stock_module_names(), torch_weights_only_globals()),
                      encoding="utf-8")
    print("wrote", TARGET)
