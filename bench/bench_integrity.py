"""What the integrity checks cost per submission: the extra images in the child's one request,
and a triggered input diagnosis (a second child run).

    .venv/bin/python bench/bench_integrity.py [--weights submissions/s2400001.pth] [--repeats 3]

Baseline, in the same run: the child on the test set alone. Then the child on the test set plus
the memorisation probe's copies and the secret training subset (what every grade sends), and the
diagnosis of the same network (the declared input and ten conventions on two slices of 200 test
images). Targets: at most 1 s added by the extra images, at most 2 s more for a diagnosis.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "submissions" / "s2400001.pth")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()

    from grader.data import load_cifar10
    from grader.integrity.assess import IntegrityImages
    from grader.integrity.memorisation import MEMORISATION
    from grader.limits import Limits
    from grader.pipeline import diagnose_input
    from grader.runner.launch import run_submission
    from grader.submission import inspect_submission

    data = load_cifar10(args.data)
    extra = IntegrityImages.draw(data, MEMORISATION)
    with inspect_submission(args.weights) as submission:
        def child(images):
            return lambda: run_submission(submission, images, classes=10, seed_text=data.fingerprint,
                                          limits=Limits())
        baseline = best_of(args.repeats, child(data.test_images))
        full = best_of(args.repeats, child(extra.images(data)))
        diagnosis = best_of(args.repeats, lambda: diagnose_input(submission, data, declared=None, sandbox=True,
                                                                 limits=Limits()))
    n = len(data.test_images)
    print(f"{args.weights.name}, best of {args.repeats}, sandboxed child each time")
    print(f"test set alone ({n} images):                  {baseline:6.2f} s")
    print(f"+ {len(extra.copies)} probe copies + {len(extra.train)} training images: {full:6.2f} s "
          f"(+{full - baseline:.2f} s, {full / baseline:.2f}x)")
    print(f"a triggered diagnosis (second child run):      {diagnosis:6.2f} s")


if __name__ == "__main__":
    main()
