"""Training histories in the shapes students write them, read without unpickling anything; a
history that cannot be read costs only the checks that need it."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from grader import pipeline
from grader.report import render_html
from grader.results import GradeResult
from grader.submission import inspect_submission
from grader.submission.history import load_history, looks_like_history, read_history
from tests.fixtures.make_submissions import small_net, tiny_data, write_form

LOSS = [2.1, 1.3, 0.42]
ACC = [0.31, 0.55, 0.81]


@pytest.fixture(scope="module")
def data():
    return tiny_data(40)


def write_csv(path, header, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("loss_key, acc_key, test_key", [
    ("loss", "acc", "val_acc"),
    ("loss", "accuracy", "val_accuracy"),                 # Keras's history.history
    ("train_loss", "train_accuracy", "test_accuracy"),
    ("Train Loss", "Train Acc", "Test Acc"),
    ("training_loss", "training_accuracy", "valid_acc"),
    ("trainLoss", "trainAcc", "valAcc"),
    ("train_losses", "train_accs", "test_accs"),          # the names of the lists in the script
])
def test_key_aliases_are_read_and_noted(tmp_path, loss_key, acc_key, test_key):
    with open(tmp_path / "history.json", "w") as f:
        json.dump({"Epoch": [1, 2, 3], loss_key: LOSS, acc_key: ACC, test_key: ACC}, f)
    read = load_history(tmp_path / "history.json")
    assert read.error is None
    assert read.values == {"epoch": [1, 2, 3], "train_loss": LOSS, "train_acc": ACC, "test_acc": ACC}
    if loss_key != "train_loss":
        assert any(f"{loss_key} as train_loss" in note for note in read.notes), read.notes


def test_a_list_of_per_epoch_dicts_with_aliases(tmp_path):
    rows = [{"epoch": i + 1, "loss": loss, "acc": acc, "val_acc": acc} for i, (loss, acc) in enumerate(zip(LOSS, ACC))]
    with open(tmp_path / "history.json", "w") as f:
        json.dump(rows, f)
    assert read_history(tmp_path / "history.json") == {"epoch": [1, 2, 3], "train_loss": LOSS, "train_acc": ACC,
                                                       "test_acc": ACC}


def test_an_excel_csv_with_a_bom_keeps_its_first_column(tmp_path):
    path = write_csv(tmp_path / "history.csv", ["Epoch", "Train Loss", "Train Acc", "Test Acc"],
                     [[i + 1, loss, acc, acc] for i, (loss, acc) in enumerate(zip(LOSS, ACC))], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_history(path) == {"epoch": [1, 2, 3], "train_loss": LOSS, "train_acc": ACC, "test_acc": ACC}


def test_a_title_case_csv_in_percent(tmp_path):
    path = write_csv(tmp_path / "history.csv", ["Epoch", "Loss", "Accuracy", "Val Accuracy"],
                     [[1, 2.1, 31.0, 30.5], [2, 1.3, 55.0, "54.25%"], [3, 0.42, 81.0, 79.5], ["", "", "", ""]])
    read = load_history(path)
    assert read.values["train_loss"] == LOSS  # a loss is never rescaled
    assert read.values["train_acc"] == pytest.approx(ACC)
    assert read.values["test_acc"] == pytest.approx([0.305, 0.5425, 0.795])
    percent = [n for n in read.notes if "percent" in n]
    assert len(percent) == 2 and "Accuracy is in percent (up to 81): divided by 100" in percent[0]


def test_a_european_excel_csv_with_semicolons_and_decimal_commas(tmp_path):
    (tmp_path / "history.csv").write_text("Epoch;Train Loss;Train Acc;Val Acc\n1;2,1;0,31;0,3\n2;1,3;0,55;0,5\n",
                                          encoding="utf-8-sig")
    assert read_history(tmp_path / "history.csv") == {"epoch": [1, 2], "train_loss": [2.1, 1.3],
                                                      "train_acc": [0.31, 0.55], "test_acc": [0.3, 0.5]}


def test_a_history_that_cannot_be_opened_is_a_failed_claim(tmp_path, monkeypatch):
    path = tmp_path / "history.csv"
    path.write_text("loss\n1.0\n")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(path), "read_bytes", denied)
    assert load_history(path).error == "history.csv cannot be read: Permission denied"


def test_a_loss_above_one_stays_and_an_accuracy_in_fractions_is_not_divided(tmp_path):
    with open(tmp_path / "history.json", "w") as f:
        json.dump({"loss": [5.0, 3.0], "acc": [0.5, 1.0]}, f)
    read = load_history(tmp_path / "history.json")
    assert read.values == {"train_loss": [5.0, 3.0], "train_acc": [0.5, 1.0]}
    assert not any("percent" in n for n in read.notes)


def test_history_pt_of_lists_and_tensors(tmp_path):
    losses = [torch.tensor(v, requires_grad=True) * 1 for v in LOSS]  # appended without .item()
    torch.save({"loss": losses, "acc": torch.tensor([31.0, 55.0, 81.0]), "val_acc": ACC, "lr": 0.1},
               tmp_path / "history.pt")
    read = load_history(tmp_path / "history.pt")
    assert read.error is None
    assert read.values == {"train_loss": LOSS, "train_acc": pytest.approx(ACC), "test_acc": ACC}
    assert any("acc is in percent" in n for n in read.notes)


class _System:
    """Pickles as os.system(command), as a hostile log would."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_a_hostile_history_pt_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"loss": [1.0, _System(f"touch {marker}")]}, tmp_path / "history.pt")
    read = load_history(tmp_path / "history.pt")
    assert read.values is None and "system" in read.error and "nothing in it was run" in read.error
    assert not marker.exists()


@pytest.mark.parametrize("write, english, zh", [
    (lambda path, marker: torch.save({"loss": [1.0, _System(f"touch {marker}")]}, path),
     f"history.pt cannot be read: it names {os.system.__module__}.system, which a file of plain values has no use for "
     "(it is how a pickle runs code); nothing in it was run",
     f"无法读取 history.pt：它引用了 {os.system.__module__}.system，只含普通值的文件用不到它（pickle 正是借此运行代码）；"
     "其中的内容都没有运行"),
    (lambda path, marker: torch.save({"loss": LOSS}, path, _use_new_zipfile_serialization=False),
     "history.pt cannot be read: it is in torch's legacy format (saved with _use_new_zipfile_serialization=False)",
     "无法读取 history.pt：它是 torch 的旧格式（用 _use_new_zipfile_serialization=False 保存的）"),
])
def test_a_refused_history_pt_is_said_in_chinese_and_its_english_is_kept(tmp_path, write, english, zh):
    from tests.test_report import english_words

    write(tmp_path / "history.pt", tmp_path / "ran")
    error = load_history(tmp_path / "history.pt").error
    assert error.startswith(f"{english}; save the history as lists of numbers")  # the English, as it was
    assert error.text("zh").startswith(f"{zh}；请把训练历史保存为数字列表")
    assert english_words(error.text("zh"), {"torch", "pickle", "json", "False"}) == set()  # False: code
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("payload, words", [
    (b"\x80\x02K\x01\x86.", "not a well-formed pickle"),           # TUPLE2 on a stack of one
    (b"\x80\x02X\x04\x00\x00\x00lossJ\x01\x00\x00\x00s.", "not a well-formed pickle"),  # SETITEM, no dict
    (b"\x80\x02}X\x04\x00\x00\x00loss]\x8b\x00\x04\x00\x00" + b"\x7f" * 1024 + b"as.",
     "loss holds NaN or infinity"),                                  # an int no float holds
])
def test_a_malformed_pickle_history_is_a_failed_claim(tmp_path, payload, words):
    (tmp_path / "history.pkl").write_bytes(payload)
    assert words in load_history(tmp_path / "history.pkl").error


def test_a_legacy_or_pickled_module_history_is_refused(tmp_path):
    torch.save({"loss": LOSS}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({"loss": torch.nn.Linear(1, 1)}, tmp_path / "module.pt")
    assert "legacy format" in load_history(tmp_path / "legacy.pt").error
    assert "torch.nn.modules.linear.Linear" in load_history(tmp_path / "module.pt").error


@pytest.mark.parametrize("content, words", [
    ({"step": [1, 2], "lr": [0.1, 0.01]}, "holds keys step, lr: none is train_loss/train_acc/test_acc"),
    ({"epoch": [1, 2]}, "holds keys epoch: none is"),
    ({"loss": ["a", "b"]}, "loss holds 'a', which is not a number"),
    ([1, 2], "one object per epoch"),
])
def test_an_unreadable_history_says_what_it_found(tmp_path, content, words):
    with open(tmp_path / "history.json", "w") as f:
        json.dump(content, f)
    read = load_history(tmp_path / "history.json")
    assert read.values is None and words in read.error and read.error.startswith("history.json")


def test_the_canonical_key_wins_over_an_alias(tmp_path):
    with open(tmp_path / "history.json", "w") as f:
        json.dump({"val_acc": [0.1, 0.2], "train_loss": LOSS[:2], "test_acc": [0.5, 0.6]}, f)
    read = load_history(tmp_path / "history.json")
    assert read.values["test_acc"] == [0.5, 0.6]
    assert "history.json: ignored val_acc, read test_acc as test_acc" in read.notes


@pytest.mark.parametrize("name, is_log", [
    ("history.pt", True), ("train_history.pth", True), ("log.pt", True), ("logs_epoch10.pt", True),
    ("metrics.pt", True), ("models/History.PTH", True), ("model.pth", False), ("logistic.pt", False),
    ("HW2_CNN.pth", False),
])
def test_history_names_are_never_checkpoints(name, is_log):
    assert looks_like_history(name) is is_log


def test_a_folder_with_history_pt_finds_its_checkpoint(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    torch.save({"loss": LOSS, "acc": ACC}, folder / "history.pt")
    sub = inspect_submission(folder)
    assert sub.weights.name == "model.pth" and sub.history == {"train_loss": LOSS, "train_acc": ACC}


def test_a_history_named_in_the_manifest_but_missing_is_a_failed_claim(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "submission.toml").write_text('history = "logs/history.json"\n')
    sub = inspect_submission(folder)
    assert sub.history is None and "logs/history.json is missing" in sub.history_file.error


# --- graded end to end ---------------------------------------------------------------------


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_history_pt_is_graded_and_the_report_notes_the_aliases(tmp_path, data):
    folder = write_form("pickled-module", tmp_path / "s", small_net(seed=1))
    torch.save({"loss": [1.2, 0.4], "acc": [55.0, 85.0], "test_acc": [50.0, 80.0]}, folder / "history.pt")
    result = pipeline.grade_one(folder, data=data, sandbox=False)
    assert result.graded and result.history == {"train_loss": [1.2, 0.4], "train_acc": [0.55, 0.85],
                                                "test_acc": [0.5, 0.8]}
    checks = {c.metric: c for c in result.verdict.checks}
    assert checks["history.train_loss"].passed and checks["history.train_acc"].passed
    notes = result.submission.notes
    assert any("loss as train_loss" in n for n in notes) and any("percent" in n for n in notes)
    again = GradeResult.from_json(result.to_json()).submission.notes
    assert again == notes and [n.key for n in again] == [n.key for n in notes]  # said again from the catalogue
    html = render_html(result, lang="zh")
    assert "提交内容的读取说明" in html and "history.pt：把 loss 读作 train_loss" in html
    assert "read loss as train_loss" not in html and "read loss as train_loss" in render_html(result)


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_an_unreadable_history_still_grades_the_network(tmp_path, data):
    folder = write_form("pickled-module", tmp_path / "s", small_net(seed=1))
    with open(folder / "history.json", "w") as f:
        json.dump({"step": [1, 2], "lr": [0.1, 0.01]}, f)
    result = pipeline.grade_one(folder, data=data, sandbox=False)
    plain = pipeline.grade_one(write_form("pickled-module", tmp_path / "plain", small_net(seed=1)), data=data,
                               sandbox=False)
    assert result.graded and result.evaluation.accuracy == plain.evaluation.accuracy
    assert result.history is None and "holds keys step, lr" in result.submission.history_error
    checks = {c.metric: c for c in result.verdict.checks}
    assert checks["accuracy"].value == result.evaluation.accuracy
    for metric in ("history.train_loss", "history.train_acc"):
        assert not checks[metric].passed
        assert checks[metric].detail.startswith("the history handed in was not read: history.json holds keys step")
    assert "no training history" in {c.metric: c for c in plain.verdict.checks}["history.train_loss"].detail
    assert GradeResult.from_json(result.to_json()).submission.history_error == result.submission.history_error


def test_a_hostile_history_pt_never_runs_and_the_network_is_graded(tmp_path, data):
    marker = tmp_path / "ran"
    folder = write_form("pickled-module", tmp_path / "s", small_net(seed=1))
    torch.save({"loss": _System(f"touch {marker}"), "acc": [0.5]}, folder / "history.pt")
    result = pipeline.grade_one(folder, data=data, sandbox=False)
    assert result.graded and result.evaluation is not None and result.history is None
    assert "posix.system" in result.submission.history_error or "os.system" in result.submission.history_error
    assert not marker.exists()
