"""grader.train: a short run learns, writes a loadable run folder, resumes, and repeats itself."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from grader.cli import main
from grader.data import load_cifar10
from grader.errors import GraderError
from grader.models import build
from grader.train import train_command
from grader.train.checkpoint import make_checkpoint, read_run, rebuild, resume_state, write_run
from grader.train.data import epoch_plan, translate
from grader.train.init import new_model
from grader.train.loop import Progress, predict_logits, train
from grader.train.muon import Muon
from grader.train.optim import lr_at, make_optimizer, set_lrs
from grader.train.recipes import FastGpuRecipe, FastRecipe, HomeworkRecipe, get_recipe, recipe_from_dict
from tests.conftest import make_image_tree

# Small, quick versions of both recipes: same code paths, a fraction of the work.
TINY_FAST = replace(FastRecipe(), arch_args={"widths": [8, 16, 16]}, whiten_samples=40, batch_size=10,
                    epochs=3, eval_batch_size=50)
TINY_HOMEWORK = replace(HomeworkRecipe(), batch_size=10, epochs=2, lr=0.05, eval_batch_size=50)
TINY_MUON = replace(FastGpuRecipe(), arch_args={**FastGpuRecipe().arch_args, "widths": [8, 16, 16]},
                    whiten_samples=40, batch_size=10, epochs=3, whiten_bias_epochs=1, eval_batch_size=50)
RECIPES_UNDER_TEST = pytest.mark.parametrize("recipe", [TINY_HOMEWORK, TINY_FAST, TINY_MUON],
                                             ids=["homework", "fast", "muon"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_image_tree(tmp_path_factory.mktemp("data") / "tree", {"train": 4, "test": 1})


@pytest.fixture(scope="module")
def data(tree):
    return load_cifar10(tree, expect_full=False)


def run(recipe, data, **kw):
    return train(recipe, data, seed=kw.pop("seed", 0), device="cpu", **kw)


@RECIPES_UNDER_TEST
def test_short_run_lowers_the_loss(recipe, data):
    result = run(replace(recipe, epochs=3), data)
    losses = result.history["train_loss"]
    assert result.stopped == "complete" and result.resume is None
    assert result.history["epoch"] == [1, 2, 3]
    assert losses[-1] < losses[0]
    assert all(0.0 <= a <= 1.0 for a in result.history["test_acc"])


def test_same_seed_same_history_other_seed_differs(data):
    first, again = run(TINY_FAST, data, seed=3), run(TINY_FAST, data, seed=3)
    other = run(TINY_FAST, data, seed=4)
    keys = ("train_loss", "train_acc", "test_acc")
    assert all(first.history[k] == again.history[k] for k in keys)
    assert first.history["train_loss"] != other.history["train_loss"]


@RECIPES_UNDER_TEST
def test_interrupted_run_resumes_to_the_same_history(recipe, data, tmp_path):
    full = run(recipe, data, seed=1)

    class InterruptMidEpoch(Progress):  # Ctrl-C arrives in the middle of epoch 2
        calls = 0

        def step(self, epoch, loss, acc, done):
            self.calls += 1
            if self.calls == 5:
                raise KeyboardInterrupt

    cut = run(recipe, data, seed=1, progress=InterruptMidEpoch())
    assert cut.stopped == "interrupted" and cut.history["epoch"] == [1]
    write_run(tmp_path / "run", make_checkpoint(cut, recipe, data, seed=1))
    ckpt = read_run(tmp_path / "run")  # through the file, as --resume does
    resumed = run(recipe, data, seed=1, resume=resume_state(ckpt), model=rebuild(ckpt))
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
    full = run(TINY_FAST, data, seed=5, progress=every)
    monkeypatch.setattr(loop, "steps_between_reads", lambda device: 3)
    fewer = run(TINY_FAST, data, seed=5, progress=sparse)
    for key in ("train_loss", "train_acc", "test_acc"):
        assert fewer.history[key] == pytest.approx(full.history[key], rel=1e-9), key
    assert sparse.calls < every.calls and sparse.done == every.done == full.steps_total  # the bar ends full


def test_a_diverging_run_stops_with_an_error_that_says_so(data):
    with pytest.raises(GraderError, match="diverged.*epoch 1"):
        run(replace(TINY_HOMEWORK, lr=1e6), data)


def test_time_budget_stops_cleanly_with_a_resume_state(data):
    result = run(TINY_FAST, data, time_budget=0.0)
    assert result.stopped == "time_budget" and result.steps_done == 0 and result.resume is not None


def test_run_folder_is_self_describing_and_loads_weights_only(data, tmp_path):
    result = run(TINY_FAST, data, seed=2)
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


def test_homework_recipe_is_the_reference():
    r = HomeworkRecipe()
    assert (r.arch, r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay) == ("homework_net", 20, 100, 0.03, 0, 0)
    assert not (r.flip or r.translate or r.tta_flip or r.whiten_samples or r.label_smoothing or r.bf16)
    assert r.input_spec() == {"scale": 1.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    assert all(lr_at(s, 10_000, r) == 0.03 for s in (0, 5_000, 9_999))  # constant


def test_fast_schedule_warms_up_then_decays_to_zero():
    r = FastRecipe()
    assert lr_at(0, 100, r) < lr_at(19, 100, r) == pytest.approx(r.lr)
    assert lr_at(99, 100, r) < 0.02 * r.lr


def test_muon_recipe_gives_filters_to_muon_and_the_rest_to_sgd():
    recipe = TINY_MUON
    net = new_model(recipe, torch.zeros(60, 3, 32, 32, dtype=torch.uint8), seed=0, device=torch.device("cpu"))
    optimizer = make_optimizer(net, recipe, steps_per_epoch=20)
    sgd, muon = optimizer.parts
    assert isinstance(muon, Muon)
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    in_sgd = {id(p) for g in sgd.param_groups for p in g["params"]}
    assert in_muon | in_sgd == trainable and not in_muon & in_sgd
    assert in_muon == {id(p) for p in net.parameters() if p.requires_grad and p.ndim == 4}
    assert not net[0].weight.requires_grad  # the whitening filters are set from the data
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not any(m.weight.requires_grad for m in bn)  # bn_scale False: shifts only
    head = next(g for g in sgd.param_groups if any(p is net[-2].weight for p in g["params"]))
    assert head["lr"] == recipe.head_lr and head["weight_decay"] == pytest.approx(recipe.weight_decay / recipe.head_lr)
    whiten = next(g for g in sgd.param_groups if "until_step" in g)
    assert whiten["params"] == [net[0].bias] and whiten["until_step"] == 20  # 1 epoch of 20 steps
    total = 60
    set_lrs(optimizer, 10, total, recipe)
    assert whiten["lr"] == pytest.approx(recipe.lr / 2) and muon.param_groups[0]["lr"] == pytest.approx(
        recipe.muon_lr * (1 - 10 / total))
    set_lrs(optimizer, 30, total, recipe)
    assert whiten["lr"] == 0.0 and head["lr"] == pytest.approx(recipe.head_lr / 2)


def test_muon_run_freezes_the_whitening_bias_after_its_epochs(data):
    biases = []
    result = run(TINY_MUON, data, on_epoch=lambda snap: biases.append(snap.model[0].bias.detach().clone()))
    first, second = biases  # after epochs 1 and 2; whiten_bias_epochs = 1
    assert not torch.equal(first, torch.zeros_like(first))  # trained in epoch 1
    assert torch.equal(first, second) and torch.equal(second, result.model[0].bias)


def test_translate_tta_adds_shifted_views_only_to_the_final_evaluation(data):
    net = build("fast_net", widths=[8, 16, 16]).eval()
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    plain = replace(TINY_FAST, tta_translate=False)
    shifted = replace(TINY_FAST, tta_translate=True)
    assert torch.equal(predict_logits(net, images, shifted), predict_logits(net, images, plain))
    assert torch.equal(predict_logits(net, images, plain, final=True), predict_logits(net, images, plain))
    assert not torch.allclose(predict_logits(net, images, shifted, final=True), predict_logits(net, images, plain))


def test_whitening_sample_is_spread_over_the_classes(monkeypatch):
    import grader.train.init as init

    seen = {}
    monkeypatch.setattr(init, "set_whitening", lambda net, x, eps: seen.setdefault("x", x))
    # stored class by class, as an image tree is: image i of class c has every pixel = c
    train_x = torch.arange(10, dtype=torch.uint8).repeat_interleave(50).view(500, 1, 1, 1).expand(500, 3, 32, 32)
    new_model(replace(TINY_FAST, whiten_samples=40, input_mean=(0.0,) * 3, input_std=(1.0,) * 3),
              train_x, seed=0, device=torch.device("cpu"))
    classes = (seen["x"][:, 0, 0, 0] * 255).round().unique()
    assert len(seen["x"]) == 40 and len(classes) >= 8  # not the first 40 images, all of class 0


def test_augmentation_plan_is_seeded_and_flips_alternate():
    r = FastRecipe()
    a, b = epoch_plan(50, 0, 7, r), epoch_plan(50, 0, 7, r)
    assert torch.equal(a["order"], b["order"]) and torch.equal(a["dx"], b["dx"])
    assert torch.equal(epoch_plan(50, 1, 7, r)["flip"], ~a["flip"])
    assert a["dx"].abs().max() <= r.translate


def test_translate_shifts_pixels():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    out = translate(x, torch.tensor([0, 1]), torch.tensor([0, -1]), pad=1)
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1, 0, 1:4, 1:], x[1, 0, 2:5, :4])  # row +1, column -1


def test_cli_offers_every_recipe_and_fast_long_is_the_shorter_fast_gpu():
    from grader.cli import train as train_cmd
    from grader.train.recipes import RECIPES

    (recipe_option,) = [p for p in train_cmd.params if p.name == "recipe"]
    assert list(recipe_option.type.choices) == list(RECIPES)
    long, gpu = get_recipe("fast-long"), get_recipe("fast-gpu")
    assert long.epochs == 7 and gpu.epochs == 8 and long.deterministic and not gpu.deterministic
    same = replace(long, name="fast-gpu", epochs=8, deterministic=False, eval_batch_size=gpu.eval_batch_size)
    assert same.to_dict() == gpu.to_dict()


def test_a_checkpoint_from_before_new_fields_keeps_its_own_recipe():
    """fast-long as session 2 wrote it (SGD, 16 epochs): the fields added since stay off."""
    old = {"name": "fast-long", "arch": "fast_net", "arch_args": {"widths": [64, 128, 256]}, "epochs": 16,
           "batch_size": 256, "lr": 0.2, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
           "label_smoothing": 0.2, "warmup_fraction": 0.2, "final_lr_fraction": 0.0, "flip": True,
           "translate": 2, "tta_flip": True, "input_scale": 1.0, "input_mean": [0.4914, 0.4822, 0.4465],
           "input_std": [0.247, 0.2435, 0.2616], "whiten_samples": 5000, "whiten_eps": 5e-4,
           "channels_last": True, "bf16": True, "eval_batch_size": 1000}
    recipe = recipe_from_dict(old)
    assert (recipe.optimizer, recipe.loss_sum, recipe.tta_translate, recipe.whiten_bias_epochs) == ("sgd", False, False, 0.0)
    assert (recipe.epochs, recipe.lr, recipe.arch_args) == (16, 0.2, {"widths": [64, 128, 256]})
    assert recipe.to_dict() == {**old, **{k: v for k, v in recipe.to_dict().items() if k not in old}}


def test_unknown_recipe_is_a_grader_error():
    with pytest.raises(GraderError, match="unknown recipe"):
        get_recipe("slow")


# --- the command --------------------------------------------------------------------------------


def cli(*args):
    args = list(args) if "--report" in args else [*args, "--no-report"]  # grading is tested once
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False)


def test_cli_trains_resumes_and_refuses_to_overwrite(tree, tmp_path):
    out = tmp_path / "bob"
    result = cli("--recipe", "homework", "--data", str(tree), "--partial", "--epochs", "2",
                 "--subset", "20", "--out", str(out), "--device", "cpu", "--time-budget", "0")
    assert result.exit_code == 0, result.output
    assert "time budget reached" in result.output
    assert "resume" in read_run(out)
    again = cli("--data", str(tree), "--partial", "--out", str(out))
    assert again.exit_code == 2 and "already holds a run" in again.output
    resumed = cli("--resume", str(out), "--data", str(tree), "--partial", "--device", "cpu")
    assert resumed.exit_code == 0, resumed.output
    ckpt = read_run(out)
    assert ckpt["history"]["epoch"] == [1, 2] and "resume" not in ckpt
    assert ckpt["recipe"]["name"] == "homework" and ckpt["dataset"]["train_subset"] == 20
    done = cli("--resume", str(out), "--data", str(tree), "--partial")
    assert done.exit_code == 2 and "complete" in done.output
    done = cli("--resume", str(out), "--data", str(tree), "--partial", "--epochs", "1")
    assert done.exit_code == 2 and "complete" in done.output  # not "pass --epochs above 2", which fails too


def test_a_damaged_checkpoint_is_refused_with_a_hint(tmp_path):
    import torch

    from grader.train.checkpoint import CHECKPOINT_NAME, FORMAT, FORMAT_VERSION

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


def test_cli_refuses_a_subset_too_large_and_an_out_under_a_file_before_training(tree, tmp_path, monkeypatch):
    import grader.train

    def never(*args, **kwargs):
        raise AssertionError("trained although the run could not be kept")

    monkeypatch.setattr(grader.train, "train", never)
    too_many = cli("--data", str(tree), "--partial", "--subset", "1000", "--out", str(tmp_path / "a"))
    assert too_many.exit_code == 2 and "more than the 40 training images" in too_many.output
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("")
    nowhere = cli("--data", str(tree), "--partial", "--subset", "20", "--out", str(tmp_path / "file" / "run"))
    assert nowhere.exit_code == 2 and "is a file" in nowhere.output and "hint:" in nowhere.output


def test_a_finished_run_is_graded_with_its_report(tree, tmp_path):
    out = tmp_path / "dora"
    result = cli("--recipe", "homework", "--data", str(tree), "--partial", "--epochs", "1",
                 "--subset", "20", "--out", str(out), "--device", "cpu", "--report")
    assert result.exit_code == 0, result.output
    graded = json.loads((out / "results.json").read_text())
    assert graded["status"] == "graded", graded["error"]
    assert graded["submission"]["format"] == "run-folder"
    assert graded["history"]["train_loss"] == read_run(out)["history"]["train_loss"]
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "dora" in (out / "report.html").read_text()


def test_cli_says_when_the_gpu_recipe_runs_on_a_cpu(tree, tmp_path):
    result = cli("--recipe", "fast-gpu", "--data", str(tree), "--partial", "--epochs", "1",
                 "--subset", "20", "--out", str(tmp_path / "g"), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "sized for a GPU" in result.output and read_run(tmp_path / "g")["recipe"]["optimizer"] == "muon"


def test_cli_resume_of_a_folder_without_checkpoint_exits_2(tmp_path):
    result = cli("--resume", str(tmp_path))
    assert result.exit_code == 2 and "checkpoint.pt" in result.output


def test_train_command_rejects_other_data_on_resume(tree, tmp_path):
    out = tmp_path / "carol"
    code = train_command(recipe="homework", out_dir=str(out), data_path=str(tree), partial=True, epochs=2,
                         subset=20, device="cpu", time_budget=0, quiet=True)
    assert code == 0
    other = make_image_tree(tmp_path / "other", {"train": 2, "test": 1}, seed=9)
    with pytest.raises(GraderError, match="other data"):
        train_command(resume=str(out), data_path=str(other), partial=True, quiet=True)


# --- the example submissions --------------------------------------------------------------------


def test_export_forms_rebuild_the_same_network(data, tmp_path):
    import importlib.util

    from grader.train.export import export_state_dict_folder, export_whole_module

    recipe = replace(TINY_FAST, arch_args=FastRecipe().arch_args, epochs=1)  # the submission's widths
    run_dir = write_run(tmp_path / "run", make_checkpoint(run(recipe, data), recipe, data, seed=0))
    model_py = Path(__file__).resolve().parents[1] / "submissions" / "s2400002" / "model.py"
    folder = export_state_dict_folder(run_dir, tmp_path / "sub", model_py=model_py, student="s1", name="A B")
    spec = importlib.util.spec_from_file_location("student_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    student_net = module.build_model()
    student_net.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))  # strict: same keys
    toml = tomllib.loads((folder / "submission.toml").read_text())
    assert toml["entry"] == "model.py:build_model" and toml["weights"] == "weights.pt" and toml["name"] == "A B"
    whole = torch.load(export_whole_module(run_dir, tmp_path / "s1.pth"), weights_only=False)
    x = torch.rand(3, 3, 32, 32)
    student_net.eval()
    assert torch.allclose(student_net(x), whole(x), atol=1e-5)


def test_submission_toml_quotes_what_it_is_given():
    from grader.train.checkpoint import submission_toml

    name = 'Li "Lei" \\ 李雷'
    text = submission_toml("s1", {"scale": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}, "w.pt",
                           name=name, entry="model.py:build_model")
    toml = tomllib.loads(text)
    assert toml["name"] == name and toml["entry"] == "model.py:build_model" and toml["weights"] == "w.pt"
    assert "name" not in tomllib.loads(submission_toml("s1", {"scale": 1.0, "mean": [0, 0, 0],
                                                                "std": [1, 1, 1]}))


@pytest.mark.parametrize("name", ["homework", "fast", "fast-long", "fast-gpu"])
def test_training_and_grading_see_the_same_pixels_bit_for_bit(name):
    import numpy as np

    from grader.runner.network import to_input
    from grader.train.checkpoint import submission_toml
    from grader.train.data import normalise
    from grader.train.recipes import RECIPES

    recipe = RECIPES[name]()
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    trained_on = normalise(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), recipe)
    written = tomllib.loads(submission_toml("s", recipe.input_spec()))
    graded_on = to_input(images, written["input"])  # what the run folder's submission.toml gives the child
    assert torch.equal(trained_on, graded_on)
