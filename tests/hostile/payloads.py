"""Generators for hostile submission files: each writes one attack into a folder, nothing committed.

Every pickle payload, if it ever ran, would print PWNED and create the file named by ``marker``;
the tests assert neither happened.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import struct
import subprocess
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

PWNED = "PWNED"


def _code(marker: Path) -> str:
    return f"print({PWNED!r}); open({str(marker)!r}, 'w').write('x')"


class _Reduce:
    """Pickles as ``func(*args)``: the classic code-execution payload."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def code_payloads(marker: Path) -> dict[str, object]:
    """name -> object whose unpickling runs code (os.system, exec, subprocess, builtins.eval)."""
    shell = f"echo {PWNED}; touch {marker}"
    return {
        "os_system": _Reduce(os.system, shell),
        "exec": _Reduce(builtins.exec, _code(marker)),
        "subprocess": _Reduce(subprocess.call, ["/bin/sh", "-c", shell]),
        "eval": _Reduce(builtins.eval, f"exec({_code(marker)!r})"),
    }


def write_pickle_payloads(folder: Path, marker: Path) -> dict[str, Path]:
    """Each code payload as a torch.save zip archive and in torch's legacy (bare pickle) format."""
    paths = {}
    for name, payload in code_payloads(marker).items():
        state = {"weight": torch.zeros(2), "evil": payload}
        paths[f"{name}-zip"] = folder / f"{name}-zip.pt"
        torch.save(state, paths[f"{name}-zip"])
        paths[f"{name}-legacy"] = folder / f"{name}-legacy.pt"
        torch.save(state, paths[f"{name}-legacy"], _use_new_zipfile_serialization=False)
    return paths


def write_archive(path: Path, pickle_bytes: bytes, storages: dict[str, bytes] = {},
                  compress: bool = False) -> Path:
    """A zip laid out like torch.save's: archive/data.pkl, archive/data/<key>, version, byteorder."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
        z.writestr("archive/version", "3\n")
    return path


def huge_allowed_object(path: Path) -> Path:
    """A few hundred bytes asking an allowed global for a terabyte: bytearray(2**40)."""
    # PROTO 2, GLOBAL 'builtins bytearray', LONG1 2**40, TUPLE1, REDUCE, STOP
    data = (b"\x80\x02cbuiltins\nbytearray\n\x8a\x06" + (2 ** 40).to_bytes(6, "little")
            + b"\x85R.")
    return write_archive(path, data)


def zip_bomb(path: Path, inflated_bytes: int = 64 << 20) -> Path:
    """A torch.save archive whose one storage entry deflates from ~64 KiB to ``inflated_bytes``."""
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, \
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if "/data/" in info.filename:
                with dst.open(info.filename, "w", force_zip64=True) as out:
                    chunk = bytes(1 << 20)
                    for _ in range(inflated_bytes >> 20):
                        out.write(chunk)
            else:
                dst.writestr(info.filename, src.read(info))
    return path


class _Storage:
    """Stands for a storage in the pickle; persistent_id turns it into torch's storage record."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


def _tensor_pickle(numel: int, size: tuple[int, ...]) -> bytes:
    """data.pkl for {"w": tensor} whose storage '0' declares ``numel`` floats."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
            return None

    stride = tuple(int(torch.tensor(size[i + 1:]).prod()) for i in range(len(size)))
    tensor = _Reduce(torch._utils._rebuild_tensor_v2, _Storage("0", numel), 0, size, stride,
                     False, OrderedDict())
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": tensor})
    return buffer.getvalue()


def terabyte_tensor(path: Path) -> Path:
    """A tensor whose storage claims 2**38 floats (1 TiB) while its entry holds 16 bytes."""
    return write_archive(path, _tensor_pickle(2 ** 38, (2 ** 38,)), {"0": bytes(16)})


def legacy_layout(claims: dict[str, int], keys: list[str], storages: bytes) -> bytes:
    """A file in torch's legacy format, laid out by hand: {"w<key>": 1-d tensor} over a float
    storage that claims ``claims[key]`` elements, the list of storage ``keys``, then
    ``storages`` (each an 8-byte element count and its bytes)."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):  # the legacy record: its last item is a storage view
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, None)
            return None

    out = io.BytesIO()
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(value, out, protocol=2)  # magic number, format version, the system's facts
    Pickler(out, protocol=2).dump({
        f"w{key}": _Reduce(torch._utils._rebuild_tensor_v2, _Storage(key, numel), 0, (numel,), (1,), False,
                           OrderedDict()) for key, numel in claims.items()})
    pickle.dump(keys, out, protocol=2)
    return out.getvalue() + storages


def legacy_terabyte_tensor(path: Path) -> Path:
    """A legacy file whose storage claims 2**38 floats (1 TiB) and holds 16 bytes."""
    path.write_bytes(legacy_layout({"0": 2 ** 38}, ["0"], (2 ** 38).to_bytes(8, "little") + bytes(16)))
    return path


def sparse_invalid_indices(path: Path) -> Path:
    """A sparse COO tensor of size 10 with an index of 10**9 (out of bounds when densified)."""
    indices = torch.tensor([[0, 10 ** 9]])
    values = torch.tensor([1.0, 2.0])
    sparse = torch.sparse_coo_tensor(indices, values, (10,), check_invariants=False)
    torch.save({"w": sparse}, path)
    return path


def legacy_plain_pickle(path: Path) -> Path:
    """A harmless dict written with pickle.dump: still refused, since the format can run code."""
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    return path


def packed_int(n: int) -> bytes:
    return struct.pack("<I", n)
