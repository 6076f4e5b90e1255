"""The plain values in a pickle (a ``torch.save`` of lists, numbers and small tensors), built by
reading its opcodes: nothing is unpickled.

    read_torch_values(path, limits) -> the object torch.save wrote, as lists, dicts and numbers
    read_pickle_values(data, limits, storage=...) -> the same, from one pickle stream

A student's ``history.pt`` is a pickle, and unpickling one runs whatever it names. This reader
never calls ``pickle.load`` or an ``Unpickler``: it walks the opcodes with ``pickletools.genops``
(which parses and builds nothing) and builds only None, bools, numbers, strings, bytes, lists,
tuples and dicts itself. The few globals it accepts (``VALUE_GLOBALS``: torch's tensor rebuild,
its typed storages, ``collections.OrderedDict``, numpy's scalar and array rebuilds) are looked up
in a table of this module's own functions, which make numbers from bytes with ``numpy.frombuffer``;
the named objects are never imported or called. Any other global (``os.system``, a class) refuses
the whole file before anything in it is used.

Why here, and not with ``torch.load(weights_only=True)`` in the sandboxed child: a history is a
claim the grading process reads before any child runs, and a failure to read it must cost only
the checks that need it, whether or not a child starts. Torch's weights-only unpickler is a far
larger surface (it rebuilds dozens of types and has had bypasses), while this one needs no torch
import and accepts only what a training log holds. Caps (``ValueLimits``) bound the bytes read,
the opcodes walked, the elements built and the nesting, so a hostile file costs milliseconds.
"""

from __future__ import annotations

import math
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from grader.limits import MiB
from grader.messages import say
from grader.submission.precheck import PrecheckLimits, entry_problems, is_data_pickle


class RefusedPickle(ValueError):
    """The pickle holds something other than plain values, or breaks a cap; its one argument, a
    catalogue message, says what."""


@dataclass(frozen=True)
class ValueLimits:
    """Caps on one file read for its values (a history file is a few KiB)."""

    file_bytes: int = 4 * MiB       # the whole file
    opcodes: int = 1_000_000        # pickle opcodes walked
    elements: int = 1_000_000       # numbers built from tensor storages and numpy arrays
    depth: int = 16                 # containers inside containers


LIMITS = ValueLimits()
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of torch's legacy (non-zip) format

# torch.<Name>Storage and numpy dtype names -> numpy dtype strings (little-endian unless marked)
STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "b1",
}
_NUMERIC_KINDS = "biuf"


def read_torch_values(path: Path, limits: ValueLimits = LIMITS) -> object:
    """The object ``torch.save`` (zip format) or ``pickle.dump`` wrote to ``path``, as plain values.

    Tensors become (nested) lists of numbers, or a number for a 0-d tensor; numpy scalars and
    arrays likewise; an OrderedDict a dict.

    Raises:
        RefusedPickle: naming what is refused (a global, a cap, torch's legacy format) or why the
            file is not a pickle at all.
    """
    size = path.stat().st_size
    if size > limits.file_bytes:
        raise RefusedPickle(say("plain.file_over", size=size, cap=limits.file_bytes))
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return _read_archive(path, size, limits)
    if head[:1] != b"\x80":
        raise RefusedPickle(say("plain.not_pickle"))
    value = read_pickle_values(path.read_bytes(), limits)
    if value == LEGACY_MAGIC:
        raise RefusedPickle(say("plain.legacy"))
    return value


def _read_archive(path: Path, size: int, limits: ValueLimits) -> object:
    try:
        with zipfile.ZipFile(path) as archive:
            problems = entry_problems(archive, size, PrecheckLimits(entries=1000))
            if problems:  # compressed or overlapping entries: nothing is inflated
                raise RefusedPickle(say("plain.problems", problems=tuple(problems)))
            pickles = [n for n in archive.namelist() if is_data_pickle(n)]
            if len(pickles) != 1:
                raise RefusedPickle(say("plain.not_torch_zip"))
            prefix = pickles[0][: -len("data.pkl")]
            names = set(archive.namelist())
            big = archive.read(f"{prefix}byteorder") == b"big" if f"{prefix}byteorder" in names else False
            storages: dict[str, np.ndarray] = {}

            def storage(pid: object) -> np.ndarray:
                return _storage(archive, prefix, pid, storages, big=big)

            return read_pickle_values(archive.read(pickles[0]), limits, storage=storage)
    except (zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise RefusedPickle(say("plain.corrupt_zip", reason=str(exc))) from None


def _storage(archive: zipfile.ZipFile, prefix: str, pid: object, cache: dict, *, big: bool) -> np.ndarray:
    """One tensor storage, ``('storage', <dtype>, key, location, numel)``, checked against its entry."""
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _DType)
            and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):
        raise RefusedPickle(say("plain.not_storage"))
    dtype, key, numel = pid[1], pid[2], pid[4]
    if key not in cache:
        raw = archive.read(f"{prefix}data/{key}")
        if numel * dtype.itemsize > len(raw):
            raise RefusedPickle(say("plain.storage_short", key=key, numel=numel, size=len(raw)))
        cache[key] = dtype.decode(raw[: numel * dtype.itemsize], big=big)
    return cache[key]


def read_pickle_values(data: bytes, limits: ValueLimits = LIMITS,
                       storage: Callable[[object], np.ndarray] | None = None) -> object:
    """The value one pickle stream builds, as plain values (see the module docstring).

    Args:
        data: the stream.
        storage: persistent id -> the numbers of that tensor storage; None refuses persistent ids.

    Raises:
        RefusedPickle: for an opcode or global outside the plain subset, a broken cap, or garbage.
    """
    machine = _Machine(limits, storage)
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data)):
            if count >= limits.opcodes:
                raise RefusedPickle(say("plain.opcodes", cap=limits.opcodes))
            if op.name == "STOP":
                return _plain(machine.pop(), limits.depth, [0], limits.elements)
            machine.step(op.name, arg)
    except RefusedPickle:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:  # garbage, bad stack
        raise RefusedPickle(say("plain.malformed", reason=f"{type(exc).__name__}: {exc}")) from None
    raise RefusedPickle(say("plain.no_stop"))


class _Machine:
    """The pickle virtual machine, restricted to plain values (the opcodes of protocols 0 to 5)."""

    _PUSH_ARG = {"INT", "LONG", "BININT", "BININT1", "BININT2", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
                 "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
                 "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"}
    _CONSTANTS = {"NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False,
                  "EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_TUPLE": tuple}
    _IGNORED = {"PROTO", "FRAME"}

    def __init__(self, limits: ValueLimits, storage: Callable[[object], np.ndarray] | None):
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.storage = storage
        self.elements = [limits.elements]  # numbers left to build from storages and arrays

    def pop(self) -> object:
        return self.stack.pop()

    def pop_mark(self) -> list:
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def step(self, name: str, arg: object) -> None:
        if name in self._PUSH_ARG:
            self.stack.append(arg)
        elif name in self._CONSTANTS:
            self.stack.append(self._CONSTANTS[name]())
        elif name in self._IGNORED:
            pass
        elif name in _STEPS:
            _STEPS[name](self, arg)
        else:
            raise RefusedPickle(say("plain.opcode", name=name))


def _tuple_n(n: int) -> Callable[[_Machine, object], None]:
    def step(m: _Machine, _arg: object) -> None:
        if len(m.stack) < n:
            raise IndexError(f"TUPLE{n} on a stack of {len(m.stack)}")
        items = m.stack[len(m.stack) - n:]
        del m.stack[len(m.stack) - n:]
        m.stack.append(tuple(items))
    return step


def _setitems(m: _Machine, pairs: list) -> None:
    target = m.stack[-1]
    if not isinstance(target, dict) or len(pairs) % 2:
        raise RefusedPickle(say("plain.setitems"))
    for key, value in zip(pairs[::2], pairs[1::2]):
        if not isinstance(key, (str, int, float, bool, type(None))):  # hashing a deep tuple could recurse
            raise RefusedPickle(say("plain.dict_key"))
        target[key] = value


def _appends(m: _Machine, items: list) -> None:
    if not isinstance(m.stack[-1], list):
        raise RefusedPickle(say("plain.appends"))
    m.stack[-1].extend(items)


def _global(m: _Machine, name: str) -> None:
    module, _, attr = name.partition(" ")
    m.stack.append(_resolve(module, attr))


def _stack_global(m: _Machine, _arg: object) -> None:
    attr, module = m.pop(), m.pop()
    if not (isinstance(module, str) and isinstance(attr, str)):
        raise RefusedPickle(say("plain.global_name"))
    m.stack.append(_resolve(module, attr))


def _reduce(m: _Machine, _arg: object) -> None:
    args, func = m.pop(), m.pop()
    if not isinstance(func, _Callable) or not isinstance(args, tuple):
        raise RefusedPickle(say("plain.reduce"))
    m.stack.append(func(m, *args))


def _build(m: _Machine, _arg: object) -> None:
    state = m.pop()
    target = m.stack[-1]
    if not isinstance(target, (_DType, _Array)):
        raise RefusedPickle(say("plain.build"))
    target.build(state, m)


def _persid(m: _Machine, _arg: object) -> None:
    if m.storage is None:
        raise RefusedPickle(say("plain.outside"))
    m.stack.append(m.storage(m.pop()))


def _memo_get(m: _Machine, key: object) -> None:
    m.stack.append(m.memo[key])


def _memo_put(m: _Machine, key: object) -> None:
    m.memo[key] = m.stack[-1]


_STEPS: dict[str, Callable[[_Machine, object], None]] = {
    "MARK": lambda m, _: m.marks.append(len(m.stack)),
    "POP": lambda m, _: m.pop(),
    "POP_MARK": lambda m, _: m.pop_mark(),
    "DUP": lambda m, _: m.stack.append(m.stack[-1]),
    "LIST": lambda m, _: m.stack.append(m.pop_mark()),
    "TUPLE": lambda m, _: m.stack.append(tuple(m.pop_mark())),
    "DICT": lambda m, _: _dict(m),
    "TUPLE1": _tuple_n(1), "TUPLE2": _tuple_n(2), "TUPLE3": _tuple_n(3),
    "APPEND": lambda m, _: _appends(m, [m.pop()]),
    "APPENDS": lambda m, _: _appends(m, m.pop_mark()),
    "SETITEM": lambda m, _: _setitems(m, [m.stack.pop(-2), m.pop()]),
    "SETITEMS": lambda m, _: _setitems(m, m.pop_mark()),
    "GLOBAL": _global, "STACK_GLOBAL": _stack_global, "REDUCE": _reduce, "BUILD": _build,
    "BINPERSID": _persid,
    "GET": _memo_get, "BINGET": _memo_get, "LONG_BINGET": _memo_get,
    "PUT": _memo_put, "BINPUT": _memo_put, "LONG_BINPUT": _memo_put,
    "MEMOIZE": lambda m, _: _memo_put(m, len(m.memo)),
}


def _dict(m: _Machine) -> None:
    items = m.pop_mark()
    m.stack.append({})
    _setitems(m, items)


# --- the globals a plain value may name: this module's own functions, never the named objects ---


class _Callable:
    """A global the reader accepts, standing for one of this module's builders."""

    def __init__(self, name: str, build: Callable[..., object]):
        self.name, self.build = name, build

    def __call__(self, m: _Machine, *args: object) -> object:
        return self.build(m, *args)


class _DType:
    """A numpy dtype named by a pickle (``numpy.dtype('f4')``, ``torch.FloatStorage``)."""

    def __init__(self, code: str):
        bfloat16 = code == "bf16"
        dtype = np.dtype("u2" if bfloat16 else code)
        if dtype.kind not in _NUMERIC_KINDS or dtype.itemsize > 8:
            raise RefusedPickle(say("plain.number_type", code=code))
        self.dtype, self.bfloat16, self.big = dtype, bfloat16, False

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def build(self, state: object, _m: _Machine) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.big = state[1] == ">"

    def decode(self, raw: bytes, *, big: bool | None = None) -> np.ndarray:
        dtype = self.dtype.newbyteorder(">" if (self.big if big is None else big) else "<")
        values = np.frombuffer(raw, dtype=dtype)
        if self.bfloat16:  # the top half of a float32
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values


class _Array:
    """A numpy array named by a pickle: ``_reconstruct(ndarray, (0,), b'b')``, then BUILD."""

    def __init__(self) -> None:
        self.values: object = []

    def build(self, state: object, m: _Machine) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[1], tuple)
                and isinstance(state[2], _DType) and isinstance(state[4], bytes)):
            raise RefusedPickle(say("plain.array_not_plain"))
        shape, dtype = state[1], state[2]
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            raise RefusedPickle(say("plain.array_shape"))
        count = math.prod(shape)
        _spend(m, count)
        if count * dtype.itemsize > len(state[4]):
            raise RefusedPickle(say("plain.array_bytes"))
        flat = dtype.decode(state[4][: count * dtype.itemsize])
        self.values = _numbers(flat.reshape(shape, order="F" if state[3] else "C"))


def _spend(m: _Machine, count: int) -> None:
    m.elements[0] -= count
    if m.elements[0] < 0:
        raise RefusedPickle(say("plain.too_many_numbers"))


def _rebuild_tensor(m: _Machine, storage: object, offset: object, size: object, stride: object,
                    *_rest: object) -> object:
    """torch._utils._rebuild_tensor(_v2): a strided view of a storage, as (nested) lists."""
    if not (isinstance(storage, np.ndarray) and isinstance(offset, int) and isinstance(size, tuple)
            and isinstance(stride, tuple) and len(size) == len(stride)
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
        raise RefusedPickle(say("plain.tensor_layout"))
    count = math.prod(size)
    _spend(m, count)
    if count and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage):
        raise RefusedPickle(say("plain.tensor_past"))
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:] if count else storage[:0], shape=size,
                                           strides=tuple(s * item for s in stride), writeable=False)
    return _numbers(view)


def _numbers(array: np.ndarray) -> object:
    """``array`` as (nested) lists of Python numbers; a float16/32 as its shortest decimal (0.3, not
    0.30000001192092896), which is what the student logged."""
    if array.dtype.kind != "f" or array.dtype.itemsize >= 8:
        return array.tolist()
    return np.array([float(str(v)) for v in array.ravel()], dtype=np.float64).reshape(array.shape).tolist()


def _rebuild_parameter(_m: _Machine, data: object, *_rest: object) -> object:
    return data


def _ordered_dict(_m: _Machine, *args: object) -> dict:
    if args and not (len(args) == 1 and isinstance(args[0], (list, tuple)) and not args[0]):
        raise RefusedPickle(say("plain.ordered_dict"))
    return {}


def _encode(_m: _Machine, text: object, encoding: object = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle(say("plain.encode"))
    return text.encode("latin1")


def _numpy_dtype(_m: _Machine, code: object, *_flags: object) -> _DType:
    if not isinstance(code, str):
        raise RefusedPickle(say("plain.dtype_name"))
    try:
        return _DType(code)
    except TypeError:
        raise RefusedPickle(say("plain.dtype", code=repr(code))) from None


def _numpy_scalar(m: _Machine, dtype: object, raw: object = b"") -> object:
    if not isinstance(dtype, _DType) or not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
        raise RefusedPickle(say("plain.scalar"))
    _spend(m, 1)
    return _numbers(dtype.decode(raw)[:1])[0]


def _numpy_reconstruct(_m: _Machine, cls: object, *_args: object) -> _Array:
    if cls is not _NDARRAY:
        raise RefusedPickle(say("plain.reconstruct"))
    return _Array()


_NDARRAY = object()
_BUILDERS: dict[str, Callable[..., object]] = {
    "collections.OrderedDict": _ordered_dict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "_codecs.encode": _encode,
    "numpy.dtype": _numpy_dtype,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
}
VALUE_GLOBALS = (*_BUILDERS, "numpy.ndarray", *(f"torch.{name}" for name in STORAGE_DTYPES))


def _resolve(module: str, attr: str) -> object:
    """The stand-in for ``module.attr``; RefusedPickle for anything a plain value never names."""
    name = f"{module}.{attr}"
    if name in _BUILDERS:
        return _Callable(name, _BUILDERS[name])
    if name == "numpy.ndarray":
        return _NDARRAY
    if module == "torch" and attr in STORAGE_DTYPES:
        return _DType(STORAGE_DTYPES[attr])
    raise RefusedPickle(say("plain.global", name=name[:80]))


def _plain(value: object, depth: int, seen: list[int], cap: int) -> object:
    """``value`` with arrays as lists, checked for depth and size (a shared list counts each time)."""
    seen[0] += 1
    if seen[0] > cap:
        raise RefusedPickle(say("plain.too_many_values"))
    if isinstance(value, (list, tuple, dict)) and depth <= 0:
        raise RefusedPickle(say("plain.too_deep"))
    if isinstance(value, _Array):
        return value.values
    if isinstance(value, list):
        return [_plain(v, depth - 1, seen, cap) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v, depth - 1, seen, cap) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v, depth - 1, seen, cap) for k, v in value.items()}
    if isinstance(value, (_Callable, _DType, np.ndarray)) or value is _NDARRAY:
        raise RefusedPickle(say("plain.bare"))
    return value
