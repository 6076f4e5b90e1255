"""Similar networks between students: fingerprints read from checkpoint bytes, weight matching,
pair statistics, flagged pairs, the files a grade keeps, similarity.csv and the command."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from grader.similarity.behaviour import error_kappa, pair_statistics  # noqa: E402
from grader.similarity.fingerprint import compare_prints, fingerprint  # noqa: E402
from grader.similarity.kept import PRINT_NAME, Kept, read_kept, write_kept  # noqa: E402
from grader.similarity.matching import match_weights  # noqa: E402
from grader.similarity.rank import Member, find_pairs  # noqa: E402
from grader.similarity.tensors import Unreadable, read_tensors  # noqa: E402


def small_net(seed: int) -> torch.nn.Sequential:
    """A homework-shaped network, shrunk to 8x8 images: convolutions, a flatten, two linear layers."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),  # 4x4
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),  # 2x2
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def permute_units(net: torch.nn.Sequential, seed: int) -> torch.nn.Sequential:
    """``net`` with the hidden units of every layer but the last reordered (the function is unchanged)."""
    net = copy.deepcopy(net)
    g = torch.Generator().manual_seed(seed)
    conv1, conv2, bn, fc1, fc2 = net[0], net[3], net[4], net[8], net[10]
    with torch.no_grad():
        p = torch.randperm(8, generator=g)
        conv1.weight.copy_(conv1.weight[p]), conv1.bias.copy_(conv1.bias[p]), conv2.weight.copy_(conv2.weight[:, p])
        q = torch.randperm(16, generator=g)
        conv2.weight.copy_(conv2.weight[q]), conv2.bias.copy_(conv2.bias[q])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(bn, name)[q])
        fc1.weight.copy_(fc1.weight.reshape(32, 16, 4)[:, q].reshape(32, 64))
        r = torch.randperm(32, generator=g)
        fc1.weight.copy_(fc1.weight[r]), fc1.bias.copy_(fc1.bias[r]), fc2.weight.copy_(fc2.weight[:, r])
    return net


def trained(net: torch.nn.Sequential, steps: int = 30, seed: int = 0) -> torch.nn.Sequential:
    """``net`` after a few SGD steps on random images (BatchNorm statistics move too)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.rand(16, 3, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        with torch.no_grad():  # plain SGD, lr 0.05
            for p in net.parameters():
                p -= 0.05 * p.grad
    return net.eval()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: tiny steps on a shared machine are many times slower with more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base() -> torch.nn.Sequential:
    return trained(small_net(0))


def save_forms(net: torch.nn.Sequential, folder: Path) -> dict[str, Path]:
    """``net`` saved every way a student hands one in."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = net.state_dict()
    forms = {name: folder / f"{name}.pt" for name in ("state_dict", "prefixed", "renamed", "whole", "half",
                                                        "torchscript")}
    torch.save(state, forms["state_dict"])
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 5}, forms["prefixed"])
    torch.save({f"layer{i}_{k.rsplit('.', 1)[-1]}": v for i, (k, v) in enumerate(state.items())}, forms["renamed"])
    torch.save(net, forms["whole"])
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, forms["half"])
    torch.jit.save(torch.jit.script(net), forms["torchscript"])
    forms["safetensors"] = folder / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, forms["safetensors"])
    return forms


def test_tensors_are_read_from_the_bytes_as_torch_saved_them(base, tmp_path):
    path = save_forms(base, tmp_path)["state_dict"]
    floats = [v.numpy() for v in base.state_dict().values() if v.is_floating_point()]
    read = read_tensors(path)
    assert [t.shape for t in read] == [t.shape for t in floats]
    assert all(np.array_equal(a, b) for a, b in zip(read, floats))


def test_a_transposed_view_is_read_through_its_strides(tmp_path):
    matrix = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"w": matrix.t(), "tail": matrix[1:, 2:]}, tmp_path / "views.pt")
    read = read_tensors(tmp_path / "views.pt")
    assert np.array_equal(read[0], matrix.t().numpy()) and np.array_equal(read[1], matrix[1:, 2:].numpy())


def test_every_form_of_one_network_is_an_exact_copy(base, tmp_path):
    forms = save_forms(base, tmp_path)
    prints = {name: fingerprint(read_tensors(path)) for name, path in forms.items()}
    for name, found in prints.items():
        assert compare_prints(prints["state_dict"], found).kind() == "exact copy", name


def test_permuted_hidden_units_are_a_reordered_copy_that_matching_undoes(base, tmp_path):
    permuted = permute_units(base, seed=1)
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(base(x), permuted(x), atol=1e-5)  # the same function
    torch.save(permuted.state_dict(), tmp_path / "p.pt")
    a, b = [v.numpy() for v in base.state_dict().values() if v.is_floating_point()], read_tensors(tmp_path / "p.pt")
    assert compare_prints(fingerprint(a), fingerprint(b)).kind() == "reordered copy"
    matched = match_weights(a, b)
    assert matched.aligned > 0.999 and matched.as_saved < 0.9 and matched.reordered_units > 0


def test_a_fine_tuned_copy_keeps_its_weights_and_networks_trained_apart_do_not(base):
    tuned = trained(permute_units(base, seed=2), steps=20, seed=5)
    others = [trained(small_net(seed), seed=seed) for seed in (1, 2)]
    weights = lambda net: [v.numpy() for v in net.state_dict().values() if v.is_floating_point()]  # noqa: E731
    assert compare_prints(fingerprint(weights(base)), fingerprint(weights(tuned))).kind() is None
    assert match_weights(weights(base), weights(tuned)).aligned > 0.9
    for other in others:
        assert match_weights(weights(base), weights(other)).aligned < 0.6
        assert np.dot(fingerprint(weights(base)).sketch, fingerprint(weights(other)).sketch) < 0.3


def test_a_legacy_or_foreign_file_is_compared_by_behaviour_alone(base, tmp_path):
    torch.save(base.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(100))
    for name in ("legacy.pt", "model.onnx"):
        with pytest.raises(Unreadable):
            read_tensors(tmp_path / name)
        kept = Kept()
        kept.take_weights(tmp_path / name)
        assert kept.print is None and "behaviour alone" in kept.note


def test_pair_statistics_agree_with_a_pair_by_pair_count():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 500)
    predictions = np.where(rng.random((5, 500)) < 0.7, labels, rng.integers(0, 10, (5, 500)))
    stats = pair_statistics(predictions, labels)
    for i in range(5):
        for j in range(5):
            wrong = (predictions[i] != labels) & (predictions[j] != labels)
            assert stats.agreement[i, j] == pytest.approx(np.mean(predictions[i] == predictions[j]))
            assert stats.kappa[i, j] == pytest.approx(error_kappa(predictions[i] != labels, predictions[j] != labels))
            assert stats.both_wrong[i, j] == wrong.sum()
            assert stats.same_wrong[i, j] == pytest.approx(np.mean(predictions[i][wrong] == predictions[j][wrong]))


def class_of(nets: dict[str, torch.nn.Sequential], images: torch.Tensor, folder: Path):
    """Members, predictions and weights as a batch keeps them: each network saved with
    torch.save, its fingerprint and weights read back from the file."""
    members, rows, weights = [], [], []
    for name, net in nets.items():
        torch.save(net.state_dict(), folder / f"{name}.pt")
        kept = Kept()
        kept.take_weights(folder / f"{name}.pt")
        members.append(Member(name, "", name, kept.print))
        weights.append([t.astype(np.float32) for t in kept.tensors])
        with torch.no_grad():
            rows.append(net(images).argmax(1).numpy())
    return members, np.stack(rows), weights


def test_find_pairs_flags_copies_and_fine_tunes_and_no_network_trained_apart(base, tmp_path):
    images = torch.rand(300, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    nets = {"base": base, "apart1": trained(small_net(1), seed=1), "apart2": trained(small_net(2), seed=2),
            "apart3": trained(small_net(3), seed=3), "apart_longer": trained(small_net(4), steps=100, seed=4),
            "permuted": permute_units(base, seed=4),
            "tuned": trained(copy.deepcopy(base), steps=10, seed=6), "legacy": base}
    members, predictions, weights = class_of(nets, images, tmp_path)
    torch.save(base.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    kept = Kept()
    kept.take_weights(tmp_path / "legacy.pt")  # unreadable without loading: behaviour alone
    members[-1], weights[-1] = Member("legacy", "", "legacy", kept.print, kept.note), None
    labels = np.random.default_rng(0).integers(0, 10, 300)
    found = find_pairs(members, predictions, labels, weights=lambda i: weights[i])
    flagged = {frozenset((p.a.key, p.b.key)): p.kind for p in found.pairs}
    assert flagged[frozenset(("base", "permuted"))] == "reordered copy"
    assert flagged[frozenset(("base", "tuned"))] == "derived (weights)"
    assert flagged[frozenset(("base", "legacy"))] == "derived (behaviour)"
    assert not [pair for pair in flagged if any(name.startswith("apart") for name in pair)]


def test_kept_files_round_trip_and_similarity_csv_names_gradebook_ids(base, tmp_path):
    from grader.results import Student, new_result
    from grader.similarity.outputs import run_similarity

    labels = np.random.default_rng(1).integers(0, 10, 200)
    logits = np.random.default_rng(2).normal(size=(200, 10))
    forms = save_forms(base, tmp_path / "forms")
    for student, path in (("=alice", forms["prefixed"]), ("bob", forms["safetensors"]), ("carol", None)):
        kept = Kept()
        kept.take_weights(path or forms["state_dict"])
        if path is None:
            kept = Kept(note="its weights are read only by loading the network")
        kept.take_logits(logits)
        result = new_result(tmp_path, dataset={"fingerprint": "data1"}, sandbox=True).replace(
            student=Student(student, student))
        write_kept(tmp_path / "out" / student.strip("="), kept, result)
    held = read_kept(tmp_path / "out" / "bob")
    assert held.student == "bob" and held.logits.dtype == np.float16 and held.print is not None
    similar = run_similarity(tmp_path / "out", labels=labels, data="data1")
    rows = list(csv.DictReader(io.StringIO(similar.path.read_text(encoding="utf-8-sig"))))
    kinds = {(r["student_a"], r["student_b"]): r["kind"] for r in rows}
    assert kinds[("'=alice", "bob")] == "exact copy"  # a formula-looking id is neutralised
    assert set(kinds.values()) <= {"exact copy", "derived (behaviour)"}
    assert json.loads((tmp_path / "out" / ".similarity-cache.json").read_text())["pairs"]


def test_the_similarity_command_refuses_a_folder_without_evidence(tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    (tmp_path / "empty" / "alice").mkdir(parents=True)
    result = CliRunner().invoke(main, ["similarity", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert PRINT_NAME in result.output and "grader batch" in result.output


def test_the_class_report_shows_similar_pairs_in_both_languages(base):
    from grader.report.i18n import SIMILARITY_STRINGS
    from grader.report.render import environment
    from grader.similarity.words import report_section

    assert set(SIMILARITY_STRINGS["en"]) == set(SIMILARITY_STRINGS["zh"])
    weights = [v.numpy() for v in base.state_dict().values() if v.is_floating_point()]
    members = [Member("alice", "", "a", fingerprint(weights)), Member("bob", "ref-2025", "b", fingerprint(weights))]
    found = find_pairs(members, None, None)
    template = environment().get_template("similarity.html.j2")
    for lang, words in (("en", "exact copy"), ("zh", "完全相同的副本")):
        html = template.render(similarity=report_section(found, 1, lang))
        assert "alice" in html and words in html and SIMILARITY_STRINGS[lang]["sim_innocent"][:10] in html


@pytest.mark.slow
def test_a_batch_grades_then_names_a_prefixed_copy_in_the_csv_and_the_class_report(shared_copy, tmp_path):
    """The real path: two students hand in one network (a state_dict with its code, and the same
    weights saved again under ``module.`` keys), a third the homework network; the batch grades
    them, keeps logits and fingerprints, and names the pair."""
    import shutil

    from grader.batch.executors import LocalExecutor
    from grader.batch.run import run_batch
    from grader.batch.worker import GradeSettings

    examples = Path(__file__).resolve().parents[1] / "submissions"
    subs = tmp_path / "subs"
    for student in ("alice", "bob"):
        shutil.copytree(examples / "s2400002", subs / student)
        manifest = subs / student / "submission.toml"
        manifest.write_text(manifest.read_text().replace('"s2400002"', f'"{student}"'))
    state = torch.load(examples / "s2400002" / "weights.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, subs / "bob" / "weights.pt")
    shutil.copy(examples / "s2400001.pth", subs / "carol.pth")
    run_batch(subs, tmp_path / "out", settings=GradeSettings(data_path=str(shared_copy), pdf=False),
              executor=LocalExecutor(2))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "similarity.csv").read_text(encoding="utf-8-sig"))))
    assert [(r["student_a"], r["student_b"], r["kind"]) for r in rows] == [("alice", "bob", "exact copy")]
    assert read_kept(tmp_path / "out" / "carol").logits.shape == (10000, 10)
    report = (tmp_path / "out" / "class-report.html").read_text(encoding="utf-8")
    assert "Similar pairs" in report and "exact copy" in report


def test_a_damaged_checkpoint_gets_a_note_and_never_an_error(base, tmp_path):
    torch.save(base.state_dict(), tmp_path / "whole.pt")
    whole = (tmp_path / "whole.pt").read_bytes()
    header = json.dumps({"w": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 8]}}).encode()
    damaged = {"truncated.pt": whole[:len(whole) // 2], "noise.pt": bytes(range(256)) * 40,
               "huge.safetensors": len(header).to_bytes(8, "little") + header + bytes(8)}
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        kept = Kept()
        kept.take_weights(tmp_path / name)
        assert kept.print is None and kept.note and "behaviour alone" in kept.note, name


def test_a_class_with_nothing_kept_has_no_pairs():
    assert find_pairs([], None, None).pairs == []
    found = find_pairs([Member("alice", "", "a", None, "not read")], np.zeros((1, 5), dtype=int), np.zeros(5, dtype=int))
    assert found.pairs == [] and found.median is None


def test_a_network_pickled_whole_as_the_students_own_class_is_fingerprinted_unloaded():
    """s2400004 holds s2400001's weights in a ``__main__.Net`` pickled whole (as a student's script
    saves it): read with the student's class names the intake allowed, it is an exact copy."""
    from grader.submission import inspect_submission

    examples = Path(__file__).resolve().parents[1] / "submissions"
    with inspect_submission(examples / "s2400004") as hand_in:
        own = frozenset(binding.pickled for binding in hand_in.classes)
        assert own == {"__main__.Net"}
        with pytest.raises(Unreadable):  # without the names, the pre-check refuses the pickle
            read_tensors(hand_in.weights)
        whole = Kept()
        whole.take_weights(hand_in.weights, own=own)
    plain = Kept()
    plain.take_weights(examples / "s2400001.pth")
    assert whole.note is None and whole.print == plain.print
