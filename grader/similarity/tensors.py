"""The tensors of a checkpoint, read by the grading process itself: nothing is unpickled.

    read_tensors(path) -> list[np.ndarray]      float32, in the file's own order

A torch.save or TorchScript zip keeps each storage as a stored entry ``<prefix>/data/<key>``; the
opcode scan of its ``data.pkl`` (``grader.submission.pickle_scan``) names every tensor as a view of
one (offset, shape, strides), which numpy reads straight from the entry's bytes. safetensors
files carry a JSON header of names, dtypes, shapes and byte ranges. Other forms (torch's legacy
format, ONNX, torch.export) raise ``Unreadable``: their similarity rests on behaviour alone.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.submission.precheck import LIMITS, check_file

# Storage class (torch.<Name>Storage) -> numpy dtype of its elements; integer storages carry no weights.
STORAGE_DTYPES = {"FloatStorage": "<f4", "HalfStorage": "<f2", "DoubleStorage": "<f8", "BFloat16Storage": "bf16"}
SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "bf16"}


@dataclass(frozen=True)
class ReadLimits:
    """Caps on what one checkpoint's fingerprint reads.

    Attributes:
        elements: floating-point elements of all tensors together (64 M: 256 MiB as float32;
            the homework network has 1.5 M).
        header_bytes: a safetensors JSON header.
    """

    elements: int = 64_000_000
    header_bytes: int = 16 * 2**20


READ_LIMITS = ReadLimits()


class Unreadable(Exception):
    """This checkpoint's tensors cannot be read without loading it; the message says why."""


def read_tensors(path: Path, limits: ReadLimits = READ_LIMITS, *,
                 own: frozenset[str] = frozenset()) -> list[np.ndarray]:
    """The floating-point tensors of the checkpoint at ``path``, as float32 arrays in file order.

    ``own``: the student's own classes a whole pickled network names (``__main__.Net``), which
    the pre-check accepts as the intake did; their code is never imported here.

    Raises:
        Unreadable: a form read only by loading it (legacy pickle, ONNX, torch.export), a file
            the pre-check refuses, or one over ``limits``.
    """
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):
        return _read_zip(path, limits, own)
    if len(head) == 8 and path.suffix != ".onnx" and int.from_bytes(head, "little") <= limits.header_bytes:
        return _read_safetensors(path, int.from_bytes(head, "little"), limits)
    raise Unreadable(f"{path.name} is not a torch zip or safetensors file")


def _read_zip(path: Path, limits: ReadLimits, own: frozenset[str] = frozenset()) -> list[np.ndarray]:
    """Every tensor view of a torch zip archive's data.pkl, read from its storage entries."""
    found = check_file(path, own=own)
    if found.problems:
        raise Unreadable(f"the pre-check refuses {path.name}")
    if not found.pickles:
        raise Unreadable(f"{path.name} has no data.pkl (a torch.export archive)")
    name, scan = next(iter(found.pickles.items()))
    prefix = name[:-len("data.pkl")]
    tensors, total, storages = [], 0, {}
    with zipfile.ZipFile(path) as archive:
        for view in scan.tensors:
            pid = scan.persistent_ids[view.storage]
            dtype = STORAGE_DTYPES.get(str(pid[1]).rsplit(".", 1)[-1]) if isinstance(pid, tuple) else None
            if dtype is None:
                continue  # an integer buffer (num_batches_tracked), not a weight
            key = f"{prefix}data/{pid[2]}"
            total += 0 if key in storages else int(pid[4])  # elements read, a storage once
            if total > limits.elements:
                raise Unreadable(f"{path.name} holds over {limits.elements:,} weights (the cap)")
            if key not in storages:
                storages[key] = _as_float(archive.read(key), dtype)
            tensors.append(_view(storages[key], view.offset, view.size, view.stride, path.name))
    return tensors


def _read_safetensors(path: Path, header_len: int, limits: ReadLimits) -> list[np.ndarray]:
    """The floating-point tensors a safetensors header names, in its byte order."""
    with path.open("rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(header_len))
        except (ValueError, UnicodeDecodeError):
            raise Unreadable(f"{path.name} has no readable safetensors header") from None
        if not isinstance(header, dict):
            raise Unreadable(f"{path.name} has no readable safetensors header")
        named = sorted((_module_order(k), v) for k, v in header.items() if k != "__metadata__"
                       and isinstance(v, dict) and v.get("dtype") in SAFETENSORS_DTYPES)
        entries = [v for _, v in named]
        tensors, total, size = [], 0, path.stat().st_size - 8 - header_len
        for entry in entries:
            shape, (start, end) = tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
            total += int(np.prod(shape, dtype=np.int64))
            if total > limits.elements or not 0 <= start <= end <= size:
                raise Unreadable(f"{path.name} holds over {limits.elements:,} weights, or bytes past its end")
            f.seek(8 + header_len + start)
            flat = _as_float(f.read(end - start), SAFETENSORS_DTYPES[entry["dtype"]])
            if flat.size != int(np.prod(shape, dtype=np.int64)):
                raise Unreadable(f"{path.name}: a tensor's bytes do not match its shape")
            tensors.append(flat.reshape(shape))
    return tensors


def _module_order(name: str) -> tuple:
    """A sort key that puts safetensors' names (stored sorted as text) back in module order:
    ``features.2`` before ``features.10``, a layer's weight before its other tensors."""
    module, _, leaf = name.rpartition(".")
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.]", module) if p)
    return parts, leaf != "weight", leaf


def _as_float(raw: bytes, dtype: str) -> np.ndarray:
    """Little-endian storage bytes as a flat float32 array (bfloat16: the high half of a float32)."""
    if dtype == "bf16":
        halves = np.frombuffer(raw[:len(raw) // 2 * 2], dtype="<u2")
        return (halves.astype(np.uint32) << 16).view(np.float32)
    width = np.dtype(dtype).itemsize
    return np.frombuffer(raw[:len(raw) // width * width], dtype=dtype).astype(np.float32)


def _view(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], name: str) -> np.ndarray:
    """The tensor ``storage[offset]`` with ``size`` and ``stride`` (in elements), copied, C-ordered."""
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if last >= storage.size:
        raise Unreadable(f"{name}: a tensor view reaches past its storage")
    if not all(size):
        return np.zeros(size, dtype=np.float32)
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=tuple(s * item for s in stride),
                                           writeable=False)
    return np.ascontiguousarray(view)
