"""The one pickle scanner that the form detector and the pre-check share."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
import torch

from grader.submission.pickle_scan import allowed_global, read_plain_pickle, scan_pickle


def torch_save_pickle(obj) -> bytes:
    """The data.pkl that torch.save writes for ``obj``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("data.pkl")]
        return archive.read(name)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_global_is_named_in_every_protocol_without_running_it(protocol):
    scan = scan_pickle(pickle.dumps(os.system, protocol=protocol))
    assert scan.error is None
    assert scan.globals == [f"{os.system.__module__}.system"]


def test_python2_builtins_are_read_as_builtins():
    data = b"c__builtin__\neval\n."  # what protocol 2 writes for a builtin
    assert scan_pickle(data).globals == ["builtins.eval"]


def test_a_stack_global_whose_names_come_from_the_memo_is_still_named():
    # SHORT_BINUNICODE 'os' MEMOIZE, SHORT_BINUNICODE 'system' MEMOIZE, POP x2, BINGET 0, BINGET 1,
    # STACK_GLOBAL: the names reach STACK_GLOBAL only through the memo.
    data = (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94" b"00" b"h\x00h\x01\x93.")
    assert scan_pickle(data).globals == ["os.system"]


def test_a_class_called_by_protocol_0s_inst_is_named_too():
    data = b"(S'echo pwned'\nios\nsystem\n."  # INST: pickle.loads runs os.system('echo pwned')
    assert scan_pickle(data).globals == ["os.system"]


@pytest.mark.parametrize("data", [b"\x80\x02\x82\x01)R.",  # EXT1 1: a global from copyreg's registry
                                  b"\x80\x04N\x8c\x06system\x93.",  # STACK_GLOBAL of a name not a string
                                  ])
def test_a_global_whose_name_the_scan_cannot_know_is_never_allowed(data):
    (name,) = scan_pickle(data).globals
    assert not allowed_global(name)


def test_storages_are_named_with_their_type_key_and_count():
    scan = scan_pickle(torch_save_pickle({"w": torch.zeros(3, 5), "n": torch.zeros(7, dtype=torch.int64)}))
    storages = sorted(scan.persistent_ids, key=lambda pid: pid[4])
    assert [(pid[0], pid[1], pid[4]) for pid in storages] == [
        ("storage", "torch.LongStorage", 7), ("storage", "torch.FloatStorage", 15)]
    assert {"w", "n"} <= scan.strings


def test_garbage_is_an_error_not_an_exception():
    scan = scan_pickle(b"\x80\x04\x95garbage that is not a pickle")
    assert scan.error
    assert scan_pickle(pickle.dumps({"a": 1})[:-3]).error  # truncated


def test_pickles_one_after_another_are_scanned_from_a_stream():
    """torch's legacy format: several pickles back to back, then raw storage bytes."""
    stream = io.BytesIO(pickle.dumps(1001, protocol=2) + pickle.dumps(os.system, protocol=2) + b"raw bytes")
    assert read_plain_pickle(stream) == 1001
    assert scan_pickle(stream).globals == [f"{os.system.__module__}.system"]
    assert stream.read() == b"raw bytes"  # each scan stops just past its pickle's STOP


@pytest.mark.parametrize("value", [0x1950A86A20F9469CFC6C, 1001, "key", ["94020293843344", "7"], []])
def test_plain_values_are_read_back(value):
    assert read_plain_pickle(io.BytesIO(pickle.dumps(value, protocol=2))) == value


@pytest.mark.parametrize("data", [pickle.dumps({"a": 1}, protocol=2), pickle.dumps(os.system, protocol=2),
                                  pickle.dumps([1, [2]], protocol=2), pickle.dumps(7, protocol=2)[:-1],
                                  b"garbage"])
def test_anything_else_is_not_a_plain_value(data):
    assert read_plain_pickle(io.BytesIO(data)) is None


def test_the_allow_list():
    assert allowed_global("torch._utils._rebuild_tensor_v2")
    assert allowed_global("collections.OrderedDict")
    assert allowed_global("torch.nn.modules.conv.Conv2d")  # a homework-style torch.save(net)
    assert allowed_global("torch.FloatStorage")
    for name in ("os.system", "posix.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                 "__main__.Net", "torch.hub.load", "torch.load", "builtins.getattr"):
        assert not allowed_global(name), name
        assert not allowed_global(name, torchscript=True), name
    assert not allowed_global("__torch__.Net")
    assert allowed_global("__torch__.Net", torchscript=True)


def test_the_precheck_scans_only_the_pickle_torch_reads(tmp_path):
    """Only data.pkl is scanned and its scan kept (the form detector's); other .pkl entries,
    which torch never reads, refuse the file unread."""
    from grader.submission.precheck import check_file

    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(2)}, path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_STORED) as archive:
        prefix = archive.namelist()[0].split("/")[0]
        for i in range(3):
            archive.writestr(f"{prefix}/extra{i}.pkl", pickle.dumps([f"s{j}" for j in range(100)], protocol=2))
    check = check_file(path)
    assert check.problems == [f"it holds 3 pickle(s) that torch does not read ('{prefix}/extra0.pkl', ...); a "
                              "torch.save archive has one data.pkl, TorchScript adds constants.pkl"]
    assert list(check.pickles) == [f"{prefix}/data.pkl"]


def test_shipped_allow_lists_are_the_installed_torchs_own():
    from importlib import metadata

    from grader.submission import allowlists
    from grader.submission.pickle_scan import torch_stock_module_names, torch_weights_only_globals

    regenerate = "run .venv/bin/python scripts/allowlists.py and commit grader/submission/allowlists.py"
    assert allowlists.TORCH_VERSION == metadata.version("torch"), regenerate
    assert allowlists.STOCK_MODULES == torch_stock_module_names(), regenerate
    assert allowlists.WEIGHTS_ONLY_GLOBALS == torch_weights_only_globals(), regenerate


def test_another_torch_gets_its_lists_computed(monkeypatch):
    from grader.submission import allowlists, pickle_scan

    monkeypatch.setattr(allowlists, "TORCH_VERSION", "0.0.0")
    monkeypatch.setattr(allowlists, "STOCK_MODULES", frozenset())
    for cached in (pickle_scan.stock_module_names, pickle_scan.weights_only_globals, pickle_scan._shipped_lists):
        cached.cache_clear()
    try:
        assert "torch.nn.modules.conv.Conv2d" in pickle_scan.stock_module_names()
    finally:
        for cached in (pickle_scan.stock_module_names, pickle_scan.weights_only_globals, pickle_scan._shipped_lists):
            cached.cache_clear()


def test_the_pre_check_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "net.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()), path)
    code = ("import sys; from grader.submission import inspect_submission; "
            f"s = inspect_submission({str(path)!r}); print(s.form, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["pickled-module", "False"]


def test_a_pickle_over_the_opcode_cap_is_refused_in_words_a_student_reads_in_chinese(tmp_path):
    from grader.submission.pickle_scan import ScanLimits
    from grader.submission.precheck import PrecheckLimits, check_file, refusal
    from tests.hostile.payloads import write_archive
    from tests.test_report import english_words

    data = pickle.dumps(list(range(1000)), protocol=2)  # a thousand opcodes and more
    scan = scan_pickle(data, ScanLimits(opcodes=100))
    pos = scan.error.args["pos"]
    assert scan.error == f"it holds more than 100 opcodes (the cap) (at byte {pos})"
    assert scan.error.text("zh") == f"其中的操作码超过了上限 100 个（在第 {pos} 个字节处）"
    assert scan_pickle(b"\x80\x020.").error == "it pops more than its stack holds (at byte 2)"
    path = write_archive(tmp_path / "weights.pth", data)
    error = refusal(path.name, check_file(path, PrecheckLimits(pickle_opcodes=100)).problems)
    assert str(error).startswith("weights.pth was refused before loading: archive/data.pkl is not a well-formed "
                                 f"pickle (it holds more than 100 opcodes (the cap) (at byte {pos}))\n  hint: ")
    zh = f"{error.detail.text('zh')}\n{error.detail.hint('zh')}"
    assert zh.startswith("weights.pth 在加载前被拒绝：archive/data.pkl 不是格式正确的 pickle（其中的操作码超过了上限 100 个")
    assert english_words(zh, {"pickle", "torch", "zip", "safetensors", "path", "archive"}) == set()  # archive/: a name
