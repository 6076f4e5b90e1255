"""Sandbox overhead per child: bwrap + seccomp + rlimits against the same child unsandboxed.

    .venv/bin/python bench/bench_sandbox.py [--repeats 5]

Prints, for a bare interpreter and for ``import torch``, the median wall time of each mode and
the difference (the target: under 0.5 s per submission). Both modes run in this process, in
alternation, so machine load affects them alike.

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from grader.sandbox import SandboxCaps, check_available, run

CHILDREN = {"python -c pass": "pass", "import torch": "import torch"}


def time_child(code: str, sandbox: bool) -> float:
    start = time.perf_counter()
    result = run([sys.executable, "-c", code], limits=SandboxCaps(wall_seconds=120), sandbox=sandbox)
    elapsed = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"child failed ({'sandboxed' if sandbox else 'plain'}): {result.reason}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    check_available()
    time_child("import torch", True)  # warm the page cache and the availability probe
    for label, code in CHILDREN.items():
        plain, boxed = [], []
        for _ in range(args.repeats):
            plain.append(time_child(code, False))
            boxed.append(time_child(code, True))
        p, b = statistics.median(plain), statistics.median(boxed)
        print(f"{label:16s} plain {p:6.3f} s  sandboxed {b:6.3f} s  overhead {b - p:+.3f} s "
              f"(x{b / p:.2f})")


if __name__ == "__main__":
    main()
