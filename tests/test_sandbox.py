"""grader.sandbox.run: isolation, limits and reasons, sandboxed and not."""

from __future__ import annotations

import errno
import json
import os
import platform
import subprocess
import sys
import time

import pytest

from grader.errors import GraderError
from grader.sandbox import RunResult, SandboxCaps, cgroup, check_available, memory, run, seccomp
from grader.sandbox import bwrap as bwrap_module

PY = sys.executable
QUICK = SandboxCaps(wall_seconds=30, cpu_seconds=30, memory_bytes=1 << 30)


def py(code: str, **kwargs) -> RunResult:
    """Run a ``python -c`` child under the sandbox with small limits."""
    kwargs.setdefault("limits", QUICK)
    return run([PY, "-c", code], **kwargs)


@pytest.mark.parametrize("sandbox", [True, False])
def test_stdin_in_stdout_out(sandbox):
    result = py("import sys; sys.stdout.write(sys.stdin.read().upper())", stdin=b"abc" * 100_000,
                sandbox=sandbox)
    assert result.ok, result
    assert result.stdout == b"ABC" * 100_000
    assert result.sandboxed is sandbox


def test_child_runs_as_nobody_in_scratch_without_capabilities():
    result = py("import os; print(os.getuid(), os.getgid(), os.getcwd(), os.environ['HOME']);"
                "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    assert result.stdout.split() == [b"65534", b"65534", b"/tmp/home", b"/tmp/home", b"0000000000000000"]


def test_environment_is_not_inherited(monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2")
    result = py("import os; print(sorted(os.environ))")
    assert b"GRADER_SECRET_TOKEN" not in result.stdout


def test_child_imports_torch_and_grader():
    result = py("import torch, grader.models; print(torch.ones(2, 2).sum().item())")
    assert result.ok, result.stderr
    assert result.stdout.strip() == b"4.0"


def test_readonly_paths_are_visible_and_read_only(tmp_path):
    (tmp_path / "model.py").write_text("WEIGHTS = 3\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import model; print(model.WEIGHTS);"
            f"open({str(tmp_path / 'x')!r}, 'w')")
    result = py(code, readonly=[tmp_path])
    assert result.stdout.strip() == b"3"
    assert b"Read-only file system" in result.stderr
    assert not (tmp_path / "x").exists()


def test_missing_readonly_path_is_a_grader_error(tmp_path):
    with pytest.raises(GraderError, match="does not exist"):
        py("pass", readonly=[tmp_path / "absent"])


def test_sockets_refused_by_seccomp_socketpair_allowed():
    result = py("import socket; a, b = socket.socketpair(); a.send(b'ok'); print(b.recv(2));"
                "socket.socket(socket.AF_INET, socket.SOCK_STREAM)")
    assert result.stdout.strip() == b"b'ok'"
    assert b"PermissionError" in result.stderr


@pytest.mark.parametrize("sandbox", [True, False])
def test_wall_clock_kills_and_says_so(sandbox):
    result = py("import time; print('started', flush=True); time.sleep(60)",
                limits=SandboxCaps(wall_seconds=4), sandbox=sandbox)  # room to start on a loaded CI machine
    assert result.timed_out and result.returncode is None
    assert result.reason == "killed after 4 s wall clock"
    assert result.stdout == b"started\n"


@pytest.mark.parametrize("sandbox", [True, False])
def test_output_cap(sandbox):
    result = py("import sys\nwhile True: sys.stdout.write('x' * 65536)",
                limits=SandboxCaps(output_bytes=1 << 20), sandbox=sandbox)
    assert result.reason == "output over 1 MiB"
    assert len(result.stdout) == 1 << 20


def test_stderr_keeps_its_tail():
    result = py("import sys\nfor i in range(100000): print(i, file=sys.stderr)\nsys.exit(3)",
                limits=SandboxCaps(stderr_tail_bytes=100))
    assert result.returncode == 3
    assert len(result.stderr) == 100 and result.stderr.endswith(b"99999\n")
    assert result.reason == "exited with status 3: 99999"


@pytest.mark.parametrize("sandbox", [True, False])
def test_signal_death_is_negative(sandbox):
    result = py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", sandbox=sandbox)
    assert result.returncode == -11
    assert result.reason == "killed by signal SIGSEGV"


def test_limits_reject_nonsense():
    with pytest.raises(ValueError, match="wall_seconds"):
        SandboxCaps(wall_seconds=0)


def test_check_available_names_the_fix(monkeypatch):
    check_available()  # installed here and on CI
    monkeypatch.setattr(bwrap_module.shutil, "which", lambda name: None)
    with pytest.raises(GraderError) as err:
        check_available()
    assert "bwrap" in err.value.message and "apt-get install bubblewrap" in err.value.hint
    with pytest.raises(GraderError):
        run([PY, "-c", "pass"])


def test_broad_readonly_path_is_refused():
    with pytest.raises(GraderError, match="too broad"):
        py("pass", readonly=["/tmp"])


def test_single_file_can_be_shown(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"w")
    (tmp_path / "sibling").write_bytes(b"s")
    code = (f"import os; print(open({str(tmp_path / 'weights.pt')!r}).read(), "
            f"os.path.exists({str(tmp_path / 'sibling')!r}))")
    result = py(code, readonly=[tmp_path / "weights.pt"])
    assert result.stdout.split() == [b"w", b"False"]


@pytest.mark.parametrize("machine", sorted(seccomp.ABIS))
def test_seccomp_filter_assembles_for_each_architecture(machine):
    program = seccomp.build_filter(machine)
    assert len(program) % 8 == 0 and 0 < len(program) // 8 < 4096  # the kernel's BPF_MAXINSNS


def test_personality_may_be_read_not_changed():
    result = py("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True)\n"
                "print(libc.personality(0xFFFFFFFF), libc.personality(0))\n"
                "print(libc.personality(0x0040000), os.strerror(ctypes.get_errno()))")  # ADDR_NO_RANDOMIZE
    assert result.stdout.split(b"\n")[:2] == [b"0 0", b"-1 Operation not permitted"]


def test_run_reports_the_memory_it_saw():
    result = py("block = bytearray(b'x') * (64 << 20); import time; time.sleep(0.3)")
    assert result.ok, result.stderr
    assert 64 << 20 < result.memory_peak_bytes < 256 << 20


def test_process_tree_lists_descendants_parents_first():
    sleeper = subprocess.Popen([PY, "-c", "import subprocess, sys, time; "
                                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']);"
                                "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while len(tree := memory.process_tree(sleeper.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree[0] == sleeper.pid and len(tree) == 2
        assert memory.resident_bytes(tree[1]) > 0
        assert memory.resident_bytes(1 << 30) == 0  # no such process
    finally:
        for pid in reversed(memory.process_tree(sleeper.pid)):
            os.kill(pid, 9)
        sleeper.wait()


MOUNTINFO = ("24 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
             "25 1 0:23 / /proc rw - proc proc rw\n")


@pytest.mark.parametrize("proc_cgroup, expected", [
    ("0::/user.slice/grader/main\n", ("/sys/fs/cgroup/user.slice/grader/main", "/sys/fs/cgroup")),
    ("0::/\n", ("/sys/fs/cgroup", "/sys/fs/cgroup")),
    ("4:memory:/x\n", None),  # cgroup v1 only
])
def test_cgroup_is_located_from_proc(proc_cgroup, expected):
    found = cgroup.locate(MOUNTINFO, proc_cgroup)
    assert (found and tuple(map(str, found))) == expected


def test_cgroup_is_made_only_where_memory_is_delegated(tmp_path):
    own = tmp_path / "service" / "main"
    own.mkdir(parents=True)
    (own / "cgroup.subtree_control").write_text("")
    (own.parent / "cgroup.subtree_control").write_text("cpu io\n")
    assert cgroup.delegated_parent(own, tmp_path) is None
    (own.parent / "cgroup.subtree_control").write_text("cpu memory io\n")
    assert cgroup.delegated_parent(own, tmp_path) == own.parent
    assert cgroup.delegated_parent(own, own) is None  # never above the mount
    group = cgroup.create(1 << 30, parent=own.parent)
    assert group.path.parent == own.parent
    assert (group.path / "memory.max").read_text() == str(1 << 30)
    (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_killed()


def test_every_refused_call_fails_with_eperm():
    denied = seccomp.ABIS[platform.machine()].denied
    code = ("import ctypes, json, sys; libc = ctypes.CDLL(None, use_errno=True); out = {}\n"
            "for name, nr in json.loads(sys.argv[1]).items():\n"
            "    ctypes.set_errno(0); libc.syscall(nr, 0, 0, 0, 0, 0, 0); out[name] = ctypes.get_errno()\n"
            "print(json.dumps(out))")
    result = run([PY, "-c", code, json.dumps(denied)], limits=QUICK)
    assert result.ok, result.stderr
    assert json.loads(result.stdout) == {name: errno.EPERM for name in denied}
