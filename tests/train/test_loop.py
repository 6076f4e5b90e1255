"""grader.train.loop: a short run learns, stops and resumes to the same history, repeats itself."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from grader.errors import GraderError
from grader.pipeline import grade_one
from grader.train.checkpoint import make_checkpoint, read_run, rebuild, resume_state, write_run
from grader.train.data import as_tensors, augment, epoch_plan, normalise
from grader.train.init import new_model
from grader.train.loop import Progress, predict_logits
from tests.train.tiny import RECIPES_UNDER_TEST, TINY_FAST, TINY_HOMEWORK, TINY_MUON, train_on_cpu


@RECIPES_UNDER_TEST
def test_short_run_lowers_the_loss(recipe, data):
    shipped = replace(recipe, epochs=3, bf16=type(recipe)().bf16)  # bfloat16 autocast where the recipe has it
    result = train_on_cpu(shipped, data)
    losses = result.history["train_loss"]
    assert result.stopped == "complete" and result.resume is None
    assert result.history["epoch"] == [1, 2, 3]
    assert losses[-1] < losses[0]
    assert all(0.0 <= a <= 1.0 for a in result.history["test_acc"])


def test_same_seed_same_history_other_seed_differs(data):
    first, again = train_on_cpu(TINY_FAST, data, seed=3), train_on_cpu(TINY_FAST, data, seed=3)
    other = train_on_cpu(TINY_FAST, data, seed=4)
    keys = ("train_loss", "train_acc", "test_acc")
    assert all(first.history[k] == again.history[k] for k in keys)
    assert first.history["train_loss"] != other.history["train_loss"]


class InterruptAt(Progress):
    """Ctrl-C at the ``at``-th step report (mid-epoch 2 for 4 steps an epoch and ``at`` 5)."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def step(self, epoch, loss, acc, done):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt


@RECIPES_UNDER_TEST
def test_interrupted_run_resumes_to_the_same_history(recipe, data, tmp_path):
    full = train_on_cpu(recipe, data, seed=1)
    cut = train_on_cpu(recipe, data, seed=1, progress=InterruptAt(5))
    assert cut.stopped == "interrupted" and cut.history["epoch"] == [1]
    assert (cut.resume.epoch, cut.resume.step, cut.steps_done) == (1, 1, 5)
    write_run(tmp_path / "run", make_checkpoint(cut, recipe, data, seed=1))
    ckpt = read_run(tmp_path / "run")  # through the file, as --resume does
    resumed = train_on_cpu(recipe, data, seed=1, resume=resume_state(ckpt), model=rebuild(ckpt))
    assert resumed.stopped == "complete"
    for key in ("epoch", "train_loss", "train_acc", "test_acc"):
        assert resumed.history[key] == pytest.approx(full.history[key], rel=1e-5), key


def test_reading_the_loss_back_less_often_keeps_the_history(data, monkeypatch):
    """What a GPU run does (sums on the device, read every few steps), checked on the CPU."""
    import grader.train.loop as loop

    class Count(Progress):
        calls = 0
        done = None

        def step(self, epoch, loss, acc, done):
            self.calls += 1
            self.done = done

    every, sparse = Count(), Count()
    full = train_on_cpu(TINY_FAST, data, seed=5, progress=every)
    monkeypatch.setattr(loop, "steps_between_reads", lambda device: 3)
    fewer = train_on_cpu(TINY_FAST, data, seed=5, progress=sparse)
    for key in ("train_loss", "train_acc", "test_acc"):
        assert fewer.history[key] == pytest.approx(full.history[key], rel=1e-9), key
    assert sparse.calls < every.calls and sparse.done == every.done == full.steps_total  # the bar ends full


def test_a_stop_between_reads_keeps_the_steps_not_yet_read(data, monkeypatch):
    """On a GPU the sums are read every few steps: Ctrl-C between two reads loses none of them."""
    import grader.train.loop as loop

    monkeypatch.setattr(loop, "steps_between_reads", lambda device: 3)
    full = train_on_cpu(TINY_FAST, data, seed=6)
    train_step, calls = loop._train_step, []

    def interrupted_before_step_7(*args):  # epoch 2's steps 1 and 2 done, its first read due at 3
        calls.append(args)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return train_step(*args)

    monkeypatch.setattr(loop, "_train_step", interrupted_before_step_7)
    cut = train_on_cpu(TINY_FAST, data, seed=6)
    assert (cut.resume.epoch, cut.resume.step, cut.resume.seen) == (1, 2, 20)
    monkeypatch.setattr(loop, "_train_step", train_step)
    resumed = train_on_cpu(TINY_FAST, data, seed=6, resume=cut.resume, model=cut.model)
    for key in ("train_loss", "train_acc", "test_acc"):
        assert resumed.history[key] == pytest.approx(full.history[key], rel=1e-5), key


def test_a_diverging_run_stops_with_an_error_that_says_so(data):
    with pytest.raises(GraderError, match="diverged.*epoch 1"):
        train_on_cpu(replace(TINY_HOMEWORK, lr=1e6), data)


def test_time_budget_stops_cleanly_with_a_resume_state(data):
    result = train_on_cpu(TINY_FAST, data, time_budget=0.0)
    assert result.stopped == "time_budget" and result.steps_done == 0 and result.resume is not None
    assert result.resume.optimizer is not None and result.history["epoch"] == []


def test_muon_run_freezes_the_whitening_bias_after_its_epochs(data):
    biases = []
    result = train_on_cpu(TINY_MUON, data, on_epoch=lambda snap: biases.append(snap.model[0].bias.detach().clone()))
    first, second = biases  # after epochs 1 and 2; whiten_bias_epochs = 1
    assert not torch.equal(first, torch.zeros_like(first))  # trained in epoch 1
    assert torch.equal(first, second) and torch.equal(second, result.model[0].bias)


def test_train_loss_is_the_plain_cross_entropy_of_the_training_batches(data):
    """The homework's train_loss: plain cross-entropy in train mode, not the label-smoothed objective
    the fast recipe minimises. With lr 0 the weights never move, so the epoch can be replayed here."""
    confident = {**TINY_FAST.arch_args, "logit_scale": 10.0}  # logits far from uniform, where smoothing tells
    frozen = replace(TINY_FAST, arch_args=confident, epochs=1, lr=0.0)
    logged = train_on_cpu(frozen, data, seed=2).history["train_loss"][0]
    cpu = torch.device("cpu")
    tensors = as_tensors(data, None, cpu)
    net = new_model(frozen, tensors["train_x"], 2, cpu).train()
    plan = epoch_plan(len(tensors["train_y"]), 0, 2, frozen)
    plain = smoothed = 0.0
    with torch.no_grad():
        for idx in plan["order"].split(frozen.batch_size):
            logits = net(augment(normalise(tensors["train_x"][idx], frozen), idx, plan, frozen))
            y = tensors["train_y"][idx]
            plain += F.cross_entropy(logits, y, reduction="sum").item()
            smoothed += F.cross_entropy(logits, y, label_smoothing=frozen.label_smoothing, reduction="sum").item()
    n = len(plan["order"])
    assert logged == pytest.approx(plain / n, rel=1e-5)
    assert abs(plain - smoothed) / n > 0.1


@RECIPES_UNDER_TEST
def test_the_logged_test_accuracy_is_what_grader_grade_measures(recipe, data, tmp_path):
    """The last test_acc of the history equals the accuracy `grader grade` measures on the run
    folder, and the log's logits are the graded network's (same loss): no TTA, eval mode, float32,
    the run's input normalisation."""
    result = train_on_cpu(recipe, data)  # seed 0: the tiny homework run stays finite (seed 1 blows up)
    folder = write_run(tmp_path / "run", make_checkpoint(result, recipe, data, seed=0))
    graded = grade_one(folder, data=data, sandbox=False, memorisation=None)
    assert graded.evaluation is not None, graded.error
    assert graded.evaluation.accuracy == result.history["test_acc"][-1]
    tensors = as_tensors(data, None, torch.device("cpu"))
    logits = predict_logits(result.model, tensors["test_x"], recipe)
    assert graded.evaluation.loss == pytest.approx(F.cross_entropy(logits, tensors["test_y"]).item(), rel=1e-4)
