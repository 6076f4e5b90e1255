"""Bombs aimed at the grading process itself, which reads every hand-in before any sandbox runs:
pickles whose values would grow without bound if rendered, archives of pickles that cost a minute
to walk, and the fence that holds the whole inspection under caps on CPU, memory and wall clock.

Each bomb is inspected in a fresh process, measured from outside: its CPU time and wall time,
and the peak resident memory of it and its children (``os.wait4``'s usage, which includes the
fenced child). The budget is 2 s and 200 MB, interpreter start-up included; the wall clock is
held to 2 s of CPU time's worth only on a machine that is not shared (``WALL_S``), since on a
busy CI machine a process waits for a core as long as it runs on one.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.submission import inspect_submission
from grader.submission.fence import FenceLimits, run_fenced
from grader.submission.pickle_scan import scan_pickle
from grader.submission.precheck import check_file

CPU_S = 2.0
WALL_S = float(os.environ.get("GRADER_BOMB_WALL_S", "10"))  # 2 on an idle machine
PEAK_BYTES = 200 << 20
INSPECT = """
import sys
from grader.errors import GraderError
from grader.submission import inspect_submission
try:
    inspect_submission(sys.argv[1])
    print("ACCEPTED")
except GraderError as exc:
    print("REFUSED", exc.message)
"""


# A small launcher forks the inspecting process and reports its wall time and peak memory: measured
# from pytest directly, the peak would include pytest's own (Linux books the memory of the
# process that forks into a child's peak until the child execs).
LAUNCH = """
import json, os, sys, time
start = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[1], sys.argv[2]])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"wall": time.monotonic() - start, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak": usage.ru_maxrss * 1024, "status": status}))
"""


def inspected(path: Path, timeout: float = 120.0) -> tuple[dict, str]:
    """({"wall", "cpu"} seconds and "peak" resident bytes of the process and its children, what it
    printed) of ``inspect_submission(path)`` in a fresh interpreter (its start-up counts)."""
    done = subprocess.run([sys.executable, "-c", LAUNCH, INSPECT, str(path)], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[2])
    *output, measured = done.stdout.splitlines()
    facts = json.loads(measured)
    assert facts["status"] == 0, done.stdout + done.stderr
    return facts, "\n".join(output)


def shared_tuple_pickle(levels: int = 40) -> bytes:
    """A few hundred bytes: a persistent id that is a tuple of two references to the tuple below,
    ``levels`` deep, so 2**levels leaves once rendered (``str(pid)`` grew past 2 GB)."""
    data = bytearray(b"\x80\x02(K\x00tq\x00")  # MARK, 0, TUPLE, BINPUT 0
    for level in range(levels):
        data += b"(h" + bytes([level]) + b"h" + bytes([level]) + b"tq" + bytes([level + 1])  # (m[i], m[i]) -> m[i+1]
    return bytes(data + b"Q.")  # BINPERSID, STOP


def torch_zip(path: Path, data_pkl: bytes, extra: dict[str, int] = {}) -> Path:
    """A zip laid out as torch.save writes it, with ``data_pkl``, and extra entries of ``name ->
    bytes`` holding a pickle of that many NONE opcodes."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/version", "3\n")
        for name, size in extra.items():
            with archive.open(f"archive/{name}", "w", force_zip64=True) as out:
                out.write(b"\x80\x02")
                for _ in range(size >> 20):
                    out.write(b"N" * (1 << 20))
                out.write(b".")
    return path


def nones(count: int) -> bytes:
    return b"\x80\x02" + b"N" * count + b"."


def assert_cheap(facts: dict, output: str) -> None:
    print(f"cpu {facts['cpu']:.2f} s, wall {facts['wall']:.2f} s, peak {facts['peak'] / 2**20:.0f} MiB: {output[:80]}")
    assert facts["cpu"] < CPU_S and facts["wall"] < WALL_S and facts["peak"] < PEAK_BYTES, (facts, output)
    assert output.startswith("REFUSED"), output


# --- a persistent id of shared references ---------------------------------------------------------


def test_a_tuple_of_shared_references_is_kept_small_and_never_rendered():
    data = shared_tuple_pickle()
    assert len(data) < 400
    scan = scan_pickle(data)
    assert scan.error is None and len(scan.persistent_ids) == 1
    assert len(repr(scan.persistent_ids[0])) < 100  # "something" below the depth cap, not 2**40 leaves


def test_a_shared_reference_bomb_in_a_checkpoint_costs_nothing(tmp_path):
    facts, output = inspected(torch_zip(tmp_path / "bomb.pth", shared_tuple_pickle()))
    assert_cheap(facts, output)
    assert "archive/data.pkl: unexpected persistent id (a tuple of 2 items)" in output


def test_a_shared_reference_bomb_in_the_legacy_format_costs_nothing(tmp_path):
    legacy = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    path = tmp_path / "bomb.pth"
    path.write_bytes(legacy + shared_tuple_pickle() + pickle.dumps([], protocol=2))
    facts, output = inspected(path)
    assert_cheap(facts, output)
    assert "its pickle has an unexpected persistent id (a tuple of 2 items)" in output


# --- pickles that are long to walk ------------------------------------------------------------------


def test_extra_pickles_in_a_checkpoint_are_refused_unread(tmp_path):
    """128 MiB of extra .pkl entries, one-byte NONE opcodes: 73 s of walking before, none now."""
    path = torch_zip(tmp_path / "bomb.pth", pickle.dumps({}, protocol=2),
                     {f"extra{i}.pkl": 32 << 20 for i in range(4)})
    assert path.stat().st_size > 128 << 20
    facts, output = inspected(path)
    assert_cheap(facts, output)
    assert "it holds 4 pickle(s) that torch does not read ('archive/extra0.pkl', ...)" in output


def test_a_data_pickle_of_opcodes_stops_at_the_opcode_cap(tmp_path):
    path = torch_zip(tmp_path / "bomb.pth", nones((16 << 20) - 3))  # at the 16 MiB cap of one pickle
    facts, output = inspected(path)
    assert_cheap(facts, output)
    assert "it holds more than 300000 opcodes (the cap)" in output


def test_a_data_pickle_over_the_size_cap_is_refused_unread(tmp_path):
    path = torch_zip(tmp_path / "big.pth", nones(64 << 20))
    facts, output = inspected(path)
    assert_cheap(facts, output)
    assert "big.pth: its pickle is 67108867 bytes, too large to check" in output


def test_a_zip_of_many_entries_is_counted_before_zipfile_lists_them(tmp_path):
    path = tmp_path / "many.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        for i in range(60_000):
            archive.writestr(f"archive/data/{i}", b"")
    facts, output = inspected(path)
    assert_cheap(facts, output)
    assert "more than 10000 entries" in output


def test_the_precheck_message_names_a_huge_key_by_its_start(tmp_path):
    key = "k" * (1 << 20)
    data = b"\x80\x02(X\x07\x00\x00\x00storagecx\nFloatStorage\nX" + len(key).to_bytes(4, "little") \
        + key.encode() + b"X\x03\x00\x00\x00cpuK\x01tQ."
    problems = check_file(torch_zip(tmp_path / "w.pth", data)).problems
    assert problems and all(len(p) < 300 for p in problems), [len(p) for p in problems]


# --- the fence ----------------------------------------------------------------------------------------


def _spin() -> None:
    while True:
        pass


def _grab() -> bytes:
    return bytes(512 << 20)


def _sleep() -> None:
    time.sleep(30)


def _refuse() -> None:
    raise GraderError("model.pth: refused", "hand in something else")


def _bug() -> None:
    raise KeyError("a bug in the grader")


@pytest.mark.parametrize("task, limits, says", [
    (_spin, FenceLimits(cpu_seconds=1), "inspecting x took more than 1 s of CPU time and was stopped"),
    (_grab, FenceLimits(memory_bytes=128 << 20), "inspecting x needed more than 128 MiB of memory and was stopped"),
    (_sleep, FenceLimits(wall_seconds=1), "inspecting x took longer than 1 s and was stopped"),
])
def test_the_fence_stops_an_inspection_at_its_caps(task, limits, says):
    start = time.monotonic()
    with pytest.raises(GraderError) as error:
        run_fenced(task, what="inspecting x", allowed=frozenset(), limits=limits)
    assert error.value.message == says and error.value.hint
    assert time.monotonic() - start < 10


def test_the_fence_passes_values_and_the_tasks_own_errors_and_calls_a_bug_a_bug():
    assert run_fenced(lambda: {"a": [1, 2.5, "x"]}, what="x", allowed=frozenset()) == {"a": [1, 2.5, "x"]}
    with pytest.raises(GraderError) as error:
        run_fenced(_refuse, what="x", allowed=frozenset())
    assert (error.value.message, error.value.hint) == ("model.pth: refused", "hand in something else")
    with pytest.raises(RuntimeError, match="x failed in the grader: KeyError"):
        run_fenced(_bug, what="x", allowed=frozenset())
    with pytest.raises(RuntimeError, match="could not read back its own result"):
        run_fenced(lambda: Path("/"), what="x", allowed=frozenset())  # a class the caller did not allow


def _terminated() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # what a parser that trips a signal, or a stray kill, does


def _exits() -> None:
    os._exit(3)


@pytest.mark.parametrize("task, english, zh", [
    (_terminated, "inspecting alice.zip failed (killed by SIGTERM) before it could say why",
     "检查 alice.zip 失败了（被信号 SIGTERM 终止），没能说明原因"),
    (_exits, "inspecting alice.zip failed (exit status 3) before it could say why",
     "检查 alice.zip 失败了（退出状态为 3），没能说明原因"),
])
def test_an_inspection_that_dies_is_said_in_the_students_language(task, english, zh):
    from grader.messages import say
    from tests.test_report import english_words

    with pytest.raises(GraderError) as error:
        run_fenced(task, what=say("fence.inspecting", file="alice.zip"), allowed=frozenset())
    said = error.value.detail
    assert said == english and said.text("zh") == zh
    assert english_words(f"{said.text('zh')}\n{said.hint('zh')}", {"SIGTERM"}) == set()


def test_a_stopped_inspection_leaves_no_scratch_folder(tmp_path, monkeypatch):
    """The scratch folder is made before the fork and removed after, however the child ends."""
    from grader.submission import archive
    from tests.hostile.archives import zip_with

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(archive, "_make_readable", lambda folder: time.sleep(30))  # only in the child
    path = zip_with(tmp_path / "attack.zip", "hw2/notes.txt")
    with pytest.raises(GraderError, match="took longer than 1 s"):
        inspect_submission(path, fence=FenceLimits(wall_seconds=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attack.zip"]
