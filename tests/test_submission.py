"""Form detection, manifest and history parsing, cheap checks: nothing is unpickled here."""

from __future__ import annotations

import pytest
import torch

from grader.errors import GraderError
from grader.submission import inspect_submission, read_history, read_manifest
from grader.submission.pickle_scan import scan_pickle
from tests.fixtures.make_submissions import homework_net, write_form, write_hostile_pickle

FORMS = {
    "pickled-module": "pickled-module", "state-dict": "state-dict", "state-dict-nested": "state-dict",
    "safetensors": "safetensors", "torchscript": "torchscript", "exported": "exported", "onnx": "onnx",
}


@pytest.mark.parametrize("written, detected", FORMS.items())
def test_every_form_is_detected_without_being_told(tmp_path, written, detected):
    sub = inspect_submission(write_form(written, tmp_path / "s"))
    assert sub.form == detected
    assert len(sub.sha256) == 64
    assert (sub.entry is not None) == (detected in ("state-dict", "safetensors"))


def test_run_folder_is_detected_from_its_checkpoint(tmp_path):
    sub = inspect_submission(write_form("run-folder", tmp_path / "run", homework_net()))
    assert sub.form == "run-folder" and sub.weights.name == "checkpoint.pt"


def test_homework_style_pickle_of_the_reference_net_is_a_pickled_module(tmp_path):
    torch.save(homework_net(), tmp_path / "net.pth")
    assert inspect_submission(tmp_path / "net.pth").form == "pickled-module"


def test_hostile_pickle_is_refused_by_name_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_hostile_pickle(tmp_path / "evil.pth", marker)
    with pytest.raises(GraderError, match=r"posix\.system|os\.system"):
        inspect_submission(path)
    assert not marker.exists()


def test_own_class_pickle_without_its_code_shows_the_model_py_to_hand_in(tmp_path):
    import pickle

    data = pickle.dumps(None, protocol=2).replace(b"N.", b"c__main__\nNet\n.")
    assert "__main__.Net" in scan_pickle(data).globals
    import zipfile

    with zipfile.ZipFile(tmp_path / "own.pth", "w") as z:
        z.writestr("own/data.pkl", data)
    with pytest.raises(GraderError) as info:
        inspect_submission(tmp_path / "own.pth")
    assert "__main__.Net" in info.value.message and "class Net(nn.Module):" in info.value.hint


def test_truncated_checkpoint_is_reported(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    path = folder / "model.pth"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(GraderError, match="truncated or corrupt|corrupt"):
        inspect_submission(path)


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"hello, this is not a network", "unknown format"),
    (b"\x80\x02}q\x00.", "legacy pickle"),
])
def test_bad_files_say_what_is_wrong(tmp_path, content, match):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(GraderError, match=match):
        inspect_submission(path)


def test_weights_without_code_ask_for_model_py(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "model.py").unlink()
    with pytest.raises(GraderError) as info:
        inspect_submission(folder)
    assert "model.py is missing" in info.value.message and "build_model" in info.value.hint


def test_several_checkpoints_need_the_manifest(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    torch.save({}, folder / "other.pth")
    with pytest.raises(GraderError, match="several checkpoints"):
        inspect_submission(folder)
    (folder / "submission.toml").write_text('student = "SC1"\nweights = "weights.pth"\n')
    sub = inspect_submission(folder)
    assert sub.weights.name == "weights.pth" and sub.student["id"] == "SC1"


def test_manifest_keys_and_input(tmp_path):
    folder = write_form("state-dict", tmp_path / "s")
    (folder / "net.py").write_text((folder / "model.py").read_text().replace("build_model", "make"))
    (folder / "submission.toml").write_text(
        'student = "SC24219070"\nname = "Li Lei"\nentry = "net.py:make"\n'
        '[input]\nscale = 1.0\nmean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n')
    sub = inspect_submission(folder)
    assert sub.entry[0].name == "net.py" and sub.entry[1] == "make"
    assert sub.input == {"scale": 1.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert sub.student == {"id": "SC24219070", "name": "Li Lei"}


def test_manifest_with_a_bom_and_blank_ids(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "submission.toml").write_bytes('\ufeffstudent = "  "\nname = ""\n'.encode("utf-8"))  # Notepad
    assert inspect_submission(folder).student == {"id": "s", "name": "s"}  # the folder name, as batch uses


@pytest.mark.parametrize("text, match", [
    ("studnet = 'x'", "unknown key"),
    ("weights = 3", "must be a string"),
    ("[input]\nstd = [0, 1, 1]", "std must be three numbers"),
    ("[input]\nscale = -1", "scale must be a positive number"),
    ("weights = ", "not valid TOML"),
    ('weights = "../../etc/passwd"', "outside the submission folder"),
])
def test_bad_manifests_name_the_key(tmp_path, text, match):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "submission.toml").write_text(text)
    with pytest.raises(GraderError, match=match):
        inspect_submission(folder)
    if "[input]" not in text and "passwd" not in text:
        with pytest.raises(GraderError):
            read_manifest(folder / "submission.toml")


def test_a_table_where_a_string_belongs_is_named_by_its_type_in_both_languages(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "submission.toml").write_text('weights = ["model.pth"]\n')
    with pytest.raises(GraderError) as raised:
        read_manifest(folder / "submission.toml")
    said = raised.value.detail
    assert said.endswith("submission.toml: weights must be a string, got a list")  # the English, as it was
    assert said.text("zh").endswith("submission.toml：weights 必须是字符串，实际写的是 list 类型的值")


def test_history_json_and_csv_agree(tmp_path):
    (tmp_path / "h.json").write_text('[{"epoch": 1, "train_loss": 1.5, "train_acc": 0.4, "test_acc": 0.35},'
                                     ' {"epoch": 2, "train_loss": 0.9, "train_acc": 0.7, "test_acc": 0.6}]')
    (tmp_path / "h.csv").write_text("epoch,train_loss,train_acc,test_acc\n1,1.5,0.4,0.35\n2,0.9,0.7,0.6\n")
    assert read_history(tmp_path / "h.json") == read_history(tmp_path / "h.csv")
    assert read_history(tmp_path / "h.csv")["train_loss"] == [1.5, 0.9]


def test_history_in_a_folder_is_found(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "history.json").write_text('{"train_loss": [0.9, 0.4], "train_acc": [0.6, 0.9]}')
    assert inspect_submission(folder).history == {"train_loss": [0.9, 0.4], "train_acc": [0.6, 0.9]}


@pytest.mark.parametrize("text", ['{"train_loss": ["a"]}', '{"train_loss": [NaN]}', '{"lr": [0.1]}', "[1, 2]"])
def test_bad_history_is_reported(tmp_path, text):
    (tmp_path / "history.json").write_text(text)
    with pytest.raises(GraderError, match="history.json"):
        read_history(tmp_path / "history.json")


def test_history_csv_in_a_folder_is_found_without_a_manifest(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "history.csv").write_text("epoch,train_loss,train_acc,test_acc\n1,1.2,0.55,0.5\n2,0.45,0.8,0.72\n")
    sub = inspect_submission(folder)
    assert sub.manifest == {} and "history.csv" in sub.files
    assert sub.history == {"epoch": [1, 2], "train_loss": [1.2, 0.45], "train_acc": [0.55, 0.8],
                           "test_acc": [0.5, 0.72]}


@pytest.mark.parametrize("link", ["model.pth", "checkpoint.pt", "history.json"])
def test_a_link_out_of_the_folder_is_refused_not_followed(tmp_path, link):
    other = write_form("pickled-module", tmp_path / "another_student")
    (other / "history.json").write_text('{"train_loss": [1.0], "train_acc": [0.5], "test_acc": [0.5]}')
    mine = tmp_path / "mine"
    mine.mkdir()
    if link == "history.json":
        write_form("pickled-module", mine)
        (mine / link).symlink_to(other / "history.json")
    else:
        (mine / link).symlink_to(other / "model.pth")  # their network, handed in as mine
    with pytest.raises(GraderError, match=f"{link}' points outside the submission folder"):
        inspect_submission(mine)


def test_classes_accept_the_tutorials_names_in_any_case(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "submission.toml").write_text(
        'classes = ["Plane", "CAR", "bird", "cat", "deer", "dog", "frog", "horse", "ship", " truck "]\n')
    assert inspect_submission(folder).manifest["classes"] == ["airplane", "automobile", "bird", "cat", "deer",
                                                              "dog", "frog", "horse", "ship", "truck"]


@pytest.mark.parametrize("classes, words", [
    ('["plane", "car"]', "classes must list the 10 class names"),
    ('"plane, car, bird, cat, deer, dog, frog, horse, ship, truck"', "classes must list the 10 class names"),
    ('["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", 9]', "must list the 10 class names"),
    ('["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "lorry"]',
     "unknown class name(s) 'lorry'"),
    ('["plane", "airplane", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]',
     "names airplane more than once and lacks automobile"),
])
def test_bad_classes_are_an_error_with_a_hint(tmp_path, classes, words):
    folder = write_form("pickled-module", tmp_path / "s")
    (folder / "submission.toml").write_text(f"classes = {classes}\n")
    with pytest.raises(GraderError) as info:
        inspect_submission(folder)
    assert words in info.value.message and "submission.toml" in info.value.message
    assert "order of the network's outputs" in info.value.hint or "airplane (or plane)" in info.value.hint


# --- choosing the checkpoint --------------------------------------------------------------------

def two_checkpoints(folder):
    """A hand-in holding the network the homework names and an older one."""
    (folder / "models").mkdir(parents=True)
    (folder / "backup").mkdir()
    torch.save(homework_net(), folder / "models" / "HW2_CNN.pth")
    torch.save(homework_net(seed=1), folder / "backup" / "HW2_CNN_epoch5.pth")
    return folder


@pytest.mark.parametrize("pattern", ["models/HW2_CNN.pth", "hw2_cnn.pth", "models/*.pth", "*CNN.pth"])
def test_the_rubric_picks_among_several_checkpoints(tmp_path, pattern):
    from grader.submission.rules import IntakeRules

    folder = two_checkpoints(tmp_path / "s")
    sub = inspect_submission(folder, rules=IntakeRules(weights=pattern))
    assert sub.weights == (folder / "models" / "HW2_CNN.pth").resolve()


def test_the_manifest_wins_over_the_rubric(tmp_path):
    from grader.submission.rules import IntakeRules

    folder = two_checkpoints(tmp_path / "s")
    (folder / "submission.toml").write_text('weights = "backup/HW2_CNN_epoch5.pth"\n')
    sub = inspect_submission(folder, rules=IntakeRules(weights="models/HW2_CNN.pth"))
    assert sub.weights.name == "HW2_CNN_epoch5.pth"


@pytest.mark.parametrize("pattern, says", [
    (None, ""),
    ("*.pth", 'the rubric\'s weights = "*.pth" matches backup/HW2_CNN_epoch5.pth, models/HW2_CNN.pth'),
    ("final.pth", 'the rubric\'s weights = "final.pth" matches none of them'),
])
def test_an_undecided_choice_lists_the_candidates_and_the_line_that_decides(tmp_path, pattern, says):
    import re

    from grader.submission.rules import IntakeRules

    folder = two_checkpoints(tmp_path / "s")
    with pytest.raises(GraderError) as info:
        inspect_submission(folder, rules=IntakeRules(weights=pattern))
    assert "several checkpoints" in info.value.message and says in info.value.message
    assert "backup/HW2_CNN_epoch5.pth, models/HW2_CNN.pth" in info.value.message
    assert "[submission] weights" in info.value.hint
    line = re.search(r'weights = "[^".]+\.pth"', info.value.hint).group()  # the line, as given
    (folder / "submission.toml").write_text(line + "\n")
    assert inspect_submission(folder, rules=IntakeRules(weights=pattern)).weights.suffix == ".pth"


def test_history_files_and_archiver_litter_are_never_the_checkpoint(tmp_path):
    folder = write_form("pickled-module", tmp_path / "s")
    torch.save({"train_loss": [0.9, 0.4], "train_acc": [0.6, 0.8]}, folder / "history.pt")
    for junk in ("__MACOSX/._model.pth", "._model.pth", ".ipynb_checkpoints/model-checkpoint.pth"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / "Thumbs.db").write_bytes(b"\0" * 8)
    sub = inspect_submission(folder)
    assert sub.weights.name == "model.pth"
    assert "Thumbs.db" not in sub.files and not any("__MACOSX" in f or "._" in f for f in sub.files)


def test_a_folder_wrapping_a_folder_finds_model_py_beside_the_weights(tmp_path):
    inner = write_form("state-dict", tmp_path / "s" / "HW2")
    (tmp_path / "s" / "__MACOSX" / "HW2").mkdir(parents=True)
    (tmp_path / "s" / "__MACOSX" / "HW2" / "._weights.pth").write_bytes(b"\x00\x05\x16\x07")
    sub = inspect_submission(tmp_path / "s")
    assert sub.entry[0] == (inner / "model.py").resolve() and sub.student["id"] == "s"
