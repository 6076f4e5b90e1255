"""Benchmark: N homework-network submissions graded end to end by `grader batch --jobs J`.

Target: 50 submissions, --jobs 2, on a 2-core machine: under 8 s per submission (load, evaluate
on the 10,000 test images, HTML and PDF report).

Prints seconds per submission (batch wall clock / N), the split start-up / evaluation / rendering
(means over the children, from each batch.json), and, as the baseline measured in the same run,
one submission graded and rendered in this process without the pool: the ratio says what the
pool costs or saves per submission.

    GRADER_DATA=... python bench/bench_batch.py [--count 50] [--jobs 2] [--weights trained.pth]
        [--no-baseline]

``--weights``: a trained homework network to copy per student (``submissions/s2400001.pth``);
without it each student gets a randomly initialised one, which the bf16 tier declines.

Latest figures, with the machine and the date: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def make_submissions(root: Path, count: int, weights: Path | None = None) -> None:
    """``count`` homework networks saved with torch.save(net): copies of ``weights`` (a trained
    one, as students hand in), else randomly initialised ones (no bf16 fast path: their logits
    have no margins to speak of)."""
    import shutil

    import torch

    from grader.models import build

    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        if weights is not None:
            shutil.copyfile(weights, root / f"student{i:03d}.pth")
            continue
        torch.manual_seed(i)
        torch.save(build("homework_net"), root / f"student{i:03d}.pth")


def baseline_in_process(submission: Path, out: Path, data_path: str | None) -> float:
    """Seconds to grade and render one submission here, no child process of our own."""
    from grader.batch.worker import GradeSettings, load_data, load_settings_rubric, write_outputs
    from grader.pipeline import grade_one

    settings = GradeSettings(data_path=data_path)
    start = time.perf_counter()
    data, rubric = load_data(settings), load_settings_rubric(settings)
    result = grade_one(submission, data=data, rubric=rubric)
    write_outputs(result, out, settings, {})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", default=None, help="CIFAR-10 source [default: $GRADER_DATA]")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--weights", type=Path, help="a trained torch.save(net) to copy per student "
                        "(e.g. submissions/s2400001.pth) [default: random initialisation]")
    args = parser.parse_args()

    from grader.batch.run import run_batch
    from grader.batch.executors import LocalExecutor
    from grader.batch.worker import GradeSettings

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        make_submissions(tmp / "subs", args.count, args.weights)
        baseline = None
        if not args.no_baseline:
            baseline = baseline_in_process(tmp / "subs" / "student000.pth", tmp / "baseline", args.data)

        start = time.perf_counter()
        summary = run_batch(tmp / "subs", tmp / "out", settings=GradeSettings(data_path=args.data),
                            executor=LocalExecutor(args.jobs))
        wall = time.perf_counter() - start
        split = {k: statistics.fmean(r.timings.get(k, 0.0) for r in summary.records)
                 for k in ("startup", "evaluate", "render")}
        report_errors = sum(1 for r in summary.records if r.report_error)

    per = wall / args.count
    print(json.dumps({"count": args.count, "jobs": args.jobs, "wall_s": round(wall, 1),
                      "s_per_submission": round(per, 2), "target_s": 8.0,
                      "child_mean_s": {k: round(v, 2) for k, v in split.items()},
                      "statuses": sorted({r.status for r in summary.records}),
                      "reports_not_drawn": report_errors,
                      "baseline_in_process_s": None if baseline is None else round(baseline, 2)}, indent=2))
    if baseline:
        print(f"batch s/submission vs one in-process grade: {per / baseline:.2f}x "
              f"(below 1: the pool's parallelism pays for its process start-up)")


if __name__ == "__main__":
    main()
