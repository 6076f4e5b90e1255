"""grader.train.checkpoint: the run folder describes itself, loads weights-only, and a damaged
one is refused with a hint; run folders written before keep resuming."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import fields

import pytest
import torch

from grader.errors import GraderError
from grader.models import build
from grader.commands.train import train_command
from grader.train.checkpoint import (CHECKPOINT_NAME, FORMAT, FORMAT_VERSION, RESUME_TYPES, make_checkpoint,
                                     read_run, rebuild, resume_state, submission_toml, write_run)
from grader.train.recipes import FastRecipe, recipe_from_dict
from grader.train.state import TrainState
from tests.train.tiny import STOPPED_RUN, TINY_FAST, train_on_cpu


def test_run_folder_is_self_describing_and_loads_weights_only(data, tmp_path):
    result = train_on_cpu(TINY_FAST, data, seed=2)
    folder = write_run(tmp_path / "alice", make_checkpoint(result, TINY_FAST, data, seed=2))
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert ckpt["format"] == "grader-checkpoint" and ckpt["format_version"] == 1
    assert ckpt["arch"] == {"name": "fast_net", "args": {"widths": [8, 16, 16]}}
    assert recipe_from_dict(ckpt["recipe"]) == TINY_FAST
    assert ckpt["dataset"]["fingerprint"] == data.fingerprint and ckpt["seed"] == 2
    assert set(ckpt["versions"]) == {"grader", "torch", "torchvision", "python"}
    assert "resume" not in ckpt
    net = build(ckpt["arch"]["name"], **ckpt["arch"]["args"])
    net.load_state_dict(ckpt["state_dict"])
    x = torch.rand(4, 3, 32, 32)
    result.model.eval(), net.eval()
    assert torch.allclose(net(x), result.model(x.contiguous(memory_format=torch.channels_last)), atol=1e-5)
    history = json.loads((folder / "history.json").read_text())
    assert history["test_acc"] == ckpt["history"]["test_acc"]
    toml = tomllib.loads((folder / "submission.toml").read_text())
    assert toml["student"] == "alice" and toml["weights"] == "checkpoint.pt"
    assert toml["history"] == "history.json"
    assert toml["input"] == {"scale": 1.0, "mean": list(FastRecipe().input_mean), "std": list(FastRecipe().input_std)}


def test_a_stopped_run_keeps_its_state_in_the_resume_entry(data, tmp_path):
    cut = train_on_cpu(TINY_FAST, data, time_budget=0.0)
    write_run(tmp_path / "run", make_checkpoint(cut, TINY_FAST, data, seed=0))
    entry = read_run(tmp_path / "run")["resume"]
    assert set(entry) == set(RESUME_TYPES) == {f.name for f in fields(TrainState)}
    assert resume_state({"resume": entry}) == TrainState(optimizer=entry["optimizer"])


def test_a_run_folder_written_before_resumes_where_it_stopped(tree, tmp_path):
    folder = shutil.copytree(STOPPED_RUN, tmp_path / "run")
    before = read_run(folder)
    state = resume_state(before)
    assert (state.epoch, state.step, state.seen, len(state.optimizer["parts"])) == (1, 2, 20, 2)
    assert state.rng is not None and state.history["epoch"] == [1]
    code = train_command(resume=str(folder), data_path=str(tree), partial=True, device="cpu", quiet=True,
                         report=False)
    assert code == 0
    after = read_run(folder)
    assert "resume" not in after and after["history"]["epoch"] == [1, 2]
    for key in ("train_loss", "train_acc", "test_acc", "elapsed_s"):  # the stored epoch is kept as it was
        assert after["history"][key][0] == before["history"][key][0], key
    assert after["history"]["elapsed_s"][1] > state.elapsed_s  # the seconds before the stop count


def test_a_damaged_checkpoint_is_refused_with_a_hint(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "seed": 0}, folder / CHECKPOINT_NAME)
    with pytest.raises(GraderError, match="lacks arch, dataset, history, input, recipe, state_dict"):
        read_run(folder)
    good = {"arch": {"name": "homework_net", "args": {}}, "state_dict": {"0.weight": torch.zeros(1)}}
    with pytest.raises(GraderError, match="cannot be rebuilt") as raised:
        rebuild(good)
    assert "hint:" in str(raised.value)
    with pytest.raises(GraderError, match="cannot be rebuilt"):
        rebuild({"arch": {"name": "no_such_net", "args": {}}, "state_dict": {}})


def test_a_damaged_resume_entry_is_refused_with_a_hint(tmp_path):
    ckpt = torch.load(STOPPED_RUN / CHECKPOINT_NAME, weights_only=True)
    cases = {"lacks rng, optimizer": lambda e: {k: v for k, v in e.items() if k not in ("optimizer", "rng")},
             "wrong type for step": lambda e: {**e, "step": "2"},
             "not a dict": lambda e: [e]}
    for message, damage in cases.items():
        folder = tmp_path / message.replace(" ", "-").replace(",", "")
        folder.mkdir()
        torch.save({**ckpt, "resume": damage(ckpt["resume"])}, folder / CHECKPOINT_NAME)
        with pytest.raises(GraderError, match=message) as raised:
            read_run(folder)
        assert "hint:" in str(raised.value)


def test_submission_toml_quotes_what_it_is_given():
    name = 'Li "Lei" \\ 李雷'
    text = submission_toml("s1", {"scale": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}, "w.pt",
                           name=name, entry="model.py:build_model")
    toml = tomllib.loads(text)
    assert toml["name"] == name and toml["entry"] == "model.py:build_model" and toml["weights"] == "w.pt"
    assert "name" not in tomllib.loads(submission_toml("s1", {"scale": 1.0, "mean": [0, 0, 0],
                                                                "std": [1, 1, 1]}))
