"""`grader train`: train a recipe and write a run folder that `grader grade` takes as it is; show
the run's progress and, once it ends, grade it.

    train_command(recipe=..., out_dir=..., ...) -> Exit
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grader.atomic import ensure_dir
from grader.commands.exits import Exit
from grader.errors import GraderError
from grader.train.checkpoint import CHECKPOINT_NAME, make_checkpoint, read_run, rebuild, resume_state, write_run
from grader.train.loop import Progress as LoopProgress
from grader.train.loop import TrainResult, bf16_pays, pick_device, train
from grader.train.recipes import get_recipe, recipe_from_dict


def train_command(*, recipe: str = "fast", out_dir: str | None = None, data_path: str | None = None,
                  epochs: int | None = None, seed: int = 0, device: str = "auto",
                  time_budget: float | None = None, resume: str | None = None,
                  subset: int | None = None, partial: bool = False, quiet: bool = False,
                  report: bool = True) -> Exit:
    """Train (or continue) a run and write its folder; the body of `grader train`.

    With ``resume`` the recipe, seed and subset come from that run's checkpoint (``recipe``,
    ``seed`` and ``subset`` are ignored); ``epochs`` may raise its epoch count before it finishes.

    Returns:
        0 when the run completed or stopped at its time budget (both saved), 130 after Ctrl-C
        (saved, resumable).

    Raises:
        GraderError: for an unknown recipe, a run folder that already holds a run, a resume
        folder that is not a resumable run or was trained on other data, or unusable data.
    """
    from grader.allocator import keep_freed_memory
    from grader.data import load_cifar10

    keep_freed_memory()  # each step's activations reused, not page-faulted afresh (grader.allocator)

    model = state = None
    if resume is not None:
        ckpt = read_run(resume)
        chosen = recipe_from_dict(ckpt["recipe"])
        done = len(ckpt["history"].get("epoch", []))
        if "resume" not in ckpt:  # first: for a complete run no --epochs helps
            raise GraderError(f"the run in {resume} is complete ({done} epochs); there is nothing to resume",
                              "start a new run with --out and a larger --epochs")
        if epochs is not None:
            if epochs <= done:
                raise GraderError(f"--epochs {epochs}: the run in {resume} has already done {done} epochs",
                                  f"pass --epochs above {done}, or leave it out")
            chosen = replace(chosen, epochs=epochs)
        seed, subset = int(ckpt["seed"]), ckpt["dataset"].get("train_subset")
        model, state = rebuild(ckpt), resume_state(ckpt)
        folder = Path(out_dir) if out_dir else Path(resume)
    else:
        chosen = get_recipe(recipe, **({"epochs": epochs} if epochs is not None else {}))
        folder = Path(out_dir) if out_dir else Path("runs") / f"{chosen.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if (folder / CHECKPOINT_NAME).exists():
            raise GraderError(f"{folder} already holds a run",
                              f"continue it with --resume {folder}, or choose another --out")

    data = load_cifar10(data_path, expect_full=not partial)
    if resume is not None and data.fingerprint != ckpt["dataset"].get("fingerprint"):
        raise GraderError(f"the run in {resume} was trained on other data (test fingerprint "
                          f"{str(ckpt['dataset'].get('fingerprint'))[:12]}, this source {data.fingerprint[:12]})",
                          "pass the same --data as the run used")
    if subset is not None and subset > len(data.train_labels):
        raise GraderError(f"--subset {subset} is more than the {len(data.train_labels)} training images",
                          f"pass --subset {len(data.train_labels)} or less, or leave it out to train on all")
    ensure_dir(folder, hint="pass an --out folder you can write to")  # before training, not after it

    def save(result: TrainResult) -> None:
        write_run(folder, make_checkpoint(result, chosen, data, seed, subset))

    if chosen.cpu_note and not quiet and pick_device(device).type == "cpu":
        click.echo(f"note: {chosen.cpu_note}", err=True)
    if chosen.bf16 and not quiet and not bf16_pays(pick_device(device)):
        click.echo("note: this CPU has no native bfloat16 (emulated it is several times slower), "
                   "so the recipe trains in float32", err=True)
    result = train(chosen, data, seed=seed, device=device, subset=subset, time_budget=time_budget,
                   resume=state, model=model, progress=None if quiet else RichProgress(), on_epoch=save)
    save(result)

    if report and result.stopped != "interrupted" and result.history["epoch"]:
        grade_run(folder, data)
    return say_how_it_ended(folder, result, graded=report)


def say_how_it_ended(folder: Path, result: TrainResult, *, graded: bool) -> Exit:
    """Print the run's last accuracy and what to do next; return the command's exit code."""
    history = result.history
    last = f"test accuracy {history['test_acc'][-1]:.2%} after epoch {history['epoch'][-1]}" \
        if history["epoch"] else "no epoch completed"
    if result.stopped == "complete":
        after = " (graded above)" if graded else f". Grade it with: grader grade {folder} --out <folder>"
        click.echo(f"{folder}: {last}{after}")
        return Exit.OK
    reason = "time budget reached" if result.stopped == "time_budget" else "interrupted"
    click.echo(f"{folder}: {reason} at step {result.steps_done}/{result.steps_total}; {last}. "
               f"Continue with: grader train --resume {folder}")
    return Exit.OK if result.stopped == "time_budget" else Exit.INTERRUPTED


def grade_run(folder: Path, data) -> None:
    """Grade the run folder like any submission (sandboxed child, default rubric) and write
    results.json, report.html and report.pdf into it."""
    from grader.commands.grading import grade_and_write

    grade_and_write(folder, folder, data=data)


class RichProgress(LoopProgress):
    """Draws one bar over all steps of the run and prints a line per finished epoch."""

    def __init__(self, console: Console | None = None):
        from grader.commands.console import make_console

        self.console = console or make_console(stderr=True)  # a log file gets whole lines
        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1%}"),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self.task = None

    def start(self, total_steps: int, done_steps: int, epochs: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("train", total=total_steps, completed=done_steps,
                                      epoch=min(done_steps * epochs // max(total_steps, 1) + 1, epochs),
                                      epochs=epochs, loss=float("nan"), acc=0.0)

    def step(self, epoch: int, loss: float, acc: float, done: int) -> None:
        self.bar.update(self.task, completed=done, epoch=epoch + 1, loss=loss, acc=acc)

    def epoch_end(self, record: dict) -> None:
        self.bar.console.print(
            f"epoch {record['epoch']:>3}  train_loss {record['train_loss']:.4f}  "
            f"train_acc {record['train_acc']:.2%}  test_acc {record['test_acc']:.2%}  "
            f"({record['elapsed_s']:.0f} s)")

    def stop(self) -> None:
        self.bar.stop()
