"""A rich progress bar for training: epoch, running loss and accuracy, time left."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from grader.train.loop import Progress as LoopProgress


class RichProgress(LoopProgress):
    """Draws one bar over all steps of the run and prints a line per finished epoch."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
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
