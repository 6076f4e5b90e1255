"""What the integrity checks cost per submission: the extra images in the child's one request,
and a triggered input diagnosis (follow-up requests to the same child).

    .venv/bin/python bench/bench_integrity.py [--weights submissions/s2400001.pth] [--repeats 3]

Baseline, in the same run: the child on the test set plus the memorisation probe's copies (the
grade before training metrics were measured). Then the same plus the secret training subset (what
every grade sends now); the test set alone is printed too, for scale. Then the same request for the network handed in with a wrong ``[input]`` (Normalize(0.5) and BGR declared
for a network trained on plain RGB pixels), which scores more than 15 points below its claimed
69% and so triggers the diagnosis: the ten other conventions on a slice of 100 test
images, then the chosen one on another 200, answered by the child that graded it. Targets: at most
1 s added by the training subset, at most 2 s more for a diagnosis.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLAIM = 0.69  # the homework network's own final test accuracy, as its log would claim it


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

    import shutil
    import tempfile

    from grader.data import load_cifar10
    from grader.integrity.assess import IntegrityImages
    from grader.integrity.diagnosing import DiagnosisPlan
    from grader.integrity.memorisation import MEMORISATION
    from grader.limits import Limits
    from grader.runner.launch import run_submission
    from grader.submission import inspect_submission

    data = load_cifar10(args.data)
    extra = IntegrityImages.draw(data, MEMORISATION)
    images = extra.images(data)
    probe_only = IntegrityImages(extra.probed, extra.copies, extra.train[:0]).images(data)
    plans = []

    def child(submission, sent=images, planned=False):
        def run():
            plan = DiagnosisPlan(data, claimed=lambda info: CLAIM, reorder=lambda logits: logits)
            plans.append(plan)
            run_submission(submission, sent, classes=10, seed_text=data.fingerprint, limits=Limits(),
                           plan=plan if planned else None)
        return run

    with tempfile.TemporaryDirectory() as scratch:
        wrong = Path(scratch) / "wrong-input"
        wrong.mkdir()
        shutil.copy(args.weights, wrong / args.weights.name)
        (wrong / "submission.toml").write_text('[input]\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n'
                                               'channels = "bgr"\n')
        with inspect_submission(args.weights) as submission, inspect_submission(wrong) as mislabelled:
            alone = best_of(args.repeats, child(submission, data.test_images))
            baseline = best_of(args.repeats, child(submission, probe_only))
            full = best_of(args.repeats, child(submission))
            graded_only = best_of(args.repeats, child(mislabelled))
            diagnosed = best_of(args.repeats, child(mislabelled, planned=True))
    n = len(data.test_images)
    print(f"{args.weights.name}, best of {args.repeats}, sandboxed child each time")
    print(f"test set alone ({n} images):                  {alone:6.2f} s")
    print(f"+ {len(extra.copies)} probe copies (baseline):            {baseline:6.2f} s")
    print(f"+ {len(extra.train)} training images (every grade now):  {full:6.2f} s "
          f"(+{full - baseline:.2f} s, {full / baseline:.2f}x)")
    print(f"wrong [input], no diagnosis:                   {graded_only:6.2f} s")
    print(f"wrong [input], diagnosed in the same child:    {diagnosed:6.2f} s "
          f"(+{diagnosed - graded_only:.2f} s); found: {[d.fix for d in plans[-1].findings()]}")


if __name__ == "__main__":
    main()
