"""Where a training run stands: everything ``--resume`` continues from, besides the weights.

    TrainState()                      a run before its first step
    state.to_dict() -> dict           the checkpoint's ``resume`` entry (docs/checkpoint-format.md)
    TrainState.from_dict(d)           back from that entry (checked by ``grader.train.checkpoint``)
    state.end_epoch(test_acc) -> dict the finished epoch's record, appended to the history
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

# What the training loop logs per epoch: the homework's history (grader.submission.HISTORY_KEYS) and
# the seconds elapsed, which only the run folder keeps.
LOGGED_KEYS = ("epoch", "train_loss", "train_acc", "test_acc", "elapsed_s")


def empty_history() -> dict[str, list]:
    """A history with every logged key and no epoch yet."""
    return {key: [] for key in LOGGED_KEYS}


@dataclass
class TrainState:
    """A run's position and running sums; the loop advances it after every step.

    Attributes:
        epoch: epochs completed (0-based index of the epoch in progress).
        step: steps done in the epoch in progress (0 at an epoch's start).
        loss_sum: per-image losses summed over the epoch's steps so far: plain cross-entropy of the
            network in train mode, the homework's ``train_loss`` (not the recipe's objective).
        correct: images of those steps the network classified right (before its update).
        seen: images of those steps.
        elapsed_s: training seconds since the run began, summed across resumes.
        rng: torch's global generator state after the last step (dropout draws from it); None
            before the epoch's first step, which seeds it afresh.
        history: per completed epoch, one list per ``LOGGED_KEYS`` entry.
        optimizer: the optimizer's ``state_dict()`` when the state was taken to be saved; None
            while the loop runs (its live optimizer holds it).
    """

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    elapsed_s: float = 0.0
    rng: torch.Tensor | None = None
    history: dict[str, list] = field(default_factory=empty_history)
    optimizer: dict | None = None

    def to_dict(self) -> dict:
        """The checkpoint's ``resume`` entry: one key per field, values as they are (weights_only-loadable)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> TrainState:
        """The state a ``to_dict()`` entry describes; its history gets every logged key.

        Raises:
            KeyError: when ``values`` lacks a field (``grader.train.checkpoint`` checks first).
        """
        state = cls(**{f.name: values[f.name] for f in fields(cls)})
        state.history = {key: list(state.history.get(key, [])) for key in LOGGED_KEYS}
        return state

    def end_epoch(self, test_acc: float) -> dict:
        """Log the finished epoch (its means over ``seen`` images), then start the next one.

        Returns:
            The epoch's record: one value per ``LOGGED_KEYS`` entry.
        """
        record = {"epoch": self.epoch + 1, "train_loss": self.loss_sum / self.seen,
                  "train_acc": self.correct / self.seen, "test_acc": test_acc, "elapsed_s": self.elapsed_s}
        for key in LOGGED_KEYS:
            self.history[key].append(record[key])
        self.epoch, self.step, self.loss_sum, self.correct, self.seen, self.rng = self.epoch + 1, 0, 0.0, 0, 0, None
        return record
