"""How far honest training logs sit from the ``history-mismatch`` and ``test-set-fit`` flags.

    GRADER_DATA=... .venv/bin/python bench/calibrate_claims.py RUN_FOLDER_OR_HAND_IN [...]

Grades each hand-in (a run folder of ``grader train``, with its history, is the honest case)
and prints its final claims beside what the grading process measures: training accuracy and
loss on the secret subset of training images (eval mode), test accuracy on the test set. The
raw gaps say how much better than measured the log claims (negative: worse, the usual case for a
log kept in train mode); the slack says how far each claim is from being flagged with the
tolerances in ``grader.integrity.claims`` (negative slack would be a false flag). The last
column is the test-minus-train gap that ``test-set-fit`` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def row(path: Path, data, rubric) -> str:
    from grader.integrity.claims import TOLERANCES
    from grader.pipeline import grade_one

    result = grade_one(path, data=data, rubric=rubric)
    if not result.graded:
        return f"| {path.name} | not graded: {result.error} |"
    history, train, test = result.history or {}, result.integrity.training, result.evaluation
    official = result.dataset.get("source_kind") == "official"
    copy_acc, copy_loss = (0.0, 0.0) if official else (TOLERANCES.other_copy, TOLERANCES.other_copy_loss)
    claims = {key: (history.get(key) or [None])[-1] for key in ("train_acc", "train_loss", "test_acc")}
    epochs = len(history.get("train_loss") or ())
    cells = [path.name, str(epochs or "-")]
    for key, measured, upper in (("train_acc", train.accuracy, train.accuracy_ci[1]),
                                 ("test_acc", test.accuracy, test.accuracy_ci[1])):
        claimed = claims[key]
        allowed = min(1.0, upper + TOLERANCES.accuracy + copy_acc)
        cells.append("-" if claimed is None else
                     f"{claimed:.1%} vs {measured:.1%}: gap {claimed - measured:+.1%}, slack {allowed - claimed:+.1%}")
    claimed = claims["train_loss"]
    allowed = max(0.0, train.loss_ci[0] * (1 - TOLERANCES.loss_relative) - TOLERANCES.loss - copy_loss)
    cells.append("-" if claimed is None else
                 f"{claimed:.3f} vs {train.loss:.3f}: gap {train.loss - claimed:+.3f}, slack {claimed - allowed:+.3f}")
    cells.append(f"{test.accuracy - train.accuracy:+.1%}" + (" FLAGGED" if result.integrity.fit else ""))
    flags = sorted(set(result.flags) & {"history-mismatch", "test-set-fit", "memorisation-suspected",
                                        "input-convention", "class-order"})
    cells.append(", ".join(flags) or "none")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hand_ins", nargs="+", type=Path)
    parser.add_argument("--data", default=None)
    parser.add_argument("--rubric", default=None, help="a rubric whose [limits] suit a large network")
    args = parser.parse_args()

    from grader.data import load_cifar10

    from grader.rubric import load_rubric

    data, rubric = load_cifar10(args.data), load_rubric(args.rubric)
    print(f"data: {data.source} ({data.source_kind})")
    print("| hand-in | epochs | train_acc: claimed vs measured | test_acc: claimed vs measured | "
          "train_loss: claimed vs measured | test - train | integrity flags |")
    print("|---|---|---|---|---|---|---|")
    for path in args.hand_ins:
        print(row(path, data, rubric), flush=True)


if __name__ == "__main__":
    main()
