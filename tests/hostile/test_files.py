"""Hostile weight files: refused by the pre-check, and refused again by weights_only in the child."""

from __future__ import annotations

import re
import sys

import pytest

from grader.errors import GraderError
from grader.sandbox import SandboxCaps, run
from grader.submission.precheck import inspect_file, precheck_file
from tests.hostile import payloads

# One child loads every file (one torch import, not one per file) and prints an outcome per file.
LOAD = """
import sys, torch
for path in sys.argv[1:]:
    try:
        obj = torch.load(path, weights_only=True)
        [v.to_dense() for v in obj.values() if getattr(v, "is_sparse", False)]
        print(path, "LOADED", flush=True)
    except BaseException as exc:
        first = (str(exc).splitlines() or [""])[0]
        print(path, "REFUSED", type(exc).__name__, first[:200], flush=True)
"""
LIMITS = SandboxCaps(wall_seconds=120, cpu_seconds=120, memory_bytes=1 << 30)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every hostile file, plus one honest checkpoint, and a marker no payload may create."""
    import torch

    from grader.models import ARCHITECTURES, build

    folder = tmp_path_factory.mktemp("corpus")
    marker = folder / "pwned"
    paths = payloads.write_pickle_payloads(folder, marker)
    paths["huge"] = payloads.huge_allowed_object(folder / "huge.pt")
    paths["tera"] = payloads.terabyte_tensor(folder / "tera.pt")
    paths["tera-legacy"] = payloads.legacy_terabyte_tensor(folder / "tera-legacy.pt")
    paths["sparse"] = payloads.sparse_invalid_indices(folder / "sparse.pt")
    name = next(iter(ARCHITECTURES))
    paths["honest"] = folder / "checkpoint.pt"
    torch.save({"format": "grader-checkpoint", "state_dict": build(name).state_dict(),
                "arch": {"name": name, "args": {}}, "history": {"test_acc": [0.5]}},
               paths["honest"])
    return paths, marker


@pytest.fixture(scope="module")
def loaded(corpus):
    """torch.load(weights_only=True) of each file in one sandboxed child, pre-check skipped."""
    paths, _ = corpus
    folder = next(iter(paths.values())).parent
    result = run([sys.executable, "-c", LOAD, *map(str, paths.values())], readonly=[folder],
                 limits=LIMITS)
    assert result.returncode == 0, result.stderr
    by_path = dict(line.split(" ", 1) for line in result.stdout.decode().splitlines())
    return {name: by_path.get(str(path), "") for name, path in paths.items()}, result


@pytest.mark.parametrize("name", ["os_system", "exec", "subprocess", "eval"])
@pytest.mark.parametrize("form", ["zip", "legacy"])
def test_code_payloads_are_refused_twice(corpus, loaded, name, form):
    paths, marker = corpus
    path = paths[f"{name}-{form}"]
    with pytest.raises(GraderError) as err:
        precheck_file(path)
    assert str(path) in err.value.message
    assert "which a weights file has no use for" in err.value.message  # each pickle is scanned
    outcomes, result = loaded
    assert outcomes[f"{name}-{form}"].startswith("REFUSED UnpicklingError Weights only load failed")
    assert payloads.PWNED.encode() not in result.stdout
    assert not marker.exists()


def test_plain_pickle_is_refused(tmp_path):
    assert "bare pickle" in inspect_file(payloads.legacy_plain_pickle(tmp_path / "w.pkl"))[0]


def test_huge_allowed_object_is_refused(loaded):
    outcome = loaded[0]["huge"]
    # weights_only refuses bytearray; were it allowed, the memory limit would refuse 1 TiB.
    assert outcome.startswith("REFUSED") and ("Weights only" in outcome or "MemoryError" in outcome)


def test_zip_bomb_is_refused_without_inflating(tmp_path):
    path = payloads.zip_bomb(tmp_path / "bomb.pt")
    problems = inspect_file(path)
    assert any("archive/data/0 is compressed" in p and "67108864 bytes" in p for p in problems)


def test_terabyte_storage_is_refused(corpus, loaded):
    assert inspect_file(corpus[0]["tera"]) == [
        "archive/data.pkl: storage 0 claims 1 TiB but its entry holds 16 B"]
    assert loaded[0]["tera"].startswith("REFUSED")


def test_legacy_terabyte_storage_is_refused(corpus, loaded):
    assert inspect_file(corpus[0]["tera-legacy"]) == ["its tensors claim 1 TiB, over the 2 GiB cap"]
    assert loaded[0]["tera-legacy"].startswith("REFUSED")


def test_sparse_tensor_with_invalid_indices_is_refused(loaded):
    assert loaded[0]["sparse"].startswith("REFUSED")


def test_honest_checkpoint_passes_both(corpus, loaded):
    precheck_file(corpus[0]["honest"])
    assert loaded[0]["honest"] == "LOADED"


def test_form_detection_refuses_a_zip_bomb_before_reading_a_member(tmp_path, monkeypatch):
    """inspect_submission names the form first; it must not inflate (testzip, read) a bomb."""
    import zipfile

    from grader.submission import inspect_submission

    path = payloads.zip_bomb(tmp_path / "bomb.pt")

    def never(*args, **kwargs):
        raise AssertionError("a member of the bomb was read")

    monkeypatch.setattr(zipfile.ZipFile, "testzip", never)
    monkeypatch.setattr(zipfile.ZipFile, "read", never)
    with pytest.raises(GraderError, match="compressed"):
        inspect_submission(path)


@pytest.mark.parametrize("write, english, zh", [
    (lambda path: payloads.zip_bomb(path, 2 << 20), "archive/data/0 is compressed",
     "其中的 archive/data/0 是压缩过的（"),
    (payloads.terabyte_tensor, "archive/data.pkl: storage 0 claims 1 TiB but its entry holds 16 B",
     "archive/data.pkl：存储 0 声称有 1 TiB，但它的条目只有 16 B"),
    (payloads.legacy_terabyte_tensor, "its tensors claim 1 TiB, over the 2 GiB cap", "其中的张量声称有 1 TiB，超过了 2 GiB 的上限"),
])
def test_a_refused_file_is_said_in_chinese_and_its_english_is_kept(tmp_path, write, english, zh):
    from tests.test_report import english_words

    path = write(tmp_path / "bomb.pt")
    with pytest.raises(GraderError) as raised:
        precheck_file(path)
    said = raised.value.detail
    assert said.startswith(f"{path} was refused before loading: ") and english in said
    assert "bomb.pt 在加载前被拒绝：" in said.mapped(lambda text: text.replace(str(tmp_path) + "/", "")).text("zh")
    assert zh in said.text("zh")
    text = re.sub(r"[A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)+", " ", f"{said.text('zh')}\n{said.hint('zh')}")  # names
    assert english_words(text, {"zip", "torch", "pickle", "safetensors", "path", "TiB", "GiB"}) == set()
