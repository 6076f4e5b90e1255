"""What robustness costs: generating the corrupted set once, then each grade that measures it.

    .venv/bin/python bench/bench_robustness.py [--n 100] [--weights submissions/s2400001.pth ...]

1. Generation, first run: every corruption at every severity on N test images, into an empty
   cache (a temporary $GRADER_CACHE), then the same call reading the cache back.
2. Per submission, in the same run: ``grade_one`` (sandboxed child) without robustness (the
   baseline), then with it (the set cached, N images per corruption and severity sent in the same
   request). Prints the seconds robustness adds and the ratio, in wall time and in CPU time (this
   process and its children: the grading child's torch threads), which a busy machine inflates far
   less than wall time; on 2 idle cores the wall time is about half the CPU time. Target: at most
   20 s added per submission on 2 cores, which sizes the default N.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the grading child)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run):
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def grade_times(run, repeats: int):
    """The best (wall, CPU) seconds of ``repeats`` runs, and the last run's value."""
    best, value = None, None
    for _ in range(repeats):
        cpu = cpu_seconds()
        wall, value = timed(run)
        pair = (wall, cpu_seconds() - cpu)
        best = pair if best is None or pair[0] < best[0] else best
    return best, value


def main() -> None:
    from grader.robustness import DEFAULT_N

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="test images per corruption and severity")
    parser.add_argument("--weights", type=Path, nargs="+", default=[ROOT / "submissions" / "s2400001.pth"])
    parser.add_argument("--repeats", type=int, default=1, help="grades of each kind; the best counts")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()

    from grader.data import load_cifar10
    from grader.pipeline import grade_one
    from grader.robustness.cache import corrupted_set
    from grader.robustness.corruptions import CORRUPTIONS, SEVERITIES

    data = load_cifar10(args.data)  # the data cache stays where it is; only the corrupted set moves
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["GRADER_CACHE"] = scratch
        first, made = timed(lambda: corrupted_set(data, args.n))
        cached, _ = timed(lambda: corrupted_set(data, args.n))
        images = len(CORRUPTIONS) * SEVERITIES * args.n
        print(f"corrupted set, N={args.n}: {len(CORRUPTIONS)} corruptions x {SEVERITIES} severities = {images:,} "
              f"images ({made.images.nbytes / 2**20:.1f} MiB)")
        print(f"  first run (generate + write): {first:6.2f} s   read back from the cache: {cached:.3f} s")
        for weights in args.weights:
            (plain, plain_cpu), _ = grade_times(lambda: grade_one(weights, data=data), args.repeats)
            (wall, cpu), result = grade_times(lambda: grade_one(weights, data=data, robustness=args.n), args.repeats)
            r = result.robustness
            print(f"{weights.name}: plain grade {plain:6.2f} s wall, {plain_cpu:6.2f} s CPU; with robustness "
                  f"{wall:6.2f} s wall (+{wall - plain:.2f} s, {wall / plain:.2f}x), {cpu:6.2f} s CPU "
                  f"(+{cpu - plain_cpu:.2f} s, {cpu / plain_cpu:.2f}x)")
            print(f"  clean {result.evaluation.accuracy:.2%}, mean corruption accuracy {r.mean_accuracy:.2%}, "
                  f"per severity {', '.join(f'{v:.1%}' for v in r.per_severity)}")


if __name__ == "__main__":
    main()
