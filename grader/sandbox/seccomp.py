"""A seccomp-bpf program, written by hand, that bubblewrap installs before the child runs.

It is the second wall behind the namespaces: even inside a fresh network namespace the child may
not create any socket (a connected AF_UNIX socketpair stays allowed), use io_uring (whose requests
bypass seccomp), get memory around RLIMIT_DATA (shared anonymous or ``MAP_GROWSDOWN`` mmaps,
memfd_create, SysV shm), or reach into another process (ptrace, process_vm_readv/writev,
pidfd_getfd, kcmp, process_madvise). Denied calls fail with EPERM rather than killing the
process, so the child's traceback says what it tried.

The program is classic BPF over ``struct seccomp_data`` (nr, arch, ip, args[6]); bubblewrap reads
it as raw ``struct sock_filter`` records from a file descriptor (``--seccomp FD``).
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

# struct seccomp_data offsets (little-endian: the low 32 bits of args[i] sit at 16 + 8 i).
_OFF_NR, _OFF_ARCH = 0, 4
_OFF_ARG = (16, 24, 32, 40, 48, 56)

# BPF opcodes (linux/bpf_common.h).
_LD_W_ABS = 0x20
_JEQ_K, _JGE_K, _JSET_K = 0x15, 0x35, 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

AF_UNIX = 1
MAP_SHARED_BIT = 0x01  # MAP_SHARED and MAP_SHARED_VALIDATE both set bit 0; MAP_PRIVATE does not
MAP_ANONYMOUS = 0x20
MAP_GROWSDOWN = 0x100  # a "stack" mapping: RLIMIT_DATA does not count it (same bit on arm64)
PER_LINUX = 0  # personality(): the default persona, and the value that only asks for the current one
PER_QUERY = 0xFFFFFFFF
X32_SYSCALL_BIT = 0x40000000


@dataclass(frozen=True)
class Abi:
    """Syscall numbers of one architecture: the calls the filter inspects or refuses."""

    audit_arch: int
    socket: int
    socketpair: int
    mmap: int
    personality: int
    denied: dict[str, int]
    reject_x32: bool = False


# Numbered alike on every architecture since 5.1.
_COMMON_DENIED_GENERIC = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                          "pidfd_getfd": 438, "process_madvise": 440}

ABIS = {
    "x86_64": Abi(
        audit_arch=0xC000003E, socket=41, socketpair=53, mmap=9, personality=135, reject_x32=True,
        denied={**_COMMON_DENIED_GENERIC, "memfd_create": 319, "shmget": 29, "add_key": 248,
                "request_key": 249, "keyctl": 250, "perf_event_open": 298, "bpf": 321,
                "userfaultfd": 323, "ptrace": 101, "process_vm_readv": 310,
                "process_vm_writev": 311, "kcmp": 312}),
    "aarch64": Abi(
        audit_arch=0xC00000B7, socket=198, socketpair=199, mmap=222, personality=92,
        denied={**_COMMON_DENIED_GENERIC, "memfd_create": 279, "shmget": 194, "add_key": 217,
                "request_key": 218, "keyctl": 219, "perf_event_open": 241, "bpf": 280,
                "userfaultfd": 282, "ptrace": 117, "process_vm_readv": 270,
                "process_vm_writev": 271, "kcmp": 272}),
}


def build_filter(machine: str | None = None) -> bytes:
    """The filter as raw ``struct sock_filter`` records for ``bwrap --seccomp FD``.

    Args:
        machine: ``platform.machine()`` value; the running machine by default.
    Returns:
        8 bytes per instruction, native endianness.
    Raises:
        NotImplementedError: for an architecture without a syscall table here.
    """
    machine = machine or platform.machine()
    if machine not in ABIS:
        raise NotImplementedError(f"no seccomp syscall table for {machine!r}")
    abi = ABIS[machine]
    deny = _RET_ERRNO | errno.EPERM

    # Each entry: (opcode, k, jump-if-true label or None, jump-if-false label or None) or a label.
    prog: list = [
        (_LD_W_ABS, _OFF_ARCH, None, None),
        # A foreign ABI (i386 via int 0x80 has socketcall) is refused outright.
        (_JEQ_K, abi.audit_arch, None, "deny"),
        (_LD_W_ABS, _OFF_NR, None, None),
    ]
    if abi.reject_x32:
        prog.append((_JGE_K, X32_SYSCALL_BIT, "deny", None))
    prog += [
        # socket() is refused whatever the family: even AF_UNIX could reach a host socket whose
        # path is visible; socketpair() (pipes between a child's own processes) stays.
        (_JEQ_K, abi.socket, "deny", None),
        (_JEQ_K, abi.socketpair, "family", None),
        (_JEQ_K, abi.mmap, "mmap", None),
        (_JEQ_K, abi.personality, "persona", None),
    ]
    prog += [(_JEQ_K, nr, "deny", None) for nr in abi.denied.values()]
    prog += [
        (_RET_K, _RET_ALLOW, None, None),  # BPF jumps only forward: the shared returns come last
        "family", (_LD_W_ABS, _OFF_ARG[0], None, None),
        (_JEQ_K, AF_UNIX, "allow", "deny"),
        # Refused: MAP_GROWSDOWN of any kind; MAP_SHARED together with MAP_ANONYMOUS.
        "mmap", (_LD_W_ABS, _OFF_ARG[3], None, None),
        (_JSET_K, MAP_GROWSDOWN, "deny", None),
        (_JSET_K, MAP_ANONYMOUS, None, "allow"),
        (_JSET_K, MAP_SHARED_BIT, "deny", "allow"),
        # Only the default persona, or asking for the current one: no READ_IMPLIES_EXEC, no
        # ADDR_NO_RANDOMIZE for what the child execs next.
        "persona", (_LD_W_ABS, _OFF_ARG[0], None, None),
        (_JEQ_K, PER_LINUX, "allow", None),
        (_JEQ_K, PER_QUERY, "allow", "deny"),
        "allow", (_RET_K, _RET_ALLOW, None, None),
        "deny", (_RET_K, deny, None, None),
    ]
    return _assemble(prog)


def _assemble(prog: list) -> bytes:
    """Resolve labels to the relative jump offsets BPF wants (0 = the next instruction)."""
    labels, pc = {}, 0
    for item in prog:
        if isinstance(item, str):
            labels[item] = pc
        else:
            pc += 1
    out, pc = [], 0
    for item in prog:
        if isinstance(item, str):
            continue
        code, k, jt, jf = item

        def offset(label):
            if label is None:
                return 0
            delta = labels[label] - pc - 1
            assert 0 <= delta < 256, f"jump to {label} out of range"
            return delta

        out.append(struct.pack("=HBBI", code, offset(jt), offset(jf), k))
        pc += 1
    return b"".join(out)
