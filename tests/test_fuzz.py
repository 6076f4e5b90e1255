"""Property-based fuzzing of everything the grading process reads from a hand-in or a child.

On any input, the pickle scanner, the pre-check, the archive checks, the manifest, history and
plain-pickle readers and the reply decoder either return or raise the project's own error
(``GraderError``; the two lower-level readers their documented ``RefusedPickle`` and
``ProtocolError``, which their callers turn into one), within a time budget (the deadline) and a
memory budget (``MEMORY_BYTES`` traced per example), and run nothing: the seeds hold payloads
that would create ``MARKER`` if anything ever unpickled them.

Inputs are arbitrary bytes and mutations (bytes flipped, inserted, deleted, pickle opcodes
spliced in) of real files: torch.save archives and legacy files, pickled histories, zips and
tars of a hand-in, and child replies.

In CI the examples are few and drawn the same way every run (the ``ci`` profile). To search
longer, with fresh random draws:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import shutil
import struct
import sys
import tarfile
import tempfile
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from grader.errors import GraderError
from grader.runner.launch import REPLY_FIELDS, read_reply, reply_problem
from grader.sandbox.messages import message
from grader.runner.protocol import MAGIC, ProtocolError, decode, encode
from grader.submission.archive import archive_kind, unpack
from grader.submission.history import load_history, read_history
from grader.submission.manifest import MANIFEST_KEYS, read_manifest
from grader.submission.pickle_scan import scan_pickle
from grader.submission.plain_pickle import RefusedPickle, read_pickle_values
from grader.submission.precheck import check_file

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=60, derandomize=True, deadline=2000, database=None,
                          suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("long", max_examples=5000, deadline=2000, suppress_health_check=_QUIET,
                          print_blob=True)
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
MEMORY_BYTES = 64 << 20  # traced per example; every input here is under a megabyte

WORK = Path(tempfile.mkdtemp(prefix="grader-fuzz-"))
MARKER = WORK / "pwned"


def teardown_module() -> None:
    shutil.rmtree(WORK, ignore_errors=True)


@contextmanager
def bounded():
    """The example's traced memory stays under ``MEMORY_BYTES``, and nothing ran."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BYTES, f"{peak} bytes traced"
    assert not MARKER.exists(), "a payload ran"


def written(data: bytes, name: str) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


# --- seeds: real files, each with a payload that must never run -----------------------------------


class _Payload:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


def _torch_save(obj, **kwargs) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def _zip_pickles(archive: bytes) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return [z.read(n) for n in z.namelist() if n.endswith(".pkl")]


def _seeds() -> dict[str, list[bytes]]:
    import torch

    state = {"w": torch.zeros(3, 5), "b": torch.ones(7, dtype=torch.int64)}
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Linear(4, 10))
    scripted = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 3))), scripted)
    zips = [_torch_save(state), _torch_save(module), _torch_save({"w": torch.zeros(2), "evil": _Payload()}),
            scripted.getvalue()]
    legacy = [_torch_save(state, _use_new_zipfile_serialization=False),
              _torch_save({"evil": _Payload()}, _use_new_zipfile_serialization=False)]
    history = {"train_loss": [1.2, 0.8], "train_acc": torch.tensor([0.5, 0.7]), "test_acc": [0.4, 0.6]}
    histories = [_torch_save(history), pickle.dumps(history["train_loss"], protocol=2),
                 pickle.dumps({"loss": np.arange(3.0), "acc": np.float32(0.5)}, protocol=4),
                 json.dumps({"train_loss": [1.0, 0.5], "test_acc": ["55%", "61%"]}).encode(),
                 b"epoch;Train Loss;val_acc\n1;1,2;0,5\n2;0,8;0,6\n"]
    pickles = [p for z in zips for p in _zip_pickles(z)] + [pickle.dumps(_Payload(), protocol=p) for p in (0, 2, 5)]
    return {"zips": zips, "legacy": legacy, "histories": histories, "pickles": pickles,
            "archives": _hand_in_archives()}


def _hand_in_archives() -> list[bytes]:
    files = {"hw2/model.py": b"import torch\n", "hw2/weights.pth": bytes(64), "hw2/submission.toml": b'student = "a"\n'}
    out = []
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression) as z:
            for name, data in files.items():
                z.writestr(name, data)
        out.append(buffer.getvalue())
    for mode in ("w", "w:gz"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        out.append(buffer.getvalue())
    return out


SEEDS = _seeds()
OPCODES = [bytes([b]) for b in b"()tN]}ahqQRbc\x85\x86\x87\x93\x94\x8a\x8c0123esu"]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed with a few bytes flipped, inserted, deleted or replaced by pickle opcodes."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        how = draw(st.sampled_from(["flip", "insert", "delete", "opcodes", "repeat"]))
        if how == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif how == "opcodes":
            data[at:at] = b"".join(draw(st.lists(st.sampled_from(OPCODES), min_size=1, max_size=12)))
        else:  # a stretch copied many times: long runs and deep nesting
            chunk = bytes(data[at:at + draw(st.integers(1, 4))])
            data[at:at] = chunk * draw(st.integers(2, 300))
    return bytes(data)


def shifted(archive: bytes, by: int = 100) -> bytes:
    """``archive`` with its end record placing the central directory ``by`` bytes later: zipfile
    then places every entry ``by`` bytes earlier, the first ones before the file's start."""
    at = archive.rindex(b"PK\x05\x06")
    offset = int.from_bytes(archive[at + 16:at + 20], "little")
    return archive[:at + 16] + (offset + by).to_bytes(4, "little") + archive[at + 20:]


def rezipped(archive: bytes, pickle_bytes: bytes) -> bytes:
    """``archive`` with its data.pkl replaced: a well-formed zip around a hostile pickle."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = pickle_bytes if info.filename.endswith("data.pkl") else source.read(info)
            target.writestr(info.filename, data)
    return out.getvalue()


# --- the pickle scanner ----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=4096))
def test_the_scanner_reads_any_bytes(data):
    with bounded():
        scan = scan_pickle(data)
    assert scan.error is None or isinstance(scan.error, str)


@FUZZ
@given(mutated(SEEDS["pickles"]))
def test_the_scanner_reads_any_mutated_torch_pickle(data):
    with bounded():
        scan = scan_pickle(data)
        [str(pid)[:80] for pid in scan.persistent_ids]  # what is kept is small enough to render


# --- the pre-check and the archive checks ----------------------------------------------------------


@FUZZ
@given(st.one_of(mutated(SEEDS["zips"]), mutated(SEEDS["legacy"]),
                 st.builds(rezipped, st.sampled_from(SEEDS["zips"][:3]), mutated(SEEDS["pickles"])),
                 st.binary(max_size=2048).map(lambda b: b"PK\x03\x04" + b),
                 st.binary(max_size=2048).map(lambda b: b"\x80\x02" + b)))
@example(shifted(SEEDS["zips"][0]))  # found: zipfile seeks before the file's start (OSError)
def test_the_precheck_judges_any_mutated_checkpoint(data):
    with bounded():
        try:
            check_file(written(data, "weights.pth"))
        except GraderError:
            pass


@FUZZ
@given(st.one_of(mutated(SEEDS["archives"]), mutated(SEEDS["zips"][:1])))
@example(shifted(SEEDS["archives"][0]))  # found: the same OSError while unpacking
def test_archives_are_told_apart_and_unpacked_inside_their_folder(data):
    path = written(data, "hand-in.zip")
    into = Path(tempfile.mkdtemp(dir=WORK))
    before = sorted(WORK.iterdir())
    try:
        with bounded():
            try:
                kind = archive_kind(path)
                if kind is not None:
                    unpack(path, into, kind)
            except GraderError:
                pass
        for found in into.rglob("*"):
            assert not found.is_symlink() and into in found.resolve().parents
        assert sorted(WORK.iterdir()) == before  # nothing written beside the folder it was given
    finally:
        shutil.rmtree(into)


# --- the manifest, the history, plain pickles ------------------------------------------------------


def _toml_value(depth: int = 3):
    leaf = st.one_of(st.text(max_size=20).map(json.dumps), st.integers(-10**30, 10**30).map(str),
                     st.floats().map(lambda f: "nan" if math.isnan(f) else repr(f)),
                     st.sampled_from(["true", "false", "1979-05-27T07:32:00Z", "[", "{", "\"\\x00\""]))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["scale", "mean", "std", "channels", "x"]), inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}")), max_leaves=8)


TOML = st.lists(st.tuples(st.sampled_from(sorted(MANIFEST_KEYS) + ["extra", "[input]", "a.b"]), _toml_value()),
                max_size=6).map(lambda lines: "\n".join(f"{k} = {v}" if not k.startswith("[") else k
                                                          for k, v in lines).encode())


@FUZZ
@given(st.one_of(TOML, st.binary(max_size=1024), st.text(max_size=300).map(str.encode),
                 st.integers(1, 3000).map(lambda n: b"a = " + b"[" * n)))
def test_the_manifest_reader_refuses_or_reads_any_file(data):
    with bounded():
        try:
            manifest = read_manifest(written(data, "submission.toml"))
        except GraderError:
            return
    assert set(manifest) <= MANIFEST_KEYS


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(-10**400, 10**400),
                              st.text(max_size=10)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                    max_leaves=12)


@FUZZ
@given(st.one_of(mutated(SEEDS["histories"]), st.binary(max_size=1024),
                 JSON.map(lambda v: json.dumps(v).encode()),
                 st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)))
@example(b"[" * 1987 + b"]" * 1987)  # found: json's RecursionError
def test_a_history_is_read_or_refused_never_crashes(data):
    path = written(data, "history.pt")
    with bounded():
        try:
            read_history(path)
        except GraderError:
            pass
        found = load_history(path)
    assert (found.values is None) != (found.error is None)


@FUZZ
@given(st.one_of(mutated(SEEDS["pickles"] + SEEDS["histories"][1:3]), st.binary(max_size=2048)))
def test_plain_pickle_values_are_built_or_refused(data):
    with bounded():
        try:
            read_pickle_values(data)
        except RefusedPickle:
            pass


# --- the child's reply -----------------------------------------------------------------------------


def _frame(header: bytes, body: bytes = b"") -> bytes:
    return MAGIC + struct.pack("<I", len(header)) + header + body


REPLY = {"parameters": 10, "macs_per_image": 5, "latency_ms_per_image": 1.0, "layers": [], "form": "state-dict",
         "input": None, "notes": [], "timings": {}, "precision": {}, "device": "cpu"}
FRAMES = [encode(REPLY, np.zeros((4, 10), np.float32)), encode({"error": "x", "hint": "y"}),
          encode(REPLY, np.zeros((2, 3), np.float64))]


@FUZZ
@given(st.one_of(mutated(FRAMES), st.binary(max_size=512).map(lambda b: MAGIC + b),
                 st.builds(_frame, JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=256)),
                 st.integers(1, 100_000).map(lambda n: _frame(b"[" * n))))
@example(FRAMES[0].replace(b"{'descr'", b"z'descr'"))  # found: numpy's header parser raises tokenize's error
@example(_frame(b"[" * 100_000))  # json's RecursionError
def test_a_reply_is_decoded_or_refused(frame):
    with bounded():
        try:
            decode(frame)
        except ProtocolError:
            pass
        result = SimpleNamespace(timed_out=False, stdout=message(frame), stderr=b"the last line\n", reason=None)
        submission = SimpleNamespace(weights=Path("model.pth"), entry=None)
        try:
            read_reply(result, submission, frame)
        except GraderError:
            pass


@FUZZ
@given(st.dictionaries(st.sampled_from([k for k, _ in REPLY_FIELDS] + ["history", "other"]), JSON, max_size=12)
       .map(lambda d: {**REPLY, **d}))
def test_a_reply_header_is_judged_without_raising(header):
    with bounded():
        problem = reply_problem(header)
    assert problem is None or isinstance(problem, str)


def test_the_payload_in_the_seeds_is_a_real_one(tmp_path, monkeypatch):
    """Unpickling the seeds' payload creates the marker (here, on purpose, elsewhere)."""
    monkeypatch.setattr(sys.modules[__name__], "MARKER", tmp_path / "pwned")
    pickle.loads(pickle.dumps(_Payload()))
    assert (tmp_path / "pwned").exists()
