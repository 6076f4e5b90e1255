"""Sandbox overhead per child: bwrap + seccomp + rlimits + process 1 + memory sampling, against
the same child started bare.

    .venv/bin/python bench/bench_sandbox.py [--repeats 5]

For a bare interpreter, for ``import torch`` and for ``import torch`` followed by work,
prints the median wall time of three ways to start the same child, in alternation so that machine
load affects them alike: bare (``subprocess.run``, no limits), ``run(sandbox=False)`` (rlimits,
memory sampling, scratch folder) and ``run(sandbox=True)``; then the difference sandboxed - bare
(the target: under 0.5 s per submission), and what one memory sample of a three-process tree
costs the grading process. Each difference is the median over runs started back to back; the
first, the time outside the child's own code (start-up and ending), is the sandbox's cost, the
wall and CPU differences also carry the noise of the code itself.

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

from grader.sandbox import SandboxCaps, check_available, memory, run

CHILDREN = {"python -c pass": "pass",
            "import torch": "import torch",
            # About 2 s of one core's work on the 2-core EPYC, with a tensor freed per step.
            "import torch + 800 matmuls": "import torch\ntorch.set_num_threads(1)\n"
                                          "a = torch.ones(384, 384)\n"
                                          "for _ in range(800): a = (a @ a).clamp_(max=1)"}
MODES = ("bare", "unsandboxed", "sandboxed")
LIMITS = SandboxCaps(wall_seconds=120)


def time_child(code: str, mode: str) -> tuple[float, float, float]:
    """Run ``python -c code`` one way: (wall seconds start to reaping, seconds outside the child's
    own code, CPU seconds of every process of the tree).

    The child reads CLOCK_MONOTONIC (one clock for every namespace) before and after ``code``:
    what lies outside that span is the start-up and the ending, where the sandbox's cost is, and
    is spared the variance of ``code`` itself on a busy machine.
    """
    timed = f"import time\nstarted = time.monotonic()\n{code}\nprint(started, time.monotonic())"
    cpu_before = _children_cpu()
    start = time.monotonic()
    if mode == "bare":
        done = subprocess.run([sys.executable, "-c", timed], capture_output=True)
        ok, reason, stdout = done.returncode == 0, "failed", done.stdout
    else:
        result = run([sys.executable, "-c", timed], limits=LIMITS, sandbox=mode == "sandboxed")
        ok, reason, stdout = result.ok, result.reason, result.stdout
    end = time.monotonic()
    if not ok:
        raise SystemExit(f"child failed ({mode}): {reason}")
    began, finished = map(float, stdout.split())
    return end - start, (end - start) - (finished - began), _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample_seconds(repeats: int = 2000) -> float:
    """Seconds one memory sample takes over a tree of three sleeping processes."""
    nested = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {!r}]); time.sleep(60)"
    code = nested.format(nested.format("import time; time.sleep(60)"))
    root = subprocess.Popen([sys.executable, "-c", code])
    try:
        while len(memory.process_tree(root.pid)) < 3:
            time.sleep(0.05)
        start = time.perf_counter()
        for _ in range(repeats):
            memory.tree_bytes(root.pid, LIMITS.memory_bytes)
        return (time.perf_counter() - start) / repeats
    finally:
        for pid in reversed(memory.process_tree(root.pid)):
            os.kill(pid, signal.SIGKILL)
        root.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    check_available()
    time_child("import torch", "sandboxed")  # warm the page cache and the availability probe
    for label, code in CHILDREN.items():
        runs: dict[str, list] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):
            for mode in MODES:
                runs[mode].append(time_child(code, mode))
        wall, outside, cpu = ({mode: [r[i] for r in runs[mode]] for mode in MODES} for i in range(3))
        # Differences of runs started back to back, so a burst of load hits both sides alike.
        extra = {name: statistics.median(b - a for a, b in zip(values["bare"], values["sandboxed"]))
                 for name, values in (("wall", wall), ("outside", outside), ("cpu", cpu))}
        print(f"{label:26s} wall: bare {statistics.median(wall['bare']):6.3f} s  unsandboxed "
              f"{statistics.median(wall['unsandboxed']):6.3f} s  sandboxed "
              f"{statistics.median(wall['sandboxed']):6.3f} s")
        print(f"{'':26s} sandboxed - bare: outside the child's code {extra['outside']:+.3f} s, "
              f"wall {extra['wall']:+.3f} s, CPU {extra['cpu']:+.3f} s")
    per_sample = sample_seconds()
    print(f"one memory sample (3 processes): {per_sample * 1e6:.0f} us, "
          f"{per_sample / memory.SAMPLE_SECONDS:.2%} of a core at one sample per "
          f"{memory.SAMPLE_SECONDS * 1000:.0f} ms")


if __name__ == "__main__":
    main()
