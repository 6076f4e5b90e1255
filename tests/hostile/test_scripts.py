"""Hostile child code, run through grader.sandbox.run: each test proves the attack failed on the
host (file absent, connection never accepted, processes gone), not only that the run errored."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from grader.sandbox import SandboxCaps, run

PY = sys.executable
SMALL = SandboxCaps(wall_seconds=20, cpu_seconds=20, memory_bytes=512 << 20, max_processes=32,
               file_size_bytes=8 << 20, output_bytes=1 << 20, tmpfs_bytes=16 << 20)


def attack(code: str, *, limits: SandboxCaps = SMALL, **kwargs):
    return run([PY, "-c", code], limits=limits, **kwargs)


def test_writes_outside_scratch_land_nowhere(tmp_path):
    shown, hidden = tmp_path / "shown", tmp_path / "hidden"
    shown.mkdir()
    host_tmp = Path("/tmp") / f"grader-hostile-{uuid.uuid4().hex}"
    targets = [shown / "x", hidden / "x", host_tmp, Path.cwd() / "pwned", Path(PY).parent / "pwned"]
    code = f"""
import os
for target in {[str(t) for t in targets]!r}:
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "w").write("pwned")
        print("wrote", target)
    except OSError as exc:
        print("refused", target, exc.strerror)
"""
    result = attack(code, readonly=[shown])
    assert result.ok, result.stderr
    for target in targets:
        assert not target.exists(), target
    # Read-only binds refuse the write; the hidden, /tmp and cwd writes (the cwd may itself lie
    # under /tmp, as a CI checkout can) land in the sandbox's own tmpfs, discarded on exit.
    for target in (shown / "x", Path(PY).parent / "pwned"):
        assert f"refused {target} Read-only file system".encode() in result.stdout


def test_scratch_is_capped():
    result = attack("open('/tmp/fill', 'wb').write(bytes(64 << 20))")
    assert not result.ok
    assert b"No space left" in result.stderr or "file size" in result.reason


def test_cannot_read_passwd_or_home():
    home = Path.home()
    secrets = [p for p in home.iterdir() if p.name not in (".pyenv",)][:20] + [Path("/etc/passwd"),
                                                                             Path("/etc/shadow")]
    code = f"""
import os
for path in {[str(p) for p in secrets]!r} + [os.path.expanduser("~")]:
    try:
        print("READ", path, open(path).read(200) if os.path.isfile(path) else os.listdir(path))
    except OSError as exc:
        print("refused", path, exc.strerror)
"""
    result = attack(code)
    assert result.ok, result.stderr
    lines = result.stdout.decode().splitlines()
    assert all(line.startswith("refused") for line in lines[:-1]), lines
    assert lines[-1] == "READ /tmp/home []"  # HOME is the empty scratch
    assert b"root:" not in result.stdout


def test_tcp_to_localhost_never_arrives():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = f"""
import socket
for family in (socket.AF_INET, socket.AF_INET6, socket.AF_PACKET, socket.AF_NETLINK):
    try:
        s = socket.socket(family, socket.SOCK_STREAM if family != socket.AF_NETLINK else socket.SOCK_RAW)
        print("created", family)
    except OSError as exc:
        print("refused", family, exc.strerror)
s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
print("CONNECTED")
"""
    try:
        result = attack(code)
        assert b"CONNECTED" not in result.stdout and b"created" not in result.stdout
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever knocked
        # The same attack unsandboxed does connect: the listener above can see one arrive.
        plain = attack(f"import socket; socket.create_connection(('127.0.0.1', {port}))",
                       sandbox=False)
        assert plain.ok
        listener.setblocking(True)
        listener.settimeout(5)
        listener.accept()[0].close()
    finally:
        listener.close()


def test_host_unix_socket_is_unreachable_even_when_visible(tmp_path):
    tmp_path.chmod(0o755)  # reachable by the sandbox's uid, so bound as is, socket included
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    server.setblocking(False)
    code = f"""
import socket
for path in ({str(path)!r}, "/run/docker.sock", "/var/run/dbus/system_bus_socket"):
    try:
        socket.socket(socket.AF_UNIX).connect(path)
        print("CONNECTED", path)
    except OSError as exc:
        print("refused", path, exc.strerror)
"""
    try:
        result = attack(code, readonly=[tmp_path])  # the socket's folder is even bound in
        assert result.ok, result.stderr
        assert b"CONNECTED" not in result.stdout
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def _processes_with(token: str, wait_seconds: float = 5.0) -> list[int]:
    """Host processes whose command line holds ``token``, once the kernel has reaped a killed
    namespace (its members die asynchronously after the namespace's init)."""
    deadline = time.monotonic() + wait_seconds
    while (found := _scan(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _scan(token: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_fork_bomb_is_capped_and_cleaned_up():
    token = f"forkbomb-{uuid.uuid4().hex}"
    code = f"""
import os, time
TOKEN = {token!r}
count = 0
for _ in range(10_000):
    try:
        if os.fork() == 0:
            time.sleep(3600)
        count += 1
    except OSError:
        break
print("forked", count, flush=True)
time.sleep(3600)
"""
    result = attack(code, limits=SandboxCaps(wall_seconds=4, max_processes=32))
    assert result.timed_out
    forked = int(result.stdout.split()[1])
    assert 0 < forked < 32
    assert _processes_with(token) == []  # the whole PID namespace went with bwrap
    assert subprocess.run(["true"]).returncode == 0  # the host can still fork


@pytest.mark.parametrize("spin", ["while True: pass", "import time; time.sleep(3600)"])
def test_endless_forward_is_killed_by_the_wall_clock(spin):
    token = f"spin-{uuid.uuid4().hex}"
    result = attack(f"TOKEN = {token!r}\n{spin}", limits=SandboxCaps(wall_seconds=2))
    assert result.timed_out and result.reason == "killed after 2 s wall clock"
    assert _processes_with(token) == []


def test_cpu_limit_stops_a_spinner_before_the_wall_clock():
    result = attack("while True: pass", limits=SandboxCaps(wall_seconds=60, cpu_seconds=1))
    assert not result.timed_out
    assert result.reason == "CPU time limit of 1 s exceeded"


@pytest.mark.parametrize("grab", [
    "x = []\nwhile True: x.append(bytearray(32 << 20))",
    "import numpy; numpy.ones(1 << 31)",
    # Shared anonymous memory escapes RLIMIT_DATA; the seccomp filter refuses it.
    "import mmap; mmap.mmap(-1, 1 << 32)",
    "import os; os.memfd_create('x')",
])
def test_memory_grab_is_refused(grab):
    result = attack(grab)
    assert not result.ok
    assert "memory limit of 512 MiB exceeded" == result.reason or b"PermissionError" in result.stderr


def test_stdout_flood_is_cut_at_the_cap():
    result = attack("import os\nwhile True: os.write(1, b'y' * 65536)")
    assert result.reason == "output over 1 MiB" and len(result.stdout) == 1 << 20


@pytest.mark.parametrize("status", [0, 3])
def test_os_exit_at_import_is_visible(status):
    result = attack(f"import os; os._exit({status})")
    assert result.returncode == status and result.stdout == b""
    assert (result.reason is None) == (status == 0)  # status 0 with no output: the runner refuses


@pytest.mark.slow  # a whole grade end to end; run with make test-all
def test_search_for_cifar_labels_finds_nothing(tmp_path, monkeypatch):
    # A labels file where a grader might keep one, named to be found.
    labels = tmp_path / "cifar10-test-labels.npy"
    labels.write_bytes(b"labels")
    monkeypatch.setenv("GRADER_DATA", str(tmp_path))
    code = r"""
import os, re
hits = []
skip = ("/proc", "/sys")
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
    for name in files + dirs:
        if re.search(r"cifar|test_batch|data_batch|labels", name, re.I) and not name.endswith((".py", ".pyc", ".pyi", ".h")):
            hits.append(os.path.join(root, name))
print("\n".join(hits))
print("GRADER_DATA" in os.environ)
"""
    result = attack(code, limits=SandboxCaps(wall_seconds=120))
    assert result.ok, result.stderr
    lines = result.stdout.decode().split()
    assert lines[-1] == "False"
    assert str(labels) not in lines
    assert not any("/work/shared" in line or line.endswith((".npy", ".tar.gz")) for line in lines), lines
